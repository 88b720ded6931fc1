import type {
  Budget,
  BudgetFilter,
  BudgetInput,
  BudgetScope,
  BudgetSource,
  BudgetWindow,
  CutoffPolicy,
} from "@bottlekit/budget-store";
import { didYouMean, suggest } from "@bottlekit/diagnostics";
import type { CliIo } from "../cli.ts";
import { writeJson } from "../context.ts";
import { BottleError } from "../errors.ts";
import { type StoreFlags, withStore } from "../store.ts";
import { formatCount, formatTable } from "./usage.ts";

export const SCOPES: readonly BudgetScope[] = ["bottle", "agent", "global", "ceiling"];
export const POLICIES: readonly CutoffPolicy[] = ["cutoff", "freeze", "kill"];

/**
 * The source operator budgets are stored under: kept until an operator removes them, ranked
 * below a run's `--budget` (flag) and above manifests, the gateway config and settings.
 */
export const OPERATOR_SOURCE: BudgetSource = "operator";

export interface BudgetSetFlags extends StoreFlags {
  usd?: string;
  policy?: string;
}

export interface BudgetListFlags extends StoreFlags {
  scope?: string;
  key?: string;
  provider?: string;
  source?: string;
}

export interface BudgetRmFlags extends StoreFlags {
  source?: string;
}

const SPEC =
  /^([A-Za-z0-9][A-Za-z0-9._-]*)(?:=([0-9]+(?:\.[0-9]+)?)([kKmMgG]?))?(?:\/([A-Za-z0-9]+))?$/;
const SCALE: Record<string, number> = { "": 1, k: 1e3, m: 1e6, g: 1e9 };

function oneOf<T extends string>(value: string, allowed: readonly T[], what: string): T {
  if ((allowed as readonly string[]).includes(value)) return value as T;
  const near = didYouMean(suggest(value, allowed, 1));
  throw new BottleError(
    "E_USAGE",
    `${what}: ${JSON.stringify(value)} is not one of ${allowed.join(", ")}`,
    { hint: near || `use one of ${allowed.join(", ")}` },
  );
}

/** `global` and `ceiling` have the key "*"; `bottle` and `agent` need a name. */
export function parseScopeKey(scopeText: string, key: string): { scope: BudgetScope; key: string } {
  const scope = oneOf(scopeText, SCOPES, "scope");
  if ((scope === "global" || scope === "ceiling") && key !== "*") {
    throw new BottleError(
      "E_USAGE",
      `scope ${scope}: the key must be "*", got ${JSON.stringify(key)}`,
      {
        hint: `bottle budget set ${scope} '*' <provider>=<tokens>`,
      },
    );
  }
  if (
    (scope === "bottle" || scope === "agent") &&
    (key === "*" || !/^[A-Za-z0-9][\w.-]{0,127}$/.test(key))
  ) {
    throw new BottleError(
      "E_USAGE",
      `scope ${scope}: ${JSON.stringify(key)} is not a ${scope} name`,
      {
        hint: `name one ${scope} (letters, digits, ".", "_", "-"), e.g. bottle budget set ${scope} dev anthropic=200k`,
      },
    );
  }
  return { scope, key };
}

function isWindow(w: string): w is BudgetWindow {
  return (
    w === "none" ||
    w === "daily" ||
    w === "weekly" ||
    w === "monthly" ||
    /^[1-9][0-9]{0,3}d$/.test(w)
  );
}

/**
 * Parses `<provider>=<tokens>[k|m|g][/<window>]` (tokens may be left out when `--usd` is given,
 * as `<provider>[/<window>]`), `--usd` and `--policy` into a budget for the operator source.
 */
