import { Command, CommanderError } from "commander";
import pkg from "../package.json" with { type: "json" };
import { isBottleError } from "./errors.ts";

/** Exit codes, documented in `--help`. */
export const EXIT = { ok: 0, failure: 1, usage: 2, policy: 3, interrupted: 130 } as const;

export interface CliIo {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  env: NodeJS.ProcessEnv;
}

const EXIT_HELP = `
Exit codes:
  0    ok
  1    failure
  2    usage error or invalid input (invalid manifests, unknown agent)
  3    policy violation
  130  interrupted

Environment:
  BOTTLEKIT_HOME  where bottles/ and agents/ live (default ~/.bottlekit; --home wins)
  BOTTLEKIT_STORE budget store of usage, budget, cutoff, restore, actions, dashboard
                  (SQLite path or postgres://; default $BOTTLEKIT_HOME/bottlekit.db; --store wins)
  NO_COLOR        disable colour`;

interface GlobalFlags {
  home?: string;
  cwd?: string;
  json?: boolean;
}

/**
 * Builds the command tree. Command modules are imported lazily so `--help` stays fast. `onlyRun`:
 * the command word is `run` (see `commandWord`), so only the run commands are registered: building
 * the other commands and their options is work every `bottle run` would pay for nothing, and
 * `bottle run …` parses, helps and errs the same with the run command alone.
 */
function buildProgram(io: CliIo, setExit: (code: number) => void, onlyRun = false): Command {
  const program = new Command("bottle")
    .description(
      "Manage bottles and agents: validate manifests, show effective config, run agents bottled.",
    )
    .version(pkg.version, "-V, --version", "print the version")
    .helpOption("-h, --help", "show help")
    .option("--home <dir>", "bottlekit home (overrides $BOTTLEKIT_HOME)")
    .option("--cwd <dir>", "project directory to look for .bottlekit/agents in")
    .showSuggestionAfterError(true)
    .exitOverride()
    .configureOutput({
      writeOut: (s) => io.stdout.write(s),
      writeErr: (s) => io.stderr.write(s),
    })
    .addHelpText("after", EXIT_HELP);

  if (onlyRun) {
    registerRunCommands(program, io, setExit);
    return program;
  }

  const flags = (cmd: Command): GlobalFlags => cmd.optsWithGlobals<GlobalFlags>();

  program
    .command("init")
    .description("write a starter home: settings, a bottle, an agent and an exec policy, commented")
    .option("--force", "overwrite files that already exist")
    .option("--json", "print one JSON document")
    .action(async (opts: { force?: boolean; json?: boolean }, cmd: Command) => {
      const { runInit } = await import("./commands/init.ts");
      setExit(await runInit({ ...opts, ...flags(cmd) }, io));
    });

  program
    .command("list")
    .description("list bottles and agents by name (project agents win a name clash)")
    .option("--json", "print one JSON document")
    .action(async (_opts: unknown, cmd: Command) => {
      const { runList } = await import("./commands/list.ts");
      setExit(await runList(flags(cmd), io));
    });

  program
    .command("validate")
    .description("validate manifests; every problem is listed (exit 0 valid, 2 invalid)")
    .argument("[paths...]", "manifest files or directories (default: home and project)")
    .option("--json", "print one JSON document")
    .action(async (paths: string[], _opts: unknown, cmd: Command) => {
      const { runValidate } = await import("./commands/validate.ts");
      setExit(await runValidate(paths, flags(cmd), io));
    });

  program
    .command("show")
    .description("show an agent's effective config and the file that set each key")
    .argument("<agent>", "agent name")
    .option("--json", "print one JSON document")
    .action(async (agent: string, _opts: unknown, cmd: Command) => {
      const { runShow } = await import("./commands/show.ts");
      setExit(await runShow(agent, flags(cmd), io));
    });

  program
    .command("explain")
    .description("explain an agent: extends chain, provenance, how each bottle widens egress")
    .argument("<agent>", "agent name")
    .option("--json", "print one JSON document")
    .action(async (agent: string, _opts: unknown, cmd: Command) => {
      const { runExplain } = await import("./commands/explain.ts");
      setExit(await runExplain(agent, flags(cmd), io));
    });

  // --- operator commands: usage, budget, cutoff, restore, actions, dashboard (issue 20) ---
  registerOperatorCommands(program, io, setExit);

  // --- run, ps, stop, freeze (issue 15) ---
  registerRunCommands(program, io, setExit);

  // --- approvals (issue 19) ---
  registerApprovalsCommands(program, io, setExit);

  return program;
}

