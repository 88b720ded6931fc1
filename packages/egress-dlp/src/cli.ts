import { EXIT, EXIT_CODES_HELP, renderCliError } from "@bottlekit/diagnostics";
import { Command } from "commander";
import pkg from "../package.json" with { type: "json" };

/** Exit codes, documented in `--help` (the table every bottlekit CLI shares). */
export { EXIT };

export interface CliIo {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  env: NodeJS.ProcessEnv;
  /** Defaults to process.stdin. */
  stdin?: NodeJS.ReadableStream;
}

const EXIT_HELP = `\n${EXIT_CODES_HELP}\n`;

/** `--known-secret-env` is repeatable and takes one name each time (it never swallows files). */
function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

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
      "--known-secret-env <name>",
      "name of an environment variable holding a known secret or canary (repeatable)",
      collect,
      [],
    )
    .option(
      "--max-bytes <n>",
      "largest file scanned whole; a larger file is scanned up to this size and reported as not scanned (default 16 MiB)",
    )
    .option("--json", "print one JSON document on stdout")
    .addHelpText("after", EXIT_HELP)
    .action(
      async (
        files: string[],
        opts: { inbound?: boolean; knownSecretEnv?: string[]; json?: boolean; maxBytes?: string },
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
  return renderCliError(error, {
    program: "egress-dlp",
    stderr: io.stderr,
    exitCodeOf: (code) =>
      code === "E_USAGE" || code === "E_INVALID_INPUT" ? EXIT.usage : EXIT.failure,
  });
}

function defaultIo(): CliIo {
  return { stdout: process.stdout, stderr: process.stderr, env: process.env };
}
