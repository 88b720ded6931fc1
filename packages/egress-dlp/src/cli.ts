import { Command, CommanderError } from "commander";
import pkg from "../package.json" with { type: "json" };
import { isEgressDlpError } from "./errors.ts";

/** Exit codes, documented in `--help`. */
export const EXIT = { ok: 0, failure: 1, usage: 2, policy: 3, interrupted: 130 } as const;

export interface CliIo {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  env: NodeJS.ProcessEnv;
  /** Defaults to process.stdin. */
  stdin?: NodeJS.ReadableStream;
}

const EXIT_HELP = `
Exit codes:
  0    ok
  1    failure
  2    usage error or invalid input
  3    policy violation
  130  interrupted`;

/** Builds the command tree. Command modules are imported lazily so `--help` stays fast. */
function buildProgram(io: CliIo, setExit: (code: number) => void): Command {
  const program = new Command("egress-dlp")
    .description(
      "Scan text for secrets and prompt injection before it leaves (or enters) a bottle.",
    )
    .version(pkg.version, "-V, --version", "print the version")
    .helpOption("-h, --help", "show help")
    .showSuggestionAfterError(true)
    .exitOverride()
    .configureOutput({
      writeOut: (s) => io.stdout.write(s),
      writeErr: (s) => io.stderr.write(s),
    })
    .addHelpText("after", EXIT_HELP);
  program
    .command("scan")
    .description(
      "scan files or stdin for secrets (default) or prompt injection (--inbound); secret values come from env vars, never argv",
    )
    .argument("[files...]", "files to scan; - or nothing reads stdin")
    .option("--inbound", "run the inbound prompt-injection detector instead of the secret scanners")
    .option(
      "--known-secret-env <names...>",
      "names of environment variables holding known secrets or canaries",
    )
    .option("--json", "print one JSON document on stdout")
    .addHelpText("after", EXIT_HELP)
    .action(
      async (
        files: string[],
        opts: { inbound?: boolean; knownSecretEnv?: string[]; json?: boolean },
      ) => {
        const { runScan } = await import("./commands/scan.ts");
        setExit(await runScan(files, opts, io));
      },
    );
  return program;
}

/** Runs the CLI with `argv` (without node and script) and resolves to the exit code. */
export async function run(argv: readonly string[], io: CliIo = defaultIo()): Promise<number> {
  let exitCode: number = EXIT.ok;
  const program = buildProgram(io, (code) => {
    exitCode = code;
  });
  if (argv.length === 0) {
    io.stderr.write(program.helpInformation());
    return EXIT.usage;
  }
  try {
    await program.parseAsync([...argv], { from: "user" });
    return exitCode;
  } catch (error) {
    return renderError(error, io);
  }
}

function renderError(error: unknown, io: CliIo): number {
  if (error instanceof CommanderError) {
    if (error.code === "commander.helpDisplayed" || error.code === "commander.version") {
      return EXIT.ok;
    }
    io.stderr.write(`Run 'egress-dlp --help' to see the commands and options.\n`);
    return EXIT.usage;
  }
  if (isEgressDlpError(error)) {
    io.stderr.write(`egress-dlp: ${error.message}\n`);
    if (error.hint) io.stderr.write(`hint: ${error.hint}\n`);
    return error.code === "E_USAGE" || error.code === "E_INVALID_INPUT" ? EXIT.usage : EXIT.failure;
  }
  const stack = error instanceof Error ? (error.stack ?? error.message) : String(error);
  io.stderr.write(`egress-dlp: unexpected error\n${stack}\n`);
  io.stderr.write("This is a bug in bottlekit; please report it with the output above.\n");
  return EXIT.failure;
}

function defaultIo(): CliIo {
  return { stdout: process.stdout, stderr: process.stderr, env: process.env };
}
