import { EXIT, renderCliError } from "@bottlekit/diagnostics";
import { Command, Option } from "commander";
import pkg from "../package.json" with { type: "json" };

/** Exit codes, documented in `--help` (the table every bottlekit CLI shares). */
export { EXIT };

export interface CliIo {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  env: NodeJS.ProcessEnv;
  /** Resolves when the process is asked to stop (SIGTERM/SIGINT); `up` drains then returns. */
  stopSignal?: Promise<string>;
  /** Whether stdin/stdout are a terminal (decides the local-agent gate's attended mode). */
  interactive?: boolean;
  /** Asks a yes/no question (tests); default: a readline prompt on the terminal. */
  ask?: (question: string) => Promise<boolean>;
}

const EXIT_HELP = `
Exit codes:
  0    ok
  1    failure
  2    usage error or invalid input
  3    policy violation (unacknowledged local agent, non-loopback listen without keys)
  130  interrupted`;

/** Builds the command tree. Command modules are imported lazily so `--help` stays fast. */
function buildProgram(io: CliIo, setExit: (code: number) => void): Command {
  const program = new Command("bottle-gateway")
    .description(
      "OpenAI- and Anthropic-compatible LLM gateway that meters, budgets and scans every call.",
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

  const storeOption = () =>
    new Option("--store <url>", "store URL (default: sqlite:$BOTTLEKIT_HOME/bottlekit.db)");

  program
    .command("up")
    .description("start the gateway (default 127.0.0.1:4100; zero-config without --config)")
    .option(
      "--config <file>",
      "gateway config (YAML): model_providers, model_aliases, budgets, dlp, routes",
    )
    .option("--listen <host:port>", "address to listen on (default 127.0.0.1:4100)")
    .addOption(storeOption())
    .option(
      "--ack-local-agents",
      "acknowledge local-agent providers (equals BOTTLEKIT_ACK_LOCAL_AGENTS=1)",
    )
    .option(
      "--revoke-local-agents",
      "forget every local-agent acknowledgement first, so the warning shows (and asks) again",
    )
    .option("--json-logs", "write logs to stderr as one JSON object per line")
    .option(
      "--no-proxy-door",
      "serve the API door only: no egress proxy for bottles and no control socket in $BOTTLEKIT_HOME/state/",
    )
    .action(async (opts) => {
      const m = await import("./commands/up.ts");
      setExit(await m.up(opts, io));
    });

  program
    .command("check")
    .description("validate a config and print the resolved routing table (exit 2 when invalid)")
    .option(
      "--config <file>",
      "gateway config to check (default: zero-config from the environment)",
    )
    .option("--json", "print one JSON document on stdout")
    .action(async (opts) => {
      const m = await import("./commands/check.ts");
      setExit(await m.check(opts, io));
    });

  program
    .command("models")
    .description("list the models and aliases the gateway can route")
    .option("--config <file>", "gateway config (default: zero-config from the environment)")
    .option("--provider <id>", "only this provider's models (e.g. openai)")
    .option("--json", "print one JSON document on stdout")
    .action(async (opts) => {
      const m = await import("./commands/models.ts");
      setExit(await m.models(opts, io));
    });

  const keys = program
    .command("keys")
    .description("manage gateway keys (stored hashed in the store)");
  keys
    .command("create")
    .description("create a key for a bottle and agent; the plaintext is printed once")
    .requiredOption("--bottle <name>", "bottle the key spends for")
    .requiredOption("--agent <name>", "agent the key identifies")
    .option("--label <text>", "free-form label")
    .addOption(storeOption())
    .option("--json", "print one JSON document on stdout")
    .action(async (opts) => {
      const m = await import("./commands/keys.ts");
      setExit(await m.create(opts, io));
    });
  keys
    .command("list")
    .description("list keys (never the plaintext)")
    .addOption(storeOption())
    .option("--json", "print one JSON document on stdout")
    .action(async (opts) => {
      const m = await import("./commands/keys.ts");
      setExit(await m.list(opts, io));
    });
  keys
    .command("revoke")
    .description("revoke a key by id")
    .argument("<id>", "key id (gk_…), from `keys list`")
    .addOption(storeOption())
    .option("--json", "print one JSON document on stdout")
    .action(async (id: string, opts) => {
      const m = await import("./commands/keys.ts");
      setExit(await m.revoke(id, opts, io));
    });

  program
    .command("store")
    .description("manage the budget store")
    .command("migrate")
    .description(
      "copy a SQLite store into an empty Postgres store (budgets, keys, ledger, audit) and verify the totals",
    )
    .requiredOption("--from <url>", "source store, e.g. sqlite:$HOME/.bottlekit/bottlekit.db")
    .option(
      "--to <url>",
      "target store, postgres://… (default $BOTTLEKIT_STORE; keep passwords in PGPASSWORD, not argv)",
    )
    .option("--json", "print one JSON document on stdout")
    .action(async (opts) => {
      const m = await import("./commands/store.ts");
      setExit(await m.migrate(opts, io));
    });

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

/**
 * Every error ends here: a coded error from any library (the gateway's, egress-dlp's,
 * budget-store's, provider-registry's…) is one line with its hint and its exit code; only an
 * unexpected error prints a stack.
 */
function renderError(error: unknown, io: CliIo): number {
  return renderCliError(error, { program: "bottle-gateway", stderr: io.stderr, exitCodeOf });
}

/** Maps an error code to the process exit code. */
export function exitCodeOf(code: string): number {
  if (code === "E_USAGE" || code === "E_INVALID_INPUT" || code === "E_CONFIG") return EXIT.usage;
  if (code === "E_POLICY") return EXIT.policy;
  return EXIT.failure;
}

function defaultIo(): CliIo {
  let stop: Promise<string> | undefined;
  return {
    stdout: process.stdout,
    stderr: process.stderr,
    env: process.env,
    // Signal handlers are installed only when a command (`up`) waits for them, so short
    // commands keep the default Ctrl-C behaviour.
    get stopSignal() {
      stop ??= new Promise<string>((resolve) => {
        process.once("SIGTERM", () => resolve("SIGTERM"));
        process.once("SIGINT", () => resolve("SIGINT"));
      });
      return stop;
    },
    interactive: Boolean(process.stdin.isTTY && process.stdout.isTTY),
  };
}
