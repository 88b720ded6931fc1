import { EXIT, renderCliError } from "@bottlekit/diagnostics";
import { Command, Option } from "commander";
import pkg from "../package.json" with { type: "json" };
import { exitCodeOf } from "./errors.ts";

export { EXIT };

/** Streams, environment and directory of one run. */
export interface CliIo {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  env: NodeJS.ProcessEnv;
  /** Prompt text for `-` and `--prompt-file -`; approvals are asked here when it is a TTY. */
  stdin?: NodeJS.ReadableStream;
  /** Working directory (default `process.cwd()`). */
  cwd?: string;
}

const HELP_AFTER = `
The prompt: one argument, or --prompt-file FILE, or - (read from stdin).

Model calls go to bottle-gateway (${"$"}BOTTLEKIT_GATEWAY_URL, default http://127.0.0.1:4100/v1)
with the gateway key in ${"$"}BOTTLEKIT_GATEWAY_KEY, so budgets, cutoffs and DLP apply. Any other
OpenAI-compatible endpoint: --base-url URL --api-key-env NAME (the variable holding its key).
HTTPS_PROXY / HTTP_PROXY / NO_PROXY are honoured (bottle run's proxy door).

Tools: read_file, list_dir, search_files, write_file, apply_patch (confined to the workspace,
symbolic links resolved), shell, and those of --tools tools.json. Every shell script and
tools.json command is checked by the exec policy (--policy files, ${"$"}BOTTLEKIT_EXEC_POLICY,
${"$"}BOTTLEKIT_HOME/rules/default.rules): allow runs, forbidden never runs, prompt asks on a
TTY and is refused unattended.

stdout: the final answer (--stream: as it arrives), or with --json one JSON document.
Audit: NDJSON in ${"$"}BOTTLEKIT_HOME/audit/agentcli-YYYYMMDD.ndjson (or --audit FILE).

Exit codes:
  0    final answer
  1    steps ran out (needs human review), or the model endpoint failed
  2    usage error or invalid input (flags, prompt, tools.json, policy files)
  3    stopped by the budget (gateway budget_exceeded, --max-tokens) or by policy (gateway DLP)
  130  interrupted`;

const collect = (v: string, prev: string[] = []) => [...prev, v];

export interface ParsedArgs {
  prompt: string | undefined;
  opts: Record<string, unknown>;
}

function buildProgram(io: CliIo, onRun: (a: ParsedArgs) => void): Command {
  return new Command("agentcli")
    .description(
      "A non-interactive coding agent: any provider through bottle-gateway, every command through the exec policy.",
    )
    .argument("[prompt]", "the task; - reads it from stdin")
    .version(pkg.version, "-V, --version", "print the version")
    .helpOption("-h, --help", "show help")
    .option("--prompt-file <file>", "read the prompt from a file (- = stdin)")
    .option("--system <text>", "system message (default: agentcli's own)")
    .option("--system-file <file>", "system message from a file")
    .option("--developer <text>", "developer message (repeatable)", collect)
    .option("--developer-file <file>", "developer message from a file (repeatable)", collect)
    .option(
      "-m, --model <provider/model>",
      "model (env AGENTCLI_MODEL; default openai/gpt-4o-mini)",
    )
    .option(
      "--base-url <url>",
      "OpenAI-compatible base URL instead of the gateway (env AGENTCLI_BASE_URL)",
    )
    .option(
      "--direct",
      "call the model's provider on its own endpoint (provider-registry), not the gateway",
    )
    .option(
      "--api-key-env <name>",
      "environment variable holding the key (default BOTTLEKIT_GATEWAY_KEY)",
    )
    .option("--max-steps <n>", "model turns before giving up (default 20, at most 200)")
    .option("--max-tokens <n>", "stop (exit 3) once the run has used this many tokens")
    .option("--stream", "print the answer as it arrives")
    .option("--json", "print one JSON document: answer, usage, steps, tool calls")
    .option("--print-config", "print every setting with its source, then exit")
    .option("-C, --workspace <dir>", "workspace root the tools are confined to (default: cwd)")
    .option("--tools <file>", "goagent-style tools.json (env AGENTCLI_TOOLS)")
    .option("--policy <file>", "exec policy file, .rules or .yaml (repeatable)", collect)
    .addOption(
      new Option("--rules <file>", "same as --policy (what bottle run passes)")
        .argParser(collect)
        .hideHelp(),
    )
    .option("--shell-env <name>", "also pass this variable to shell (repeatable)", collect)
    .option("--tool-timeout <sec>", "per-call tool timeout, kills the process group (default 60)")
    .option("--tool-output-cap <bytes>", "bytes kept per tool stream (default 65536)")
    .option("--http-timeout <sec>", "model call timeout (default 120)")
    .option("--http-retries <n>", "retries of a failed model call (default 2)")
    .option(
      "--http-retry-backoff <ms>",
      "first retry delay (default 500, doubled, honours retry-after)",
    )
    .option("--audit <file>", "audit log file (env AGENTCLI_AUDIT)")
    .option("-v, --verbose", "progress lines on stderr")
    .addOption(new Option("--quiet", "no progress lines").hideHelp())
    .showSuggestionAfterError(true)
    .allowExcessArguments(false)
    .exitOverride()
    .configureOutput({
      writeOut: (s) => io.stdout.write(s),
      writeErr: (s) => io.stderr.write(s),
    })
    .addHelpText("after", HELP_AFTER)
    .action((prompt: string | undefined, opts: Record<string, unknown>) => {
      onRun({ prompt, opts });
    });
}

/** Runs the CLI with `argv` (without node and script) and resolves to the exit code. */
export async function run(argv: readonly string[], io: CliIo = defaultIo()): Promise<number> {
  let parsed: ParsedArgs | undefined;
  const program = buildProgram(io, (a) => {
    parsed = a;
  });
  try {
    if (argv.length === 0) {
      io.stderr.write(program.helpInformation());
      io.stderr.write("agentcli: a prompt is required\n");
      return EXIT.usage;
    }
    await program.parseAsync([...argv], { from: "user" });
    if (parsed === undefined) return EXIT.ok;
    const { runCommand } = await import("./commands/run.ts");
    return await runCommand(parsed, io);
  } catch (error) {
    const json = parsed?.opts["json"] === true;
    return renderCliError(error, {
      program: "agentcli",
      stderr: io.stderr,
      stdout: io.stdout,
      json,
      exitCodeOf: (code) =>
        code.startsWith("E_") ? exitCodeOf(code as Parameters<typeof exitCodeOf>[0]) : undefined,
    });
  }
}

function defaultIo(): CliIo {
  return {
    stdout: process.stdout,
    stderr: process.stderr,
    env: process.env,
    stdin: process.stdin,
    cwd: process.cwd(),
  };
}
