import { EXIT, EXIT_CODES_HELP, guardPipes, renderCliError } from "@bottlekit/diagnostics";
import { Command, Option } from "commander";
import pkg from "../package.json" with { type: "json" };
import { loaded } from "./loaded.ts";
import { isBashParserLoaded } from "./shell/parser.ts";

/** Exit codes, documented in `--help` (the shared table of `@bottlekit/diagnostics`). */
export { EXIT };

export interface CliIo {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  env: NodeJS.ProcessEnv;
  /** Source for `--stdin` (default: process.stdin). */
  stdin?: NodeJS.ReadableStream;
  /** Working directory for relative paths (default: process.cwd()). */
  cwd?: string;
}

const CACHE_NOTE =
  "$BOTTLEKIT_EXECPOLICY_CACHE_DIR, else $XDG_CACHE_HOME/bottlekit/execpolicy or ~/.cache/bottlekit/execpolicy; 'off' disables";

const EXIT_HELP = `
${EXIT_CODES_HELP}`;

const commandsRun = new Set<string>();

/**
 * What this process has run so far: the commands, plus `native` once YAML policies were parsed and
 * `shell` once the bash parser was loaded. The bin's code cache is rewritten when a run adds one.
 */
export function cliFeatures(): string[] {
  const features = [...commandsRun];
  if (loaded.nativeFormat) features.push("native");
  if (isBashParserLoaded()) features.push("shell");
  return features;
}

/** Builds the command tree. Command modules are imported lazily so `--help` stays fast. */
function buildProgram(io: CliIo, setExit: (code: number) => void): Command {
  const program = new Command("execpolicy")
    .description("Check commands and shell scripts against Codex-compatible exec policies.")
    .version(pkg.version, "-V, --version", "print the version")
    .helpOption("-h, --help", "show help")
    .showSuggestionAfterError(true)
    .exitOverride()
    .configureOutput({
      writeOut: (s) => io.stdout.write(s),
      writeErr: (s) => io.stderr.write(s),
    })
    .addHelpText("after", EXIT_HELP);

  const collect = (value: string, previous: string[]) => [...previous, value];

  program
    .command("check")
    .description(
      "Check an argv (after --) or a shell script against policy files. Prints one JSON document (one line per command on a terminal).",
    )
    .requiredOption(
      "-r, --rules <file>",
      "policy file or directory, Codex .rules or native .yaml (repeatable)",
      collect,
      [],
    )
    .addOption(
      new Option(
        "--format <format>",
        "output format (default: text on a terminal, json otherwise)",
      ).choices(["json", "text", "codex"]),
    )
    .option("--shell <script>", "check a shell script instead of an argv")
    .option("--stdin", "read the shell script from stdin")
    .option(
      "--resolve-host-executables",
      "retry absolute program paths as their basename (gated by host_executable)",
    )
    .addOption(
      new Option("--fail-on <decision>", "exit 3 when the decision is at least this").choices([
        "prompt",
        "forbidden",
      ]),
    )
    .option(
      "--json",
      "JSON output (the default format; kept for symmetry with other bottlekit CLIs)",
    )
    .option("--pretty", "pretty-print the JSON")
    .option(
      "--no-amendments",
      "do not load the amendment files 'execpolicy amend' writes (<cwd>/.bottlekit/rules/default.rules, $BOTTLEKIT_HOME/rules/default.rules)",
    )
    .option("--no-cache", `do not use the compiled-policy cache for YAML files (${CACHE_NOTE})`)
    .argument("[argv...]", "the command to check, after --")
    .addHelpText(
      "after",
      `
The JSON format sees through bash -lc, env, sudo, timeout, … and checks every command.
--format codex prints exactly what 'codex execpolicy check' prints for the raw argv.

Examples:
  execpolicy check -r policy.rules -- git push origin main
  execpolicy check -r policy.rules --shell 'npm test > out.log && git push'
  execpolicy check -r policy.rules --format codex --resolve-host-executables -- /usr/bin/git status`,
    )
    .action(async (argv: string[], opts: Record<string, unknown>) => {
      commandsRun.add("check");
      const { checkCommandAction } = await import("./commands/check.ts");
      setExit(await checkCommandAction(argv, opts as never, io));
    });

  program
    .command("test")
    .description(
      "Check every match / not_match example of policy files (exit 3 when one fails, 2 on a load error).",
    )
    .argument("<files...>", "policy files")
    .option("--json", "print one JSON document ({ ok, files, errors, warnings }) instead of text")
    .option("--no-cache", `do not use the compiled-policy cache for YAML files (${CACHE_NOTE})`)
    .action(async (files: string[], opts: { json?: boolean; cache?: boolean }) => {
      commandsRun.add("test");
      const { testCommandAction } = await import("./commands/test.ts");
      setExit(await testCommandAction(files, io, opts.json === true, opts.cache !== false));
    });

  program
    .command("schema")
    .description("Print the JSON Schema of the native YAML policy format.")
    .action(async () => {
      commandsRun.add("schema");
      const { schemaCommandAction } = await import("./commands/schema.ts");
      setExit(schemaCommandAction(io));
    });

  program
    .command("amend")
    .description("Append a prefix rule to the project's or the user's default.rules (idempotent).")
    .addOption(
      new Option("--scope <scope>", "where to write")
        .choices(["project", "user"])
        .default("project"),
    )
    .addOption(
      new Option("--decision <decision>", "decision of the rule")
        .choices(["allow", "prompt", "forbidden"])
        .default("allow"),
    )
    .option("--project-dir <dir>", "project root for --scope project (default: cwd)")
    .argument("<prefix...>", "the command prefix, after --")
    .action(async (prefix: string[], opts: Record<string, unknown>) => {
      commandsRun.add("amend");
      const { amendCommandAction } = await import("./commands/amend.ts");
      setExit(await amendCommandAction(prefix, opts as never, io));
    });
  return program;
}

/**
 * Starts loading the bash grammar while the policy files load, when the command is sure to need it
 * (`check --shell` / `check --stdin`). A failure here is dropped: the check itself loads the parser
 * again and reports the error.
 */
function preloadShellParser(argv: readonly string[]): void {
  const end = argv.indexOf("--");
  const options = end === -1 ? argv : argv.slice(0, end);
  if (options[0] !== "check") return;
  if (!options.some((a) => a === "--shell" || a.startsWith("--shell=") || a === "--stdin")) return;
  import("./shell/parser.ts").then((m) => m.loadBashParser()).catch(() => undefined);
}

/** Runs the CLI with `argv` (without node and script) and resolves to the exit code. */
export async function run(argv: readonly string[], io: CliIo = defaultIo()): Promise<number> {
  preloadShellParser(argv);
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

/** Usage and invalid-input errors exit 2; every other known error 1 (`renderCliError` prints them). */
const USAGE_CODES = new Set(["E_USAGE", "E_INVALID_INPUT", "E_AMEND_REFUSED"]);

function renderError(error: unknown, io: CliIo): number {
  return renderCliError(error, {
    program: "execpolicy",
    stderr: io.stderr,
    exitCodeOf: (code) => (USAGE_CODES.has(code) ? EXIT.usage : EXIT.failure),
  });
}

function defaultIo(): CliIo {
  // `execpolicy check … | head` closes stdout early: end quietly instead of an EPIPE stack
  guardPipes([process.stdout, process.stderr]);
  return { stdout: process.stdout, stderr: process.stderr, env: process.env };
}