export function parseBudgetSpec(
  scopeText: string,
  key: string,
  spec: string,
  flags: { usd?: string | undefined; policy?: string | undefined },
): BudgetInput {
  const { scope } = parseScopeKey(scopeText, key);
  const m = SPEC.exec(spec.trim());
  if (m === null) {
    throw new BottleError(
      "E_USAGE",
      `budget ${JSON.stringify(spec)} is not <provider>=<tokens>[/<window>]`,
      {
        hint: "e.g. anthropic=200k, openai=1.5m/daily, gemini=50000/7d (suffixes k, m, g)",
      },
    );
  }
  const [, provider = "", num, unit = "", window] = m;
  const input: BudgetInput = { scope, key, provider, source: OPERATOR_SOURCE };
  if (num !== undefined) {
    const tokens = Number(num) * (SCALE[unit.toLowerCase()] ?? 1);
    if (!Number.isSafeInteger(tokens)) {
      throw new BottleError(
        "E_USAGE",
        `budget ${JSON.stringify(spec)}: not a whole number of tokens`,
        {
          hint: "use an integer, or a suffix that makes one (1.5k = 1500)",
        },
      );
    }
    input.tokens = tokens;
  }
  if (flags.usd !== undefined) {
    const usd = Number(flags.usd);
    if (flags.usd.trim() === "" || !Number.isFinite(usd) || usd < 0) {
      throw new BottleError("E_USAGE", `--usd ${JSON.stringify(flags.usd)} is not an amount >= 0`, {
        hint: "e.g. --usd 25 or --usd 2.50",
      });
    }
    input.usd = usd;
  }
  if (input.tokens === undefined && input.usd === undefined) {
    throw new BottleError("E_USAGE", `budget ${JSON.stringify(spec)} sets no limit`, {
      hint: `give tokens (${provider}=200k) or --usd N, or both`,
    });
  }
  if (window !== undefined) {
    if (!isWindow(window)) {
      throw new BottleError(
        "E_USAGE",
        `budget ${JSON.stringify(spec)}: unknown window "${window}"`,
        {
          hint: 'use "none", "daily", "weekly", "monthly" or "<N>d" (rolling N days)',
        },
      );
    }
    input.window = window;
  }
  if (flags.policy !== undefined) input.policy = oneOf(flags.policy, POLICIES, "--policy");
  return input;
}

function describe(b: Budget | BudgetInput): string {
  const parts: string[] = [];
  if (b.tokens !== undefined) parts.push(`${formatCount(b.tokens)} tokens`);
  if (b.usd !== undefined) parts.push(`$${b.usd}`);
  const window = b.window ?? "none";
  return `${b.scope} ${b.key ?? "*"} ${b.provider}: ${parts.join(" and ")}${window === "none" ? "" : ` per ${window}`}`;
}

function budgetJson(b: Budget): Record<string, unknown> {
  return {
    scope: b.scope,
    key: b.key,
    provider: b.provider,
    tokens: b.tokens ?? null,
    usd: b.usd ?? null,
    window: b.window,
    policy: b.policy ?? null,
    source: b.source,
    updatedAt: new Date(b.updatedAt).toISOString(),
  };
}

export const SOURCES: readonly BudgetSource[] = [
  "settings",
  "config",
  "manifest",
  "operator",
  "flag",
];

