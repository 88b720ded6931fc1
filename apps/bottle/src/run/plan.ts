import fs from "node:fs";
import path from "node:path";
import { type BudgetInput, isBudgetWindow, parseBudgetFlag } from "@bottlekit/budget-store";
import type { Route } from "@bottlekit/egress-dlp";
import {
  type CutoffPolicy,
  displayEnv,
  type EnvValue,
  resolveAgent,
  resolveDirs,
  summarizeRoute,
} from "@bottlekit/manifest";
import { getProvider } from "@bottlekit/provider-registry";
import { BottleError } from "../errors.ts";

/** The agent CLIs `bottle run` knows, plus any custom command. */
export type AgentKind = "claude" | "codex" | "opencode" | "agentcli" | "command";

export interface RunFlags {
  home?: string;
  cwd?: string;
  json?: boolean;
  dryRun?: boolean;
  budget?: string[];
  resume?: string;
  /** Path of the agent CLI (default: found on PATH). */
  agentBin?: string;
  /** Account the agent runs as when bottle runs as root. */
  runAs?: string;
  /** Skip nothing: the probe always runs; kept for symmetry of JSON output. */
}

export interface PlannedBudget {
  provider: string;
  tokens: number;
  window: string;
  source: "manifest" | "flag";
}

/** Everything `bottle run` will do, computed before anything starts (the `--dry-run` output). */
export interface RunPlan {
  agent: string | null;
  bottle: string;
  kind: AgentKind;
  /** argv of the agent inside the sandbox (program resolved at start). */
  command: string[];
  projectDir: string;
  /** Env names and where each value comes from (never the values of host variables). */
  env: { name: string; source: string }[];
  /** Manifest env entries, for materializing at start. */
  envEntries: Record<string, EnvValue>;
  routes: Route[];
  routeSummaries: string[];
  credentials: string[];
  llmHosts: string[];
  budgets: PlannedBudget[];
  cutoff: CutoffPolicy;
  execPolicyRules: string[];
  /** The agent's model, when its manifest sets one. */
  model?: string;
  readOnly: string[];
  readWrite: string[];
  hidden: string[];
  /** What bottlekit enforces for this agent and what it cannot. */
  enforced: string[];
  notEnforced: string[];
  home: string;
}

/** Provider API hosts per agent CLI (their LLM traffic is metered by the controller). */
const LLM_HOSTS: Record<AgentKind, string[]> = {
  claude: ["api.anthropic.com"],
  codex: ["api.openai.com"],
  opencode: [],
  agentcli: [],
  command: [],
};

/** Credentials each agent CLI needs by default (placeholders inside, the real value in the controller). */
const DEFAULT_CREDENTIALS: Record<AgentKind, string[]> = {
  claude: ["ANTHROPIC_API_KEY"],
  codex: ["OPENAI_API_KEY"],
  opencode: [],
  agentcli: [],
  command: [],
};

const COMMON_ENFORCED = [
  "network: only the egress proxy (own network namespace, declared routes)",
  "files: project writable, system read-only, homes hidden, /tmp private",
  "no new unix sockets, no io_uring (seccomp)",
  "no credential values inside (placeholders only)",
  "budget and cutoff/freeze/kill on the live process",
];

function enforcementOf(
  kind: AgentKind,
  hasRules: boolean,
): { enforced: string[]; notEnforced: string[] } {
  const enforced = [...COMMON_ENFORCED];
  const notEnforced: string[] = [];
  if (!hasRules) notEnforced.push("exec policy: the bottle has no exec_policy.rules");
  else if (kind === "claude")
    enforced.push("exec policy: PreToolUse hook on Bash runs execpolicy (fails closed)");
  else if (kind === "codex")
    enforced.push("exec policy: Codex .rules in the bottle's CODEX_HOME (enforced by Codex)");
  else if (kind === "agentcli") enforced.push("exec policy: agentcli's own tool gate (--rules)");
  else {
    notEnforced.push(
      `exec policy: ${kind === "opencode" ? "opencode" : "a custom command"} has no hook bottlekit can use; commands it runs are not checked (the sandbox still holds)`,
    );
  }
  return { enforced, notEnforced };
}

/**
 * A manifest window (`30m`, `24h`, `7d`, `4w`) as a store window (`none`, `daily`, `<N>d`…).
 * Windows shorter than a day, or not whole days, have no store equivalent: refused.
 */
export function windowOf(entry: { window?: string }, where: string): string {
  const w = entry.window;
  if (w === undefined) return "none";
  if (isBudgetWindow(w)) return w;
  const m = /^([1-9][0-9]*)([mhdw])$/.exec(w);
  const n = m ? Number(m[1]) : 0;
  const days =
    m?.[2] === "d"
      ? n
      : m?.[2] === "w"
        ? 7 * n
        : m?.[2] === "h" && n % 24 === 0
          ? n / 24
          : undefined;
  if (days === undefined) {
    throw new BottleError(
      "E_INVALID_INPUT",
      `${where}: window ${JSON.stringify(w)} is shorter than a day or not whole days`,
      {
        hint: "use a window in whole days (24h, 7d, 4w) or none",
      },
    );
  }
  return days === 1 ? "daily" : `${days}d`;
}

/**
 * Builds the run plan: manifest → effective bottle (via @bottlekit/manifest) → agent kind,
 * command, env names, routes, credentials, budgets (manifest, then `--budget` for this run).
 */
