/**
 * Backend-neutral parts of the reports: how a time range splits into rollup days, rollup hours
 * and raw events, the burn-rate minute grid, and the shaping of grouped rows. Both backends use
 * these, so a report means the same thing on SQLite and Postgres.
 */
import { BudgetStoreError } from "./errors.ts";
import type { BurnRate, BurnSeries, UsageGroup, UsageQuery, UsageTotals } from "./types.ts";
import * as v from "./validate.ts";

export const HOUR_MS = 3_600_000;
export const MINUTE_MS = 60_000;
export const GROUP_COLUMNS = ["bottle", "agent", "provider", "model"] as const;
export type GroupColumn = (typeof GROUP_COLUMNS)[number];

/** Half-open ranges; `lo >= hi` means empty. Infinite ends are ±Infinity. */
export interface Range {
  lo: number;
  hi: number;
}

/**
 * Where the usage of [since, until) is read from: whole UTC days from the daily rollup, whole
 * hours outside those days from the hourly rollup (before and after), and the partial hours at
 * the edges from the events themselves. Every instant of the range is in exactly one part.
 * O(1); the parts it returns cover at most 2 hours of raw events.
 */
export function rollupRanges(
  since: number | undefined,
  until: number | undefined,
): { days: Range; hours: [Range, Range]; events: [Range, Range] } {
  const none: Range = { lo: 0, hi: 0 };
  const s = since ?? Number.NEGATIVE_INFINITY;
  const u = until ?? Number.POSITIVE_INFINITY;
  if (s >= u) return { days: none, hours: [none, none], events: [none, none] };
  const hs = Math.ceil(s / HOUR_MS);
  const hu = Math.floor(u / HOUR_MS);
  if (hs >= hu) return { days: none, hours: [none, none], events: [{ lo: s, hi: u }, none] };
  const events: [Range, Range] = [
    { lo: s, hi: hs * HOUR_MS },
    { lo: hu * HOUR_MS, hi: u },
  ];
  const ds = Math.ceil(hs / 24);
  const du = Math.floor(hu / 24);
  if (ds >= du) return { days: none, hours: [{ lo: hs, hi: hu }, none], events };
  return {
    days: { lo: ds, hi: du },
    hours: [
      { lo: hs, hi: ds * 24 },
      { lo: du * 24, hi: hu },
    ],
    events,
  };
}

/** The report rollups (schema v6, kept by triggers on usage_events): per hour, per day, all time. */
export const ROLLUPS = [
  { table: "usage_hourly", unit: "hour", ms: HOUR_MS },
  { table: "usage_daily", unit: "day", ms: 24 * HOUR_MS },
  { table: "usage_total", unit: null, ms: 0 },
] as const;
export type Rollup = (typeof ROLLUPS)[number];

/** The figure columns of every rollup table, in table order. */
export const ROLLUP_FIGURES =
  "events, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, reasoning_tokens, tokens, cost_usd, unpriced, usage_missing";

/**
 * The first and last event time: two subqueries, each one seek on the time index (min and max
 * in one SELECT would scan the whole ledger).
 */
export const LEDGER_SPAN_SQL =
  "SELECT (SELECT min(at) FROM usage_events) AS lo, (SELECT max(at) FROM usage_events) AS hi";

/**
 * The SQLite usage report for a set of group columns (in GROUP_COLUMNS order, so 16 texts):
 * `sql` reads whole days, whole hours and the raw events of the partial hours at the edges
 * (named parameters @d0..@e3 from rollupRanges, and the filter's); `totalSql` reads usage_total
 * for a range that holds the whole ledger. Neither scans usage_events or a time rollup.
 */
