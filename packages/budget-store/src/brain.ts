/**
 * The budget brain: every decision both backends take, written once. A backend reads rows and
 * sums, hands them to these functions, and writes what they decide; it owns only persistence,
 * transactions and locking. Pure functions, no I/O.
 */
import { BudgetStoreError } from "./errors.ts";
import type {
  Budget,
  BudgetInput,
  BudgetSource,
  Crossing,
  CutoffPolicy,
  RemainingEntry,
  RemainingReport,
  ReserveResult,
  ScopeRef,
  SettleUsage,
  Subject,
} from "./types.ts";
import * as v from "./validate.ts";
import { assertBudgetWindow, windowResetAt } from "./window.ts";

/** For the same scope, key and provider the higher source wins. */
export const SOURCE_RANK: Record<BudgetSource, number> = {
  settings: 0,
  config: 1,
  manifest: 2,
  operator: 3,
  flag: 4,
};
const SEP = "\u0000";

export type CheckedBudget = Required<Omit<BudgetInput, "policy" | "tokens" | "usd">> &
  Pick<BudgetInput, "policy" | "tokens" | "usd">;

/** Validate a budget input (key "*" for global and ceiling). Throws E_INVALID_INPUT. */
export function checkBudget(input: BudgetInput, where: string): CheckedBudget {
  if (input === null || typeof input !== "object") {
    throw new BudgetStoreError("E_INVALID_INPUT", `${where}: a budget must be an object`, {
      hint: "pass { scope, key, provider, tokens }",
    });
  }
  const scope = v.scope(input.scope, `${where}.scope`);
  let key: string;
  if (scope === "global" || scope === "ceiling") {
    if (input.key !== undefined && input.key !== "*") {
      throw new BudgetStoreError("E_INVALID_INPUT", `${where}.key: a ${scope} budget has no key`, {
        hint: 'omit key or use "*"',
      });
    }
    key = "*";
  } else key = v.name(input.key, `${where}.key`);
  const tokens = v.optionalCount(input.tokens, `${where}.tokens`);
  const usd = v.optionalAmount(input.usd, `${where}.usd`);
  if (tokens === undefined && usd === undefined) {
    throw new BudgetStoreError("E_INVALID_INPUT", `${where}: a budget needs tokens or usd`, {
      hint: "set tokens (a whole number) and/or usd",
    });
  }
  return {
    scope,
    key,
    provider: v.name(input.provider, `${where}.provider`),
    tokens,
    usd,
    window: assertBudgetWindow(input.window ?? "none", `${where}.window`),
    policy: input.policy === undefined ? undefined : v.policy(input.policy, `${where}.policy`),
    source: v.source(input.source ?? "settings", `${where}.source`),
  };
}

/** Validate the inputs of replaceBudgets: every input of that source (or none named). */
export function checkReplace(
  source: BudgetSource,
  inputs: readonly BudgetInput[],
): CheckedBudget[] {
  const src = v.source(source, "source");
  return inputs.map((input, i) => {
    if (input.source !== undefined && input.source !== src) {
      throw new BudgetStoreError(
        "E_INVALID_INPUT",
        `budgets[${i}].source: is "${input.source}" but replaceBudgets was called for "${src}"`,
        { hint: "omit source on the inputs or make it match" },
      );
    }
    return checkBudget({ ...input, source: src }, `budgets[${i}]`);
  });
}

export interface CheckedSubject {
  bottle: string;
  parents: string[];
  agent: string;
  provider: string;
}

export function checkSubject(s: Subject, where: string): CheckedSubject {
  if (s === null || typeof s !== "object") {
    throw new BudgetStoreError("E_INVALID_INPUT", `${where}: expected an object`, {
      hint: "pass { bottle, parents, agent, provider }",
    });
  }
  const bottle = v.name(s.bottle, `${where}.bottle`);
  const parents = [...new Set(v.parentList(s.parents, `${where}.parents`))].filter(
    (p) => p !== bottle,
  );
  return {
    bottle,
    parents,
    agent: v.name(s.agent, `${where}.agent`),
    provider: v.name(s.provider, `${where}.provider`),
  };
}

/** Validated usage of a settle. */
export interface CheckedUsage {
  input: number;
  output: number;
  cacheRead: number;
  cacheWrite: number;
  reasoning: number;
  total: number;
  cost: number | undefined;
  model: string | null;
  missing: boolean;
  requestId: string | undefined;
}