/** `bottle budget list`. */
export async function runBudgetList(flags: BudgetListFlags, io: CliIo): Promise<number> {
  return withStore(flags, io, async (store) => {
    const filter: BudgetFilter = {};
    if (flags.scope !== undefined) filter.scope = oneOf(flags.scope, SCOPES, "--scope");
    if (flags.key !== undefined) filter.key = flags.key;
    if (flags.provider !== undefined) filter.provider = flags.provider;
    if (flags.source !== undefined) filter.source = oneOf(flags.source, SOURCES, "--source");
    const statuses = await store.budgetStatus(filter);
    const defaultPolicy = await store.getDefaultPolicy();
    if (flags.json === true) {
      writeJson(io, {
        defaultPolicy,
        budgets: statuses.map((s) => ({
          ...budgetJson(s.budget),
          effective: s.effective,
          windowStart: s.windowStart === undefined ? null : new Date(s.windowStart).toISOString(),
          used: {
            tokens: s.tokens === undefined ? null : s.tokens.used,
            usd: s.usd === undefined ? null : s.usd.used,
          },
          remaining: {
            tokens: s.tokens === undefined ? null : s.tokens.remaining,
            usd: s.usd === undefined ? null : s.usd.remaining,
          },
        })),
      });
      return 0;
    }
    if (statuses.length === 0) {
      io.stdout.write("no budgets\n");
      return 0;
    }
    const rows = statuses.map(({ budget: b, tokens, usd, effective }) => [
      b.scope,
      b.key,
      b.provider,
      b.tokens === undefined ? "-" : formatCount(b.tokens),
      tokens === undefined ? "-" : formatCount(tokens.used),
      b.usd === undefined ? "-" : `$${b.usd}`,
      usd === undefined ? "-" : `$${usd.used.toFixed(2)}`,
      b.window,
      b.policy ?? `(${defaultPolicy})`,
      effective ? b.source : `${b.source} (shadowed)`,
    ]);
    io.stdout.write(
      formatTable(
        [
          "scope",
          "key",
          "provider",
          "tokens",
          "used",
          "usd",
          "usd used",
          "window",
          "policy",
          "source",
        ],
        rows,
        new Set([3, 4, 5, 6]),
      ),
    );
    return 0;
  });
}

/** `bottle budget set <scope> <key> <provider>=<tokens>[/window] [--usd N] [--policy P]`. */
export async function runBudgetSet(
  scope: string,
  key: string,
  spec: string,
  flags: BudgetSetFlags,
  io: CliIo,
): Promise<number> {
  return withStore(flags, io, async (store) => {
    const input = parseBudgetSpec(scope, key, spec, flags);
    // Custom providers from a gateway config are allowed, so an unknown id is a warning: a
    // budget for a misspelt provider would never apply.
    const { getProvider, listProviders } = await import("@bottlekit/provider-registry");
    const known = getProvider(input.provider);
    if (known === undefined) {
      const near = didYouMean(
        suggest(
          input.provider,
          listProviders().map((p) => p.id),
          1,
        ),
      );
      io.stderr.write(
        `warning: "${input.provider}" is not a provider bottlekit knows${near ? `; ${near}` : ""} (fine for a custom provider of your gateway config)\n`,
      );
    } else if (known.id !== input.provider) {
      input.provider = known.id;
    }
    const saved = await store.defineBudget(input);
    if (flags.json === true) writeJson(io, { budget: budgetJson(saved) });
    else io.stdout.write(`set ${describe(saved)} (policy ${saved.policy ?? "default"})\n`);
    return 0;
  });
}

/** `bottle budget rm <scope> <key> [provider]`: removes operator budgets (or `--source`'s). */
export async function runBudgetRm(
  scope: string,
  key: string,
  provider: string | undefined,
  flags: BudgetRmFlags,
  io: CliIo,
): Promise<number> {
  return withStore(flags, io, async (store) => {
    const target = parseScopeKey(scope, key);
    const filter: BudgetFilter = {
      scope: target.scope,
      key: target.key,
      source:
        flags.source === undefined ? OPERATOR_SOURCE : oneOf(flags.source, SOURCES, "--source"),
    };
    if (provider !== undefined) filter.provider = provider;
    const removed = await store.removeBudgets(filter);
    if (flags.json === true) {
      writeJson(io, { removed, filter: { ...filter, provider: filter.provider ?? null } });
    } else {
      io.stdout.write(
        `removed ${removed} budget${removed === 1 ? "" : "s"} (${target.scope} ${target.key}${provider ? ` ${provider}` : ""}, source ${filter.source})\n`,
      );
    }
    if (removed === 0) {
      io.stderr.write(`bottle: no ${filter.source} budget matched\n`);
      io.stderr.write("hint: `bottle budget list` shows every budget with its source\n");
      return 1;
    }
    return 0;
  });
}