export function usageSql(columns: readonly GroupColumn[]): { sql: string; totalSql: string } {
  const sums = `sum(events) AS events, sum(input_tokens) AS inputTokens, sum(output_tokens) AS outputTokens,
      sum(cache_read_tokens) AS cacheReadTokens, sum(cache_write_tokens) AS cacheWriteTokens,
      sum(reasoning_tokens) AS reasoningTokens, sum(tokens) AS tokens, sum(cost_usd) AS costUsd,
      sum(unpriced) AS unpricedEvents, sum(usage_missing) AS usageMissingEvents`;
  const cols = `bottle, parents, agent, provider, model, ${ROLLUP_FIGURES}`;
  const eventCols =
    "bottle, parents, agent, provider, coalesce(model, '') AS model, 1 AS events, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, reasoning_tokens, tokens, coalesce(cost_usd, 0) AS cost_usd, cost_usd IS NULL AS unpriced, usage_missing";
  const filter = `(@bottle IS NULL OR bottle = @bottle OR (@children AND instr(parents, @bottleJson) > 0))
      AND (@agent IS NULL OR agent = @agent) AND (@provider IS NULL OR provider = @provider)
      AND (@model IS NULL OR model = @model)`;
  const g = columns.join(", ");
  const head = `SELECT ${g === "" ? "" : `${g}, `}${sums} FROM`;
  const tail = `WHERE ${filter}${g === "" ? "" : ` GROUP BY ${g}`}`;
  return {
    sql: `${head} (
        SELECT ${cols} FROM usage_daily WHERE day >= @d0 AND day < @d1
        UNION ALL SELECT ${cols} FROM usage_hourly WHERE hour >= @h0 AND hour < @h1
        UNION ALL SELECT ${cols} FROM usage_hourly WHERE hour >= @h2 AND hour < @h3
        UNION ALL SELECT ${eventCols} FROM usage_events WHERE at >= @e0 AND at < @e1
        UNION ALL SELECT ${eventCols} FROM usage_events WHERE at >= @e2 AND at < @e3
      ) ${tail}`,
    totalSql: `${head} usage_total ${tail}`,
  };
}

/** A bound value for SQL: infinities clamped to the safe-integer range. */
export function bound(x: number): number {
  if (x === Number.NEGATIVE_INFINITY) return Number.MIN_SAFE_INTEGER;
  if (x === Number.POSITIVE_INFINITY) return Number.MAX_SAFE_INTEGER;
  return x;
}

/** Validated report filters, each null when absent. */
export interface ReportFilter {
  bottle: string | null;
  children: boolean;
  /** JSON of the bottle name, as it appears inside a `parents` array. */
  bottleJson: string | null;
  agent: string | null;
  provider: string | null;
  model: string | null;
  since: number | undefined;
  until: number | undefined;
}

export function reportFilter(q: Omit<UsageQuery, "groupBy">, where: string): ReportFilter {
  const bottle = q.bottle === undefined ? null : v.name(q.bottle, `${where}.bottle`);
  return {
    bottle,
    children: bottle !== null && q.includeChildren === true,
    bottleJson: bottle === null ? null : JSON.stringify(bottle),
    agent: q.agent === undefined ? null : v.name(q.agent, `${where}.agent`),
    provider: q.provider === undefined ? null : v.name(q.provider, `${where}.provider`),
    model: q.model === undefined ? null : v.name(q.model, `${where}.model`),
    since: q.since === undefined ? undefined : v.count(q.since, `${where}.since`),
    until: q.until === undefined ? undefined : v.count(q.until, `${where}.until`),
  };
}

/** The group columns asked for, deduplicated, in the order asked; unknown ones are an error. */
export function groupColumns(groupBy: UsageQuery["groupBy"]): GroupColumn[] {
  return [...new Set(groupBy ?? [])].map((g) => {
    if (!(GROUP_COLUMNS as readonly string[]).includes(g)) {
      throw new BudgetStoreError(
        "E_INVALID_INPUT",
        `usage.groupBy: unknown column ${JSON.stringify(g)}`,
        { hint: 'group by "bottle", "agent", "provider" or "model"' },
      );
    }
    return g;
  });
}