/** `bottle approvals [list] | approve | deny | history`. The module is imported lazily. */
function registerApprovalsCommands(
  program: Command,
  io: CliIo,
  setExit: (code: number) => void,
): void {
  const approvals = program
    .command("approvals")
    .description("the agents' proposals: list with the manifest diff and widening, approve, deny");
  approvals
    .command("list", { isDefault: true })
    .description("pending proposals with the exact change as a manifest diff and its widening")
    .option("--all", "also decided and expired proposals")
    .option("--json", "print one JSON document")
    .action(async (_opts: unknown, cmd: Command) => {
      const { runApprovalsList } = await import("./commands/approvals.ts");
      setExit(await runApprovalsList(cmd.optsWithGlobals(), io));
    });
  approvals
    .command("approve")
    .description("approve a proposal: live for the session (default), --for a while, or --persist")
    .argument("<id>", "proposal id (p-…)")
    .option("--for <duration>", "live for this long (30m, 1h, 1d), then reverted")
    .option("--session", "live until the session ends (the default)")
    .option("--persist", "write it into the bottle's manifest (and live now); prints the diff")
    .option("--reason <text>", "a note for the audit trail")
    .option("--json", "print one JSON document")
    .action(async (id: string, _opts: unknown, cmd: Command) => {
      const { runApprovalsApprove } = await import("./commands/approvals.ts");
      setExit(await runApprovalsApprove(id, cmd.optsWithGlobals(), io));
    });
  approvals
    .command("deny")
    .description("deny a proposal (the agent sees the reason)")
    .argument("<id>", "proposal id (p-…)")
    .requiredOption("--reason <text>", "why (shown to the agent, recorded in the audit trail)")
    .option("--json", "print one JSON document")
    .action(async (id: string, _opts: unknown, cmd: Command) => {
      const { runApprovalsDeny } = await import("./commands/approvals.ts");
      setExit(await runApprovalsDeny(id, cmd.optsWithGlobals(), io));
    });
  approvals
    .command("history")
    .description("the audit trail of the queue (one proposal, or all)")
    .argument("[id]", "proposal id")
    .option("--json", "print one JSON document")
    .action(async (id: string | undefined, _opts: unknown, cmd: Command) => {
      const { runApprovalsHistory } = await import("./commands/approvals.ts");
      setExit(await runApprovalsHistory(id, cmd.optsWithGlobals(), io));
    });
}