export function planRun(
  agentName: string | undefined,
  trailing: readonly string[],
  flags: RunFlags,
  env: NodeJS.ProcessEnv,
): RunPlan {
  const loc = {
    env,
    ...(flags.home === undefined ? {} : { home: flags.home }),
    ...(flags.cwd === undefined ? {} : { cwd: flags.cwd }),
  };
  const dirs = resolveDirs(loc);
  const projectDir = path.resolve(flags.cwd ?? process.cwd());
  if (!fs.existsSync(projectDir) || !fs.statSync(projectDir).isDirectory()) {
    throw new BottleError("E_INVALID_INPUT", `--cwd: ${projectDir} is not a directory`, {
      hint: "run bottle from the project directory or pass --cwd <dir>",
    });
  }
  let kind: AgentKind = "command";
  let command: string[] = [];
  let bottle = "default";
  let envEntries: Record<string, EnvValue> = {};
  let routes: Route[] = [];
  let credentials: string[] = [];
  let budgets: PlannedBudget[] = [];
  let cutoff: CutoffPolicy = "cutoff";
  let rules: string[] = [];
  let readOnly: string[] = [];
  let readWrite: string[] = [];
  let hidden: string[] = [];
  let model: string | undefined;

  if (agentName !== undefined) {
    const agent = resolveAgent(agentName, loc);
    const c = agent.config;
    bottle = c.bottle;
    model = c.model;
    envEntries = c.env;
    routes = c.egress.routes;
    cutoff = c.cutoff;
    rules = c.exec_policy.rules.map((r) => path.resolve(dirs.home, r));
    readOnly = c.sandbox.filesystem.read_only.map((p) => path.resolve(projectDir, p));
    readWrite = c.sandbox.filesystem.read_write.map((p) => path.resolve(projectDir, p));
    hidden = c.sandbox.filesystem.deny_read.map((p) => path.resolve(projectDir, p));
    budgets = Object.entries(c.budget).map(([provider, b]) => ({
      provider,
      tokens: b.tokens,
      window: windowOf(b, `budget.${provider}.window`),
      source: "manifest" as const,
    }));
    const provider = c.agent_provider;
    if (provider?.name !== undefined) {
      kind = provider.name;
      command = [flags.agentBin ?? provider.name, ...trailing];
    } else if (provider?.command !== undefined) {
      command = [...provider.command, ...trailing];
    } else if (trailing.length > 0) {
      command = [...trailing];
    } else {
      throw new BottleError(
        "E_INVALID_INPUT",
        `agent ${agentName}: its bottle ${bottle} sets no agent_provider`,
        {
          hint: "set agent_provider.name (claude, codex, opencode, agentcli) or .command in the bottle, or give a command after --",
        },
      );
    }
    credentials = provider?.credentials ?? DEFAULT_CREDENTIALS[kind];
  } else {
    if (trailing.length === 0) {
      throw new BottleError("E_USAGE", "give an agent name or a command after --", {
        hint: "bottle run <agent>  or  bottle run -- <command> [args…]",
      });
    }
    command = [...trailing];
  }

  for (const value of flags.budget ?? []) {
    let parsed: BudgetInput[];
    try {
      parsed = parseBudgetFlag(value, bottle);
    } catch (error) {
      const e = error as { message: string; hint?: string };
      throw new BottleError("E_USAGE", e.message, e.hint === undefined ? {} : { hint: e.hint });
    }
    for (const b of parsed) {
      budgets = budgets.filter((x) => x.provider !== b.provider);
      budgets.push({
        provider: b.provider,
        tokens: b.tokens ?? 0,
        window: b.window ?? "none",
        source: "flag",
      });
    }
  }

  // agentcli talks to whichever provider its model names: declare that provider's API host (so
  // the proxy meters it) and its key (a placeholder inside, the real value in the controller).
  let llmHosts = LLM_HOSTS[kind];
  if (kind === "agentcli" && model !== undefined) {
    const upstream = agentcliUpstream(model);
    if (upstream !== undefined) {
      llmHosts = [upstream.host];
      if (credentials.length === 0 && upstream.keyEnv !== undefined)
        credentials = [upstream.keyEnv];
    }
  }

  const { enforced, notEnforced } = enforcementOf(kind, rules.length > 0);
  return {
    agent: agentName ?? null,
    bottle,
    kind,
    command,
    projectDir,
    env: Object.entries(envEntries).map(([name, v]) => ({
      name,
      source: v.kind === "literal" ? "literal" : displayEnv(v),
    })),
    envEntries,
    routes,
    routeSummaries: routes.map((r) => summarizeRoute(r)),
    credentials,
    llmHosts,
    budgets,
    cutoff,
    execPolicyRules: rules,
    ...(model === undefined ? {} : { model }),
    readOnly,
    readWrite,
    hidden,
    enforced,
    notEnforced,
    home: dirs.home,
  };
}

/** The API host and key variable of the provider a `provider/model` string names. */
export function agentcliUpstream(model: string): { host: string; keyEnv?: string } | undefined {
  const slash = model.indexOf("/");
  if (slash <= 0) return undefined;
  const info = getProvider(model.slice(0, slash));
  if (info?.baseUrl === undefined) return undefined;
  const host = new URL(info.baseUrl).hostname;
  const keyEnv = info.apiKeyEnv[0];
  return keyEnv === undefined ? { host } : { host, keyEnv };
}