export function checkUsage(usage: SettleUsage): CheckedUsage {
  if (usage === null || typeof usage !== "object") {
    throw new BudgetStoreError("E_INVALID_INPUT", "settle.usage: expected an object", {
      hint: "pass the usage parsed from the upstream response",
    });
  }
  const input = v.optionalCount(usage.inputTokens, "settle.usage.inputTokens") ?? 0;
  const output = v.optionalCount(usage.outputTokens, "settle.usage.outputTokens") ?? 0;
  return {
    input,
    output,
    cacheRead: v.optionalCount(usage.cacheReadTokens, "settle.usage.cacheReadTokens") ?? 0,
    cacheWrite: v.optionalCount(usage.cacheWriteTokens, "settle.usage.cacheWriteTokens") ?? 0,
    reasoning: v.optionalCount(usage.reasoningTokens, "settle.usage.reasoningTokens") ?? 0,
    total: v.optionalCount(usage.totalTokens, "settle.usage.totalTokens") ?? input + output,
    cost: v.optionalAmount(usage.costUsd, "settle.usage.costUsd"),
    model: usage.model === undefined ? null : v.name(usage.model, "settle.usage.model"),
    missing: usage.usageMissing === true,
    requestId:
      usage.requestId === undefined ? undefined : v.name(usage.requestId, "settle.usage.requestId"),
  };
}

/** How a reclaimed reservation is settled: usage missing, so its estimate is charged. */
export const RECLAIM_USAGE: CheckedUsage = {
  input: 0,
  output: 0,
  cacheRead: 0,
  cacheWrite: 0,
  reasoning: 0,
  total: 0,
  cost: undefined,
  model: null,
  missing: true,
  requestId: undefined,
};

/** What a settle charges: fail closed when usage is missing (at least the reservation). */
export function charge(
  u: CheckedUsage,
  reserved: { tokens: number; usd: number },
): { tokens: number; usd: number } {
  return {
    tokens: u.missing ? Math.max(u.total, reserved.tokens) : u.total,
    usd: u.cost === undefined ? reserved.usd : u.missing ? Math.max(u.cost, reserved.usd) : u.cost,
  };
}

/** The effective budget per (scope, key, provider), and the run-flag budgets apart. */
export interface BudgetMaps {
  map: Map<string, Budget>;
  flag: Map<string, Budget>;
}

export function budgetKey(b: { scope: string; key: string; provider: string }): string {
  return b.scope + SEP + b.key + SEP + b.provider;
}

export function budgetMaps(budgets: Iterable<Budget>): BudgetMaps {
  const map = new Map<string, Budget>();
  const flag = new Map<string, Budget>();
  for (const b of budgets) {
    const k = budgetKey(b);
    const prev = map.get(k);
    if (prev === undefined || SOURCE_RANK[b.source] > SOURCE_RANK[prev.source]) map.set(k, b);
    if (b.source === "flag") flag.set(k, b);
  }
  return { map, flag };
}

/** A budget that applies to a subject, with where its usage is counted. */
export interface Applicable {
  budget: Budget;
  ref: ScopeRef;
  /** Usage counter scope: agent (key agent), bottle (key bottle, parents included), global. */
  bucketScope: "agent" | "bottle" | "global";
  bucketKey: string;
}

/**
 * The budgets that apply to a subject: the governing one (a run-flag budget on any scope of the
 * subject first, else the nearest scope agent → bottle → parents → global) and the ceiling.
 * O(parents).
 */
export function applicable(maps: BudgetMaps, s: CheckedSubject): Applicable[] {
  const { agent, bottle, parents, provider } = s;
  const chain: Array<Omit<Applicable, "budget"> & { lookup: string }> = [
    {
      lookup: budgetKey({ scope: "agent", key: agent, provider }),
      ref: { scope: "agent", key: agent, provider },
      bucketScope: "agent",
      bucketKey: agent,
    },
    {
      lookup: budgetKey({ scope: "bottle", key: bottle, provider }),
      ref: { scope: "bottle", key: bottle, provider },
      bucketScope: "bottle",
      bucketKey: bottle,
    },
    ...parents.map((p) => ({
      lookup: budgetKey({ scope: "bottle", key: p, provider }),
      ref: { scope: "parent" as const, key: p, provider },
      bucketScope: "bottle" as const,
      bucketKey: p,
    })),
    {
      lookup: budgetKey({ scope: "global", key: "*", provider }),
      ref: { scope: "global", key: "*", provider },
      bucketScope: "global",
      bucketKey: "*",
    },
  ];
  const nearest = (budgets: Map<string, Budget>): Applicable | undefined => {
    for (const link of chain) {
      const b = budgets.get(link.lookup);
      if (b !== undefined) {
        return {
          budget: b,
          ref: link.ref,
          bucketScope: link.bucketScope,
          bucketKey: link.bucketKey,
        };
      }
    }
    return undefined;
  };
  const out: Applicable[] = [];
  const governing = (maps.flag.size > 0 ? nearest(maps.flag) : undefined) ?? nearest(maps.map);
  if (governing !== undefined) out.push(governing);
  const ceiling = maps.map.get(budgetKey({ scope: "ceiling", key: "*", provider }));
  if (ceiling !== undefined) {
    out.push({
      budget: ceiling,
      ref: { scope: "ceiling", key: "*", provider },
      bucketScope: "global",
      bucketKey: "*",
    });
  }
  return out;
}