export function emptyTotals(): UsageTotals {
  return {
    events: 0,
    inputTokens: 0,
    outputTokens: 0,
    cacheReadTokens: 0,
    cacheWriteTokens: 0,
    reasoningTokens: 0,
    tokens: 0,
    costUsd: 0,
    unpricedEvents: 0,
    usageMissingEvents: 0,
  };
}

const TOTAL_KEYS = Object.keys(emptyTotals()) as Array<keyof UsageTotals>;

/** Ascending order of TEXT under a binary collation: UTF-8 bytes ("" for no model first). */
function compareText(a: unknown, b: unknown): number {
  if (a === b) return 0;
  return Buffer.compare(Buffer.from(String(a ?? ""), "utf8"), Buffer.from(String(b ?? ""), "utf8"));
}

/**
 * Shape grouped rows (one per distinct value tuple; `model` "" = no model) into the report:
 * totals summed, groups ordered by the columns as asked, numbers as numbers.
 */
export function shapeReport(
  rows: ReadonlyArray<Record<string, unknown>>,
  groupBy: readonly GroupColumn[],
): { totals: UsageTotals; groups: UsageGroup[] } {
  const totals = emptyTotals();
  for (const row of rows) for (const k of TOTAL_KEYS) totals[k] += Number(row[k] ?? 0);
  if (groupBy.length === 0) return { totals, groups: [] };
  const sorted = [...rows].sort((a, b) => {
    for (const c of groupBy) {
      const d = compareText(a[c], b[c]);
      if (d !== 0) return d;
    }
    return 0;
  });
  const groups = sorted.map((row) => {
    const out: Record<string, unknown> = {};
    for (const c of groupBy) out[c] = row[c];
    if (out["model"] === "" || out["model"] === null) delete out["model"];
    for (const k of TOTAL_KEYS) out[k] = Number(row[k] ?? 0);
    return out as unknown as UsageGroup;
  });
  return { totals, groups };
}

/** The burn-rate grid: `minutes` whole minutes ending with the current one. */
export function minuteGrid(now: number, minutes: number): { since: number; until: number } {
  const until = (Math.floor(now / MINUTE_MS) + 1) * MINUTE_MS;
  return { since: until - minutes * MINUTE_MS, until };
}

export function burnMinutes(value: unknown, where: string): number {
  const m = value === undefined ? 15 : v.count(value, where);
  if (m < 1 || m > 1440) {
    throw new BudgetStoreError("E_INVALID_INPUT", `${where}: must be 1 to 1440, got ${m}`, {
      hint: "ask for the last 1 to 1440 minutes",
    });
  }
  return m;
}

/** Turn per-(bottle, minute) rows into zero-filled series, bottles in byte order. */
export function burnSeries(
  rows: ReadonlyArray<{
    bottle: string | null;
    m: number | string;
    events: number | string;
    tokens: number | string;
    cost: number | string;
  }>,
  since: number,
  until: number,
  minutes: number,
  byBottle: boolean,
): BurnRate {
  const series = new Map<string, BurnSeries>();
  const get = (bottle: string | null): BurnSeries => {
    const k = byBottle ? (bottle ?? "") : "";
    let s = series.get(k);
    if (s === undefined) {
      s = {
        ...(byBottle ? { bottle: k } : {}),
        events: new Array<number>(minutes).fill(0),
        tokens: new Array<number>(minutes).fill(0),
        costUsd: new Array<number>(minutes).fill(0),
      };
      series.set(k, s);
    }
    return s;
  };
  if (!byBottle) get(null);
  for (const row of rows) {
    const m = Number(row.m);
    if (m < 0 || m >= minutes) continue;
    const s = get(row.bottle);
    (s.events[m] as number) += Number(row.events);
    (s.tokens[m] as number) += Number(row.tokens);
    (s.costUsd[m] as number) += Number(row.cost);
  }
  const out = [...series.values()].sort((a, b) => compareText(a.bottle, b.bottle));
  return { since, until, bucketMs: MINUTE_MS, series: out };
}
