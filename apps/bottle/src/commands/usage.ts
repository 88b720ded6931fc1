import type { UsageGroup, UsageQuery, UsageTotals } from "@bottlekit/budget-store";
import { didYouMean, suggest } from "@bottlekit/diagnostics";
import type { CliIo } from "../cli.ts";
import { writeJson } from "../context.ts";
import { BottleError } from "../errors.ts";
import { type StoreFlags, withStore } from "../store.ts";

export const GROUP_KEYS = ["bottle", "agent", "provider", "model"] as const;
export type GroupKey = (typeof GROUP_KEYS)[number];

export interface UsageFlags extends StoreFlags {
  by?: string[];
  since?: string;
  until?: string;
  bottle?: string;
  agent?: string;
  provider?: string;
  model?: string;
}

const UNIT_MS: Record<string, number> = {
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 7 * 86_400_000,
};

/**
 * Parses `--since` / `--until`: a duration back from `now` (`90s`, `30m`, `24h`, `7d`, `2w`), a
 * date (`2026-12-01`, UTC midnight) or an ISO timestamp. Returns epoch milliseconds.
 */
export function parseTime(text: string, now: number, flag = "--since"): number {
  const t = text.trim();
  const rel = /^([0-9]{1,9})([smhdw])$/.exec(t);
  if (rel !== null) {
    const [, n = "0", unit = "d"] = rel;
    return now - Number(n) * (UNIT_MS[unit] ?? 0);
  }
  if (/^[0-9]{4}-[0-9]{2}-[0-9]{2}([T ][0-9:.]+(Z|[+-][0-9]{2}:?[0-9]{2})?)?$/.test(t)) {
    const iso = t.length === 10 ? `${t}T00:00:00Z` : t.replace(" ", "T");
    const ms = Date.parse(iso);
    if (Number.isFinite(ms) && ms >= 0) return ms;
  }
  throw new BottleError("E_USAGE", `${flag} ${JSON.stringify(text)} is not a duration or a date`, {
    hint: `use a duration back from now (30m, 24h, 7d, 2w) or a date (2026-12-01, UTC) / ISO time`,
  });
}

/** Parses repeated and comma-separated `--by` values; unknown columns are usage errors. */
export function parseGroupBy(values: readonly string[] | undefined): GroupKey[] {
  const out: GroupKey[] = [];
  for (const value of values ?? []) {
    for (const part of value.split(",")) {
      const key = part.trim();
      if (key === "") continue;
      if (!(GROUP_KEYS as readonly string[]).includes(key)) {
        const near = didYouMean(suggest(key, GROUP_KEYS, 1));
        throw new BottleError("E_USAGE", `--by: unknown column ${JSON.stringify(key)}`, {
          hint: `${near ? `${near} ` : ""}group by bottle, agent, provider or model (e.g. --by bottle,provider)`,
        });
      }
      if (!out.includes(key as GroupKey)) out.push(key as GroupKey);
    }
  }
  return out;
}

/** Thousands separators, no locale surprises. */
export function formatCount(n: number): string {
  return Math.round(n)
    .toString()
    .replace(/\B(?=(\d{3})+(?!\d))/g, ",");
}

export function formatUsd(n: number): string {
  if (n === 0) return "$0";
  if (n < 0.01) return `$${n.toFixed(4)}`;
  return `$${n.toFixed(2)}`;
}

/** A plain text table: header, rows; columns in `right` are right-aligned. */
export function formatTable(
  header: readonly string[],
  rows: ReadonlyArray<readonly string[]>,
  right: ReadonlySet<number> = new Set(),
): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => (right.has(i) ? c.padStart(widths[i] ?? 0) : c.padEnd(widths[i] ?? 0)))
      .join("  ")
      .trimEnd();
  return `${[line(header), ...rows.map(line)].join("\n")}\n`;
}

function totalsCells(t: UsageTotals): string[] {
  return [
    formatCount(t.events),
    formatCount(t.inputTokens),
    formatCount(t.outputTokens),
    formatCount(t.cacheReadTokens),
    formatCount(t.cacheWriteTokens),
    formatCount(t.tokens),
    t.unpricedEvents > 0 ? `${formatUsd(t.costUsd)}+` : formatUsd(t.costUsd),
    formatCount(t.usageMissingEvents),
  ];
}

const TOTAL_HEADER = [
  "events",
  "input",
  "output",
  "cache read",
  "cache write",
  "tokens",
  "cost",
  "missing",
];

/** Builds the store query from the flags (exported for tests and the bench). */
export function usageQuery(flags: UsageFlags, now: number): UsageQuery {
  const q: UsageQuery = {};
  const by = parseGroupBy(flags.by);
  if (by.length > 0) q.groupBy = by;
  if (flags.since !== undefined) q.since = parseTime(flags.since, now, "--since");
  if (flags.until !== undefined) q.until = parseTime(flags.until, now, "--until");
  if (q.since !== undefined && q.until !== undefined && q.until <= q.since) {
    throw new BottleError("E_USAGE", "--until is not after --since", {
      hint: "give an --until later than --since, or leave it out (now)",
    });
  }
  if (flags.bottle !== undefined) q.bottle = flags.bottle;
  if (flags.agent !== undefined) q.agent = flags.agent;
  if (flags.provider !== undefined) q.provider = flags.provider;
  if (flags.model !== undefined) q.model = flags.model;
  return q;
}

/** `bottle usage`: tokens, cost and missing-usage counts, optionally grouped. */
export async function runUsage(flags: UsageFlags, io: CliIo, now = Date.now()): Promise<number> {
  return withStore(flags, io, async (store, resolved) => {
    const query = usageQuery(flags, now);
    const report = await store.usage(query);
    const by = query.groupBy ?? [];
    if (flags.json === true) {
      writeJson(io, {
        store: resolved.display,
        since: query.since === undefined ? null : new Date(query.since).toISOString(),
        until: query.until === undefined ? null : new Date(query.until).toISOString(),
        filter: {
          bottle: query.bottle ?? null,
          agent: query.agent ?? null,
          provider: query.provider ?? null,
          model: query.model ?? null,
        },
        by,
        totals: report.totals,
        groups: report.groups,
      });
      return 0;
    }
    const header = [...by, ...TOTAL_HEADER];
    const right = new Set(TOTAL_HEADER.map((_, i) => by.length + i));
    const rows = report.groups.map((g: UsageGroup) => [
      ...by.map((k) => g[k] ?? "-"),
      ...totalsCells(g),
    ]);
    if (by.length > 0)
      rows.push([...by.map((_, i) => (i === 0 ? "total" : "")), ...totalsCells(report.totals)]);
    else rows.push(totalsCells(report.totals));
    io.stdout.write(formatTable(header, rows, right));
    if (report.totals.unpricedEvents > 0) {
      io.stderr.write(
        `note: ${formatCount(report.totals.unpricedEvents)} events have no price; "+" marks a cost that leaves them out\n`,
      );
    }
    if (report.totals.usageMissingEvents > 0) {
      io.stderr.write(
        `note: ${formatCount(report.totals.usageMissingEvents)} calls reported no usage and were charged their estimate\n`,
      );
    }
    return 0;
  });
}