/** `bottle run`, `bottle ps`, `bottle stop|freeze <session>`. Each imports its module lazily. */
function registerRunCommands(program: Command, io: CliIo, setExit: (code: number) => void): void {
  const collect = (value: string, previous: string[] = []) => [...previous, value];
  program
    .command("run")
    .description(
      "run an agent (or a command after --) bottled: sandbox, egress proxy, probe, budgets",
    )
    .argument("[agent]", "agent name (omit to run only the command after --)")
    .argument("[command...]", "after --: the command (custom agents) or extra agent CLI arguments")
    .option("--dry-run", "print the plan (binds, env names, routes, budgets) and start nothing")
    .option(
      "--budget <limit>",
      "budget for this run: <provider>=<tokens>[k|m][/<window>] (repeatable)",
      collect,
    )
    .option("--resume <session>", "restore a frozen session's files and run its agent again")
    .option("--agent-bin <path>", "the agent CLI to run (default: found on PATH)")
    .option(
      "--run-as <account>",
      "account the agent runs as when bottle runs as root (default bottlekit-agent)",
    )
    .option("--json", "print one JSON document (--dry-run)")
    .action(async (_agent: string | undefined, _rest: string[], _opts: unknown, cmd: Command) => {
      // Operands after `--` are the command, even the first one: read the split from the raw argv.
      const raw = (program as unknown as { rawArgs: string[] }).rawArgs ?? [];
      const dd = raw.indexOf("--", raw.indexOf("run"));
      const trailing = dd >= 0 ? raw.slice(dd + 1) : [];
      const before = dd >= 0 ? cmd.args.slice(0, cmd.args.length - trailing.length) : cmd.args;
      if (before.length > 1) {
        io.stderr.write("bottle: put the command after --: bottle run <agent> -- <command…>\n");
        setExit(2);
        return;
      }
      const { runRun } = await import("./commands/run.ts");
      setExit(await runRun(before[0], trailing, cmd.optsWithGlobals(), io));
    });
  program
    .command("ps")
    .description("live sessions: bottle, agent, pid, uptime, tokens against budgets")
    .option("--json", "print one JSON document")
    .action(async (_opts: unknown, cmd: Command) => {
      const { runPs } = await import("./commands/ps.ts");
      setExit(await runPs(cmd.optsWithGlobals(), io));
    });
  program
    .command("stop")
    .description("stop a live session's agent now (--cutoff: drop its routes, it keeps running)")
    .argument("<session>", "session id (or a unique prefix)")
    .option("--cutoff", "cut the session's egress off instead of stopping it")
    .option("--json", "print one JSON document")
    .action(async (session: string, opts: { cutoff?: boolean }, cmd: Command) => {
      const { runSessionControl } = await import("./commands/session-control.ts");
      setExit(
        await runSessionControl(
          opts.cutoff ? "cutoff" : "stop",
          session,
          cmd.optsWithGlobals(),
          io,
        ),
      );
    });
  program
    .command("freeze")
    .description(
      "snapshot a live session's project (git ref or archive) and stop it; resume with run --resume",
    )
    .argument("<session>", "session id (or a unique prefix)")
    .option("--json", "print one JSON document")
    .action(async (session: string, _opts: unknown, cmd: Command) => {
      const { runSessionControl } = await import("./commands/session-control.ts");
      setExit(await runSessionControl("freeze", session, cmd.optsWithGlobals(), io));
    });
}

const STORE_HELP =
  "budget store: SQLite file, sqlite:<path> or postgres://… (env BOTTLEKIT_STORE; default $BOTTLEKIT_HOME/bottlekit.db)";