/** The bucket an applicable budget of a stored budget row counts (for budgetStatus). */
export function applicableOf(budget: Budget): Applicable {
  return {
    budget,
    ref: { scope: budget.scope, key: budget.key, provider: budget.provider },
    bucketScope:
      budget.scope === "agent" ? "agent" : budget.scope === "bottle" ? "bottle" : "global",
    bucketKey: budget.key,
  };
}

export interface Sum {
  t: number;
  u: number;
}

/** Remaining entries (tokens and USD) of applicable budgets, from their used and reserved sums. */
export function entries(
  apps: readonly Applicable[],
  used: readonly Sum[],
  reserved: readonly Sum[] | undefined,
  defaultPolicy: CutoffPolicy,
): RemainingEntry[] {
  const out: RemainingEntry[] = [];
  apps.forEach((a, i) => {
    const u = used[i] as Sum;
    const r = reserved?.[i] ?? { t: 0, u: 0 };
    const base = { ...a.ref, window: a.budget.window, policy: a.budget.policy ?? defaultPolicy };
    if (a.budget.tokens !== undefined) {
      const limit = a.budget.tokens;
      out.push({
        ...base,
        unit: "tokens",
        limit,
        used: u.t,
        reserved: r.t,
        remaining: Math.max(0, limit - u.t - r.t),
      });
    }
    if (a.budget.usd !== undefined) {
      const limit = a.budget.usd;
      out.push({
        ...base,
        unit: "usd",
        limit,
        used: u.u,
        reserved: r.u,
        remaining: Math.max(0, limit - u.u - r.u),
      });
    }
  });
  return out;
}

/** The first bottle of the chain (bottle, then parents nearest first) that is cut off. */
export function cutOffRefusal(
  s: CheckedSubject,
  active: ReadonlySet<string>,
): Extract<ReserveResult, { ok: false }> | undefined {
  if (active.size === 0) return undefined;
  const b = [s.bottle, ...s.parents].find((x) => active.has(x));
  if (b === undefined) return undefined;
  return {
    ok: false,
    reason: "cut-off",
    scope: { scope: b === s.bottle ? "bottle" : "parent", key: b, provider: s.provider },
    remaining: 0,
  };
}

/**
 * Exact limits: a reservation is granted only when used + reserved + estimate <= limit on every
 * entry; a spent entry (used >= limit) refuses as exhausted. Undefined means granted.
 */
export function reserveRefusal(
  es: readonly RemainingEntry[],
  estimate: number,
  estimateUsd: number,
): Extract<ReserveResult, { ok: false }> | undefined {
  for (const e of es) {
    const ref: ScopeRef = { scope: e.scope, key: e.key, provider: e.provider };
    if (e.used >= e.limit) return { ok: false, reason: "exhausted", scope: ref, remaining: 0 };
    const want = e.unit === "tokens" ? estimate : estimateUsd;
    if (e.used + e.reserved + want > e.limit) {
      return { ok: false, reason: "insufficient", scope: ref, remaining: e.remaining };
    }
  }
  return undefined;
}

/** Every spent entry after a settle (used >= limit), governing scope first. */
export function crossings(es: readonly RemainingEntry[]): Crossing[] {
  return es
    .filter((e) => e.used >= e.limit)
    .map((e) => ({
      window: e.window,
      scope: e.scope,
      key: e.key,
      provider: e.provider,
      unit: e.unit,
      limit: e.limit,
      used: e.used,
      policy: e.policy,
    }));
}

/** The cutoff a crossing records: its audit reason and when it lifts by itself. */
export function cutoffFor(
  crossed: Crossing,
  now: number,
): { reason: string; until: number | undefined } {
  return {
    reason: `${crossed.scope} ${crossed.key === "*" ? "" : `${crossed.key} `}budget for ${crossed.provider} spent: ${crossed.used} of ${crossed.limit} ${crossed.unit}`,
    until: windowResetAt(crossed.window, now),
  };
}

/** The binding entry of a remaining report: the smallest remaining share of its limit. */
export function remainingReport(es: RemainingEntry[]): RemainingReport | undefined {
  if (es.length === 0) return undefined;
  let best = es[0] as RemainingEntry;
  const share = (e: RemainingEntry) => (e.limit === 0 ? 0 : e.remaining / e.limit);
  for (const e of es) if (share(e) < share(best)) best = e;
  return { ...best, entries: es };
}

/** The reason recorded in the audit trail for a reclaimed reservation. */
export function reclaimReason(id: string, owner: string, cause: string, tokens: number): string {
  return `reservation ${id} of owner ${owner} (${cause}) charged its estimate of ${tokens} tokens: usage missing`;
}