/** The budget-store commands. Each imports its module lazily. */
function registerOperatorCommands(
  program: Command,
  io: CliIo,
  setExit: (code: number) => void,
): void {
  const withGlobals = <T>(cmd: Command): T => cmd.optsWithGlobals<T & object>();
  const collect = (value: string, previous: string[] = []) => [...previous, value];

  program
    .command("usage")
    .description("tokens (input, output, cache), cost and missing-usage counts from the ledger")
    .option(
      "--by <columns>",
      "group by bottle, agent, provider, model (repeat or comma-separate)",
      collect,
    )
    .option("--since <time>", "from a duration ago (30m, 24h, 7d) or a date (2026-12-01, UTC)")
    .option("--until <time>", "up to (same forms as --since; default now)")
    .option("--bottle <name>", "only this bottle")
    .option("--agent <name>", "only this agent")
    .option("--provider <id>", "only this provider")
    .option("--model <id>", "only this model")
    .option("--store <url>", STORE_HELP)
    .option("--json", "print one JSON document")
    .action(async (_opts: unknown, cmd: Command) => {
      const { runUsage } = await import("./commands/usage.ts");
      setExit(await runUsage(withGlobals(cmd), io));
    });

  const budget = program
    .command("budget")
    .description("operator budgets: list, set, rm (exit 1 when rm matches nothing)");
  budget
    .command("list")
    .description("list every budget with its source")
    .option("--scope <scope>", "only bottle, agent, global or ceiling budgets")
    .option("--key <key>", "only this bottle/agent name")
    .option("--provider <id>", "only this provider")
    .option("--source <source>", "only budgets from settings, config, manifest, operator or flag")
    .option("--store <url>", STORE_HELP)
    .option("--json", "print one JSON document")
    .action(async (_opts: unknown, cmd: Command) => {
      const { runBudgetList } = await import("./commands/budget.ts");
      setExit(await runBudgetList(withGlobals(cmd), io));
    });
  budget
    .command("set")
    .description(
      "set an operator budget, e.g. `budget set bottle dev anthropic=200k/daily --policy cutoff`",
    )
    .argument("<scope>", "bottle, agent, global or ceiling")
    .argument("<key>", "the bottle or agent name ('*' for global and ceiling)")
    .argument(
      "<limit>",
      "<provider>=<tokens>[k|m|g][/<window>]; window none|daily|weekly|monthly|<N>d",
    )
    .option("--usd <amount>", "also a USD limit")
    .option(
      "--policy <policy>",
      "when spent: cutoff, freeze or kill (default: the store's default)",
    )
    .option("--store <url>", STORE_HELP)
    .option("--json", "print one JSON document")
    .action(async (scope: string, key: string, limit: string, _opts: unknown, cmd: Command) => {
      const { runBudgetSet } = await import("./commands/budget.ts");
      setExit(await runBudgetSet(scope, key, limit, withGlobals(cmd), io));
    });
  budget
    .command("rm")
    .description("remove operator budgets of a scope and key (all providers unless one is named)")
    .argument("<scope>", "bottle, agent, global or ceiling")
    .argument("<key>", "the bottle or agent name ('*' for global and ceiling)")
    .argument("[provider]", "only this provider")
    .option(
      "--source <source>",
      "remove budgets of this source instead of operator (settings, config, manifest, flag)",
    )
    .option("--store <url>", STORE_HELP)
    .option("--json", "print one JSON document")
    .action(
      async (
        scope: string,
        key: string,
        provider: string | undefined,
        _opts: unknown,
        cmd: Command,
      ) => {
        const { runBudgetRm } = await import("./commands/budget.ts");
        setExit(await runBudgetRm(scope, key, provider, withGlobals(cmd), io));
      },
    );

  program
    .command("cutoff")
    .description("cut a bottle off now: its next call through the gateway gets 429 cut-off")
    .argument("<bottle>", "bottle name")
    .requiredOption("--reason <text>", "why (recorded in the audit trail)")
    .option("--policy <policy>", "cutoff, freeze or kill (default: the store's default policy)")
    .option("--store <url>", STORE_HELP)
    .option("--json", "print one JSON document")
    .action(async (bottle: string, _opts: unknown, cmd: Command) => {
      const { runCutoff } = await import("./commands/cutoff.ts");
      setExit(await runCutoff(bottle, withGlobals(cmd), io));
    });

  program
    .command("restore")
    .description("lift a bottle's cutoff (exit 1 when it was not cut off)")
    .argument("<bottle>", "bottle name")
    .requiredOption("--reason <text>", "why (recorded in the audit trail)")
    .option("--store <url>", STORE_HELP)
    .option("--json", "print one JSON document")
    .action(async (bottle: string, _opts: unknown, cmd: Command) => {
      const { runRestore } = await import("./commands/restore.ts");
      setExit(await runRestore(bottle, withGlobals(cmd), io));
    });

  program
    .command("actions")
    .description("the enforcement audit trail: cutoffs, freezes, kills, restores")
    .option("--bottle <name>", "only this bottle")
    .option("--since <time>", "from a duration ago (30m, 24h, 7d) or a date")
    .option("--limit <n>", "the newest N (default 100)")
    .option("--store <url>", STORE_HELP)
    .option("--json", "print one JSON document")
    .action(async (_opts: unknown, cmd: Command) => {
      const { runActions } = await import("./commands/actions.ts");
      setExit(await runActions(withGlobals(cmd), io));
    });

  program
    .command("dashboard")
    .description("live table of every bottle's spend against its budgets; keys cut off and restore")
    .option("--poll <ms>", "how often to read the store (default 500)")
    .option("--store <url>", STORE_HELP)
    .action(async (_opts: unknown, cmd: Command) => {
      const { runDashboard } = await import("./commands/dashboard.ts");
      setExit(await runDashboard(withGlobals(cmd), io));
    });
  // --- end of operator commands ---
}

/** Runs the CLI with `argv` (without node and script) and resolves to the exit code. */
/**
 * The command word of `argv`: its first operand after the global options `--home <dir>` and
 * `--cwd <dir>` (or their `=` forms); undefined when another option comes first (`--help`,
 * `--version`). bin/bottle.js reads it the same way to take `run` to the bundled files.
 */
export function commandWord(argv: readonly string[]): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    if (a === "--home" || a === "--cwd") i++;
    else if (!a.startsWith("-")) return a;
    else if (!a.startsWith("--home=") && !a.startsWith("--cwd=")) return undefined;
  }
  return undefined;
}

export async function run(argv: readonly string[], io: CliIo = defaultIo()): Promise<number> {
  let exitCode: number = EXIT.ok;
  const program = buildProgram(
    io,
    (code) => {
      exitCode = code;
    },
    commandWord(argv) === "run",
  );
  if (argv.length === 0) {
    io.stderr.write(program.helpInformation());
    return EXIT.usage;
  }
  try {
    await program.parseAsync([...argv], { from: "user" });
    return exitCode;
  } catch (error) {
    return renderError(error, io, argv.includes("--json"));
  }
}

interface ManifestErrorLike {
  name: "ManifestError";
  code: string;
  message: string;
  hint?: string;
  issues?: readonly unknown[];
}

/** Duck-typed so that `--help` does not load the manifest library. */
function isManifestErrorLike(error: unknown): error is ManifestErrorLike {
  return error instanceof Error && error.name === "ManifestError" && "code" in error;
}

function renderError(error: unknown, io: CliIo, json: boolean): number {
  if (error instanceof CommanderError) {
    if (error.code === "commander.helpDisplayed" || error.code === "commander.version") {
      return EXIT.ok;
    }
    io.stderr.write(`Run 'bottle --help' to see the commands and options.\n`);
    return EXIT.usage;
  }
  if (isManifestErrorLike(error)) {
    io.stderr.write(`bottle: ${error.message}\n`);
    if (error.hint && !error.message.includes(error.hint)) io.stderr.write(`hint: ${error.hint}\n`);
    const code = error.code === "E_INTERNAL" || error.code === "E_READ" ? EXIT.failure : EXIT.usage;
    if (json) {
      io.stdout.write(
        `${JSON.stringify({ error: { code: error.code, message: error.message, hint: error.hint ?? null, issues: error.issues ?? [] } }, null, 2)}\n`,
      );
    }
    return code;
  }
  if (isBottleError(error)) {
    io.stderr.write(`bottle: ${error.message}\n`);
    if (error.hint) io.stderr.write(`hint: ${error.hint}\n`);
    return error.code === "E_USAGE" || error.code === "E_INVALID_INPUT" ? EXIT.usage : EXIT.failure;
  }
  const stack = error instanceof Error ? (error.stack ?? error.message) : String(error);
  io.stderr.write(`bottle: unexpected error\n${stack}\n`);
  io.stderr.write("This is a bug in bottlekit; please report it with the output above.\n");
  return EXIT.failure;
}

function defaultIo(): CliIo {
  return { stdout: process.stdout, stderr: process.stderr, env: process.env };
}
