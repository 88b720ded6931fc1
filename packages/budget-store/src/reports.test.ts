import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { describeWhere, startTestPostgres, type TestPostgres } from "../test/pg.ts";
import { runCycleWorkers } from "../test/workers/spawn.ts";
import { type Connection, openConnection } from "./connection.ts";
import { migrate } from "./migrations.ts";
import { openStore } from "./open.ts";
import { pgUsageSql } from "./pg-rollup.ts";
import { PG_MIGRATIONS } from "./pg-schema.ts";
import type { PgStore } from "./pg-store.ts";
import {
  burnSeries,
  GROUP_COLUMNS,
  HOUR_MS,
  LEDGER_SPAN_SQL,
  minuteGrid,
  ROLLUP_FIGURES,
  ROLLUPS,
  rollupRanges,
  shapeReport,
  usageSql,
} from "./reports.ts";
import type { Store, UsageEvent, UsageQuery } from "./types.ts";

const dir = mkdtempSync(join(tmpdir(), "budget-store-reports-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const DAY_MS = 24 * HOUR_MS;

/** Which parts of rollupRanges(since, until) contain instant t (as ms ranges). */
function partsContaining(since: number | undefined, until: number | undefined, t: number): number {
  const r = rollupRanges(since, until);
  const inMs = (lo: number, hi: number) => t >= lo && t < hi;
  let n = 0;
  if (inMs(r.days.lo * DAY_MS, r.days.hi * DAY_MS)) n++;
  for (const h of r.hours) if (inMs(h.lo * HOUR_MS, h.hi * HOUR_MS)) n++;
  for (const e of r.events) if (inMs(e.lo, e.hi)) n++;
  return n;
}

describe("rollupRanges", () => {
  it("every instant of [since, until) is in exactly one part, every other instant in none", () => {
    const instant = fc.integer({ min: 0, max: 40 * DAY_MS });
    fc.assert(
      fc.property(
        fc.option(instant, { nil: undefined }),
        fc.option(instant, { nil: undefined }),
        instant,
        (since, until, t) => {
          const inside = (since === undefined || t >= since) && (until === undefined || t < until);
          expect(partsContaining(since, until, t)).toBe(inside ? 1 : 0);
        },
      ),
      { numRuns: 5_000 },
    );
  });

  it("edges that fall on boundaries read no raw events", () => {
    const r = rollupRanges(3 * DAY_MS, 10 * DAY_MS + 5 * HOUR_MS);
    expect(r.days).toEqual({ lo: 3, hi: 10 });
    expect(r.hours[0].lo >= r.hours[0].hi).toBe(true);
    expect(r.hours[1]).toEqual({ lo: 240, hi: 245 });
    for (const e of r.events) expect(e.lo >= e.hi).toBe(true);
  });

  it("raw events are read for at most two partial hours", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 1e13 }), fc.integer({ min: 0, max: 1e13 }), (a, b) => {
        const r = rollupRanges(Math.min(a, b), Math.max(a, b));
        const span = r.events.reduce((n, e) => n + Math.max(0, e.hi - e.lo), 0);
        expect(span).toBeLessThanOrEqual(2 * HOUR_MS);
      }),
    );
  });
});

describe("report shaping", () => {
  it("totals add up the groups; groups follow the asked order with no model first", () => {
    const row = (bottle: string, model: string, tokens: number) => ({
      bottle,
      model,
      events: 1,
      tokens,
      inputTokens: tokens,
      costUsd: 0.5,
    });
    const out = shapeReport(
      [row("b", "m", 1), row("a", "", 2), row("a", "m", 3)],
      ["bottle", "model"],
    );
    expect(out.totals).toMatchObject({ events: 3, tokens: 6, inputTokens: 6, costUsd: 1.5 });
    expect(out.groups.map((g) => [g.bottle, g.model, g.tokens])).toEqual([
      ["a", undefined, 2],
      ["a", "m", 3],
      ["b", "m", 1],
    ]);
    expect("model" in (out.groups[0] as object)).toBe(false);
  });

  it("burn series are zero-filled, one per bottle when asked, minutes oldest first", () => {
    const { since, until } = minuteGrid(Date.parse("2026-05-01T10:07:30Z"), 5);
    expect(new Date(since).toISOString()).toBe("2026-05-01T10:03:00.000Z");
    expect(until - since).toBe(5 * 60_000);
    const rows = [
      { bottle: "web", m: 4, events: 2, tokens: 30, cost: 0.1 },
      { bottle: "api", m: 0, events: 1, tokens: 5, cost: 0 },
    ];
    expect(burnSeries(rows, since, until, 5, true).series).toEqual([
      { bottle: "api", events: [1, 0, 0, 0, 0], tokens: [5, 0, 0, 0, 0], costUsd: [0, 0, 0, 0, 0] },
      {
        bottle: "web",
        events: [0, 0, 0, 0, 2],
        tokens: [0, 0, 0, 0, 30],
        costUsd: [0, 0, 0, 0, 0.1],
      },
    ]);
    expect(burnSeries([], since, until, 3, false).series).toEqual([
      { events: [0, 0, 0], tokens: [0, 0, 0], costUsd: [0, 0, 0] },
    ]);
  });
});

/**
 * Every rollup table against a full scan of usage_events: the same keys, integer figures equal,
 * cost equal to 1e-9. Returns the differences (empty when they agree) and the rows compared.
 */
function rollupDiff(
  conn: Connection,
  rollups: ReadonlyArray<(typeof ROLLUPS)[number]> = ROLLUPS,
): { diffs: string[]; rows: number } {
  const figures = ROLLUP_FIGURES.split(", ");
  const diffs: string[] = [];
  let rows = 0;
  for (const roll of rollups) {
    const unit = roll.unit === null ? "" : `CAST(at / ${roll.ms} AS INTEGER) AS u, `;
    const scan = conn
      .prepare(
        `SELECT ${unit}bottle, parents, agent, provider, coalesce(model, '') AS model, count(*) AS events,
           sum(input_tokens) AS input_tokens, sum(output_tokens) AS output_tokens,
           sum(cache_read_tokens) AS cache_read_tokens, sum(cache_write_tokens) AS cache_write_tokens,
           sum(reasoning_tokens) AS reasoning_tokens, sum(tokens) AS tokens,
           coalesce(sum(cost_usd), 0) AS cost_usd, sum(cost_usd IS NULL) AS unpriced,
           sum(usage_missing) AS usage_missing
         FROM usage_events GROUP BY ${roll.unit === null ? "1, 2, 3, 4, 5" : "1, 2, 3, 4, 5, 6"}`,
      )
      .all() as Array<Record<string, number | string>>;
    const kept = conn
      .prepare(
        `SELECT ${roll.unit === null ? "" : `${roll.unit} AS u, `}bottle, parents, agent, provider, model, ${ROLLUP_FIGURES} FROM ${roll.table}`,
      )
      .all() as Array<Record<string, number | string>>;
    const key = (r: Record<string, number | string>) =>
      JSON.stringify([
        r["u"] ?? null,
        r["bottle"],
        r["parents"],
        r["agent"],
        r["provider"],
        r["model"],
      ]);
    const want = new Map(scan.map((r) => [key(r), r]));
    const have = new Map(kept.map((r) => [key(r), r]));
    rows += kept.length;
    for (const k of new Set([...want.keys(), ...have.keys()])) {
      const a = want.get(k);
      const b = have.get(k);
      if (a === undefined || b === undefined) {
        diffs.push(`${roll.table} ${k}: ${a === undefined ? "not in the ledger" : "missing"}`);
        continue;
      }
      for (const f of figures) {
        const same =
          f === "cost_usd"
            ? Math.abs(Number(a[f]) - Number(b[f])) < 1e-9
            : Number(a[f]) === Number(b[f]);
        if (!same) diffs.push(`${roll.table} ${k} ${f}: ledger ${a[f]}, rollup ${b[f]}`);
      }
    }
  }
  return { diffs, rows };
}

/** The events of `all` that a usage query selects (the reference for store.usage). */
function pick(all: readonly UsageEvent[], q: UsageQuery): UsageEvent[] {
  return all.filter(
    (e) =>
      (q.since === undefined || e.at >= q.since) &&
      (q.until === undefined || e.at < q.until) &&
      (q.bottle === undefined || e.bottle === q.bottle) &&
      (q.provider === undefined || e.provider === q.provider),
  );
}

const BASE = Date.parse("2026-03-01T00:00:00Z");

describe("report rollups kept by triggers on usage_events (schema v6)", () => {
  const call = fc.record({
    at: fc.integer({ min: 0, max: 4 * 24 * HOUR_MS }),
    bottle: fc.constantFrom("web", "api", "cli"),
    agent: fc.constantFrom("coder", "reviewer"),
    provider: fc.constantFrom("anthropic", "openai"),
    model: fc.option(fc.constantFrom("m1", "m2"), { nil: undefined }),
    input: fc.integer({ min: 0, max: 5_000 }),
    output: fc.integer({ min: 0, max: 500 }),
    cacheRead: fc.integer({ min: 0, max: 50 }),
    cost: fc.option(fc.integer({ min: 0, max: 10_000 }), { nil: undefined }),
    missing: fc.boolean(),
  });

  it("property: after any settles, every rollup equals a full scan, and usage() equals a recount", async () => {
    let run = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(call, { minLength: 0, maxLength: 40 }),
        fc.array(
          fc.record({
            since: fc.option(fc.integer({ min: -HOUR_MS, max: 5 * 24 * HOUR_MS }), {
              nil: undefined,
            }),
            until: fc.option(fc.integer({ min: -HOUR_MS, max: 5 * 24 * HOUR_MS }), {
              nil: undefined,
            }),
            bottle: fc.option(fc.constantFrom("web", "api"), { nil: undefined }),
            provider: fc.option(fc.constantFrom("openai"), { nil: undefined }),
            groupBy: fc.subarray(["bottle", "agent", "provider", "model"] as const),
          }),
          { minLength: 1, maxLength: 6 },
        ),
        async (calls, queries) => {
          const file = join(dir, `prop-${run++}.db`);
          let now = BASE;
          const store = await openStore(`sqlite:${file}`, { clock: () => now });
          try {
            for (const c of calls) {
              now = BASE + c.at;
              const r = await store.reserve({
                bottle: c.bottle,
                parents: c.bottle === "cli" ? [] : ["team"],
                agent: c.agent,
                provider: c.provider,
                estimateTokens: 100,
              });
              if (!r.ok) throw new Error(`refused: ${r.reason}`);
              await store.settle(r.id, {
                inputTokens: c.input,
                outputTokens: c.output,
                cacheReadTokens: c.cacheRead,
                ...(c.model === undefined ? {} : { model: c.model }),
                ...(c.cost === undefined ? {} : { costUsd: c.cost / 1000 }),
                ...(c.missing ? { usageMissing: true } : {}),
              });
            }
            const all = await store.events();
            expect(all).toHaveLength(calls.length);
            for (const q0 of queries) {
              const q: UsageQuery = {
                ...(q0.since === undefined ? {} : { since: Math.max(0, BASE + q0.since) }),
                ...(q0.until === undefined ? {} : { until: Math.max(0, BASE + q0.until) }),
                ...(q0.bottle === undefined ? {} : { bottle: q0.bottle }),
                ...(q0.provider === undefined ? {} : { provider: q0.provider }),
                groupBy: [...q0.groupBy],
              };
              const picked = pick(all, q);
              const report = await store.usage(q);
              expect(report.totals.events).toBe(picked.length);
              expect(report.totals.tokens).toBe(picked.reduce((n, e) => n + e.tokens, 0));
              expect(report.totals.cacheReadTokens).toBe(
                picked.reduce((n, e) => n + e.cacheReadTokens, 0),
              );
              expect(report.totals.unpricedEvents).toBe(
                picked.filter((e) => e.costUsd === undefined).length,
              );
              expect(report.totals.usageMissingEvents).toBe(
                picked.filter((e) => e.usageMissing).length,
              );
              expect(report.totals.costUsd).toBeCloseTo(
                picked.reduce((n, e) => n + (e.costUsd ?? 0), 0),
                9,
              );
              const key = (e: object) =>
                q0.groupBy.map((c) => String((e as Record<string, unknown>)[c] ?? "")).join("|");
              const groups = new Map<string, number>();
              for (const e of picked) groups.set(key(e), (groups.get(key(e)) ?? 0) + e.tokens);
              expect(new Map(report.groups.map((g) => [key(g), g.tokens]))).toEqual(
                q0.groupBy.length === 0 ? new Map() : groups,
              );
            }
          } finally {
            await store.close();
          }
          const raw = openConnection(file);
          try {
            expect(rollupDiff(raw).diffs).toEqual([]);
          } finally {
            raw.close();
            rmSync(file, { force: true });
            rmSync(`${file}-wal`, { force: true });
            rmSync(`${file}-shm`, { force: true });
          }
        },
      ),
      { numRuns: 25 },
    );
  }, 120_000);

  it("a v5 database (rollups folded up to a watermark, newer events not yet) gains exact v6 rollups", async () => {
    const file = join(dir, "v5.db");
    const conn = openConnection(file);
    const T = BASE + 5 * HOUR_MS + 17_000;
    try {
      expect(migrate(conn, T, 4)).toBe(4);
      const insert = conn.prepare(
        `INSERT INTO usage_events (at, request_id, reservation_id, bottle, parents, agent, provider, model,
         input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, reasoning_tokens, tokens, cost_usd, usage_missing)
         VALUES (?, NULL, NULL, ?, '[]', 'coder', ?, ?, ?, 1, 0, 0, 0, ?, ?, ?)`,
      );
      const write = (i: number) =>
        insert.run(
          T - i * 37 * 60_000,
          ["web", "api"][i % 2],
          ["anthropic", "openai"][i % 2],
          i % 3 === 0 ? null : "m",
          i,
          i + 1,
          i % 4 === 0 ? null : i / 100,
          i % 5 === 0 ? 1 : 0,
        );
      // Events before v5: its migration back-filled them and set the watermark.
      for (let i = 0; i < 60; i++) write(i);
      expect(migrate(conn, T, 5)).toBe(5);
      // Events a v5 store settled after its last report: not folded yet.
      for (let i = 60; i < 100; i++) write(i);
      // (v5 has no usage_total)
      expect(rollupDiff(conn, ROLLUPS.slice(0, 2)).diffs.length).toBeGreaterThan(0);
    } finally {
      conn.close();
    }
    const store = await openStore(`sqlite:${file}`, { clock: () => T });
    try {
      expect((await store.usage()).totals.events).toBe(100);
      expect((await store.usage({ groupBy: ["bottle", "provider"] })).totals.tokens).toBe(
        Array.from({ length: 100 }, (_, i) => i + 1).reduce((a, b) => a + b, 0),
      );
      const r = await store.reserve({
        bottle: "web",
        agent: "coder",
        provider: "anthropic",
        estimateTokens: 5,
      });
      if (!r.ok) throw new Error("refused");
      await store.settle(r.id, { inputTokens: 7 });
    } finally {
      await store.close();
    }
    const raw = openConnection(file);
    try {
      const { diffs, rows } = rollupDiff(raw);
      expect(diffs).toEqual([]);
      expect(rows).toBeGreaterThan(0);
      // A v5 process still running would fold the events above its watermark before a report:
      // none, ever (the triggers keep the rollups; folding again would count twice).
      const { wm, top } = raw
        .prepare(
          "SELECT (SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'rollup_watermark') AS wm, (SELECT max(id) FROM usage_events) AS top",
        )
        .get() as { wm: number; top: number };
      expect(top).toBe(101);
      expect(wm).toBe(Number.MAX_SAFE_INTEGER);
    } finally {
      raw.close();
    }
  });

  it("three processes settling at once: every rollup equals a full scan", async () => {
    const file = join(dir, "conc.db");
    await (await openStore(`sqlite:${file}`)).close();
    const results = await runCycleWorkers(file, 3, 300, 10);
    expect(results.flatMap((r) => r.errors)).toEqual([]);
    const raw = openConnection(file);
    try {
      const events = (raw.prepare("SELECT count(*) AS n FROM usage_events").get() as { n: number })
        .n;
      expect(events).toBe(3 * 300 - results.reduce((n, r) => n + r.refused, 0));
      const { diffs, rows } = rollupDiff(raw);
      expect(diffs).toEqual([]);
      expect(rows).toBeGreaterThan(0);
    } finally {
      raw.close();
    }
  }, 120_000);
});

describe("report statements read indexes and rollups, never a whole time table", () => {
  it("every usage statement (16 column sets) and the ledger span: no scan of usage_events, usage_hourly or usage_daily", async () => {
    const file = join(dir, "plans.db");
    await (await openStore(`sqlite:${file}`)).close();
    const raw = openConnection(file);
    try {
      const params = {
        bottle: null,
        children: 0,
        bottleJson: null,
        agent: null,
        provider: null,
        model: null,
        ...Object.fromEntries(
          ["d0", "d1", "h0", "h1", "h2", "h3", "e0", "e1", "e2", "e3"].map((k) => [k, 0]),
        ),
      };
      // Cached statements (connection.ts: no throwaway statements on Node 24).
      const plan = (sql: string): string[] => {
        const st = raw.prepare(`EXPLAIN QUERY PLAN ${sql}`);
        const rows = (sql.includes("@") ? st.all(params) : st.all()) as Array<{ detail: string }>;
        return rows.map((r) => r.detail);
      };
      const texts: string[] = [LEDGER_SPAN_SQL];
      for (let mask = 0; mask < 16; mask++) {
        const { sql, totalSql } = usageSql(GROUP_COLUMNS.filter((_, i) => (mask >> i) & 1));
        texts.push(sql, totalSql);
      }
      let searches = 0;
      for (const sql of texts) {
        const steps = plan(sql);
        expect(
          steps.filter((d) => /^SCAN (usage_events|usage_hourly|usage_daily)\b/.test(d)),
        ).toEqual([]);
        searches += steps.filter((d) =>
          /^SEARCH (usage_events|usage_hourly|usage_daily)\b/.test(d),
        ).length;
      }
      // The span: two seeks; each ranged report: five (a day range, two hour ranges, two event ranges).
      expect(searches).toBe(2 + 16 * 5);
      // The planner does report a scan where there is one (the check can fail).
      expect(plan("SELECT min(at), max(at) FROM usage_events").join(" ")).toMatch(
        /SCAN usage_events/,
      );
    } finally {
      raw.close();
    }
  });
});

describe(`Postgres report rollups below a transaction-id watermark (${describeWhere()})`, () => {
  let pg: TestPostgres;
  beforeAll(async () => {
    pg = await startTestPostgres();
  }, 300_000); // hang guard
  afterAll(async () => {
    await pg?.stop();
  }, 300_000); // hang guard

  const FIGURES = ROLLUP_FIGURES.split(", ");
  /** The full aggregation of usage_events per rollup key (unit: hour, day or all time). */
  const scanSql = (unit: "hour" | "day" | null) => {
    const u = unit === null ? "" : `at / ${unit === "hour" ? HOUR_MS : DAY_MS} AS u, `;
    return `SELECT ${u}bottle, parents::text AS parents, agent, provider, coalesce(model, '') AS model,
        count(*)::float8 AS events, sum(input_tokens)::float8 AS input_tokens, sum(output_tokens)::float8 AS output_tokens,
        sum(cache_read_tokens)::float8 AS cache_read_tokens, sum(cache_write_tokens)::float8 AS cache_write_tokens,
        sum(reasoning_tokens)::float8 AS reasoning_tokens, sum(tokens)::float8 AS tokens,
        coalesce(sum(cost_usd), 0)::float8 AS cost_usd, count(*) FILTER (WHERE cost_usd IS NULL)::float8 AS unpriced,
        count(*) FILTER (WHERE usage_missing)::float8 AS usage_missing
      FROM usage_events GROUP BY ${unit === null ? "1, 2, 3, 4, 5" : "1, 2, 3, 4, 5, 6"}`;
  };

  /** Every Postgres rollup against a full scan (after a fold with no writer left: all of it). */
  async function pgRollupDiff(sql: postgres.Sql): Promise<{ diffs: string[]; rows: number }> {
    const diffs: string[] = [];
    let rows = 0;
    for (const [table, unit] of [
      ["usage_hourly", "hour"],
      ["usage_daily", "day"],
      ["usage_total", null],
    ] as const) {
      const want = await sql.unsafe(scanSql(unit));
      const have = await sql.unsafe(
        `SELECT ${unit === null ? "" : `${unit}::float8 AS u, `}bottle, parents::text AS parents, agent, provider, model,
          ${FIGURES.map((f) => `${f}::float8 AS ${f}`).join(", ")} FROM ${table}`,
      );
      const key = (r: Record<string, unknown>) =>
        JSON.stringify([
          r["u"] === undefined ? null : Number(r["u"]),
          r["bottle"],
          r["parents"],
          r["agent"],
          r["provider"],
          r["model"],
        ]);
      const a = new Map(want.map((r) => [key(r), r]));
      const b = new Map(have.map((r) => [key(r), r]));
      rows += have.length;
      for (const k of new Set([...a.keys(), ...b.keys()])) {
        const x = a.get(k);
        const y = b.get(k);
        if (x === undefined || y === undefined) {
          diffs.push(`${table} ${k}: ${x === undefined ? "not in the ledger" : "missing"}`);
          continue;
        }
        for (const f of FIGURES) {
          const same =
            f === "cost_usd"
              ? Math.abs(Number(x[f]) - Number(y[f])) < 1e-9
              : Number(x[f]) === Number(y[f]);
          if (!same) diffs.push(`${table} ${k} ${f}: ledger ${x[f]}, rollup ${y[f]}`);
        }
      }
    }
    return { diffs, rows };
  }

  /** usage(q) against a recount of the ledger's events (integers equal, cost to 1e-9). */
  async function expectRecount(store: Store, q: UsageQuery): Promise<void> {
    const picked = (await store.events()).filter(
      (e) =>
        (q.since === undefined || e.at >= q.since) &&
        (q.until === undefined || e.at < q.until) &&
        (q.bottle === undefined ||
          e.bottle === q.bottle ||
          (q.includeChildren === true && e.parents.includes(q.bottle))) &&
        (q.provider === undefined || e.provider === q.provider),
    );
    const report = await store.usage(q);
    expect(report.totals.events).toBe(picked.length);
    expect(report.totals.tokens).toBe(picked.reduce((n, e) => n + e.tokens, 0));
    expect(report.totals.inputTokens).toBe(picked.reduce((n, e) => n + e.inputTokens, 0));
    expect(report.totals.unpricedEvents).toBe(picked.filter((e) => e.costUsd === undefined).length);
    expect(report.totals.usageMissingEvents).toBe(picked.filter((e) => e.usageMissing).length);
    expect(report.totals.costUsd).toBeCloseTo(
      picked.reduce((n, e) => n + (e.costUsd ?? 0), 0),
      9,
    );
    const cols = q.groupBy ?? [];
    const key = (e: object) =>
      cols.map((c) => String((e as Record<string, unknown>)[c] ?? "")).join("|");
    const groups = new Map<string, number>();
    for (const e of picked) groups.set(key(e), (groups.get(key(e)) ?? 0) + e.tokens);
    expect(new Map(report.groups.map((g) => [key(g), g.tokens]))).toEqual(
      cols.length === 0 ? new Map() : groups,
    );
  }

  async function settle(
    store: Store,
    c: { bottle: string; agent: string; provider: string; input: number; cost?: number },
  ): Promise<void> {
    const r = await store.reserve({
      bottle: c.bottle,
      parents: c.bottle === "cli" ? [] : ["team"],
      agent: c.agent,
      provider: c.provider,
      estimateTokens: 10,
    });
    if (!r.ok) throw new Error(`refused: ${r.reason}`);
    await store.settle(r.id, {
      inputTokens: c.input,
      outputTokens: 1,
      model: "m1",
      ...(c.cost === undefined ? {} : { costUsd: c.cost }),
    });
  }

  it("a transaction still open at a fold is counted once it commits, and once only (subtransactions, aborts, an xid taken before the fold)", async () => {
    const url = await pg.newDatabase();
    let now = BASE + 30 * 60_000;
    const store = (await openStore(url, { clock: () => now })) as PgStore;
    const a = postgres(url, { max: 1, onnotice: () => {} });
    const b = postgres(url, { max: 1, onnotice: () => {} });
    const c = postgres(url, { max: 1, onnotice: () => {} });
    const insert = (tx: postgres.TransactionSql, input: number) =>
      tx`INSERT INTO usage_events (at, bottle, parents, agent, provider, model, input_tokens, output_tokens,
          cache_read_tokens, cache_write_tokens, reasoning_tokens, tokens, cost_usd, usage_missing)
        VALUES (${now}, 'web', '["team"]', 'coder', 'anthropic', 'm1', ${input}, 0, 0, 0, 0, ${input}, 0.25, false)`;
    try {
      await settle(store, { bottle: "web", agent: "coder", provider: "anthropic", input: 1 });
      // A: an event inside a savepoint, still open; B: an xid taken before the fold (a write
      // elsewhere), its event written after the fold; C: an event rolled back.
      let releaseA!: () => void;
      let releaseB!: () => void;
      let bWrote!: () => void;
      const aHeld = new Promise<void>((r) => {
        releaseA = r;
      });
      const bHeld = new Promise<void>((r) => {
        releaseB = r;
      });
      const bHasXid = new Promise<void>((r) => {
        bWrote = r;
      });
      let aInserted!: () => void;
      const aIn = new Promise<void>((r) => {
        aInserted = r;
      });
      const txA = a.begin(async (tx) => {
        await tx.savepoint(async (sp) => {
          await insert(sp, 10);
        });
        aInserted();
        await aHeld;
      });
      const txB = b.begin(async (tx) => {
        await tx`INSERT INTO meta (key, value) VALUES ('test-b', 'x')`;
        bWrote();
        await bHeld;
        await insert(tx, 100);
      });
      await c
        .begin(async (tx) => {
          await insert(tx, 1000);
          throw new Error("roll back");
        })
        .catch(() => {});
      await aIn;
      await bHasXid;
      expect(await store.foldReports()).toBe(1); // the settled event only
      const [w] = await c`SELECT watermark::text AS w FROM usage_rollup_state`;
      const [xa] = await c`SELECT xid::text AS x FROM usage_events WHERE input_tokens = 1`;
      expect(BigInt(String(w?.["w"]))).toBeGreaterThan(BigInt(String(xa?.["x"])));
      releaseA();
      await txA;
      now += 60_000;
      releaseB();
      await txB;
      const [tail] =
        await c`SELECT count(*)::int AS n, bool_and(xid >= (SELECT watermark FROM usage_rollup_state)) AS above
          FROM usage_events WHERE input_tokens IN (10, 100)`;
      expect(tail).toMatchObject({ n: 2, above: true });
      for (const q of [{}, { since: BASE, until: BASE + HOUR_MS }, { since: BASE + 1 }]) {
        expect((await store.usage(q)).totals.inputTokens).toBe(111);
        await expectRecount(store, { ...q, groupBy: ["bottle", "provider"] });
      }
      // (usage() may have folded them already: a fold at most once a second)
      expect(await store.foldReports()).toBeGreaterThanOrEqual(0);
      expect(await store.foldReports()).toBe(0);
      expect((await store.usage()).totals).toMatchObject({ events: 3, inputTokens: 111 });
      expect((await pgRollupDiff(c)).diffs).toEqual([]);
    } finally {
      await a.end({ timeout: 1 });
      await c.end({ timeout: 1 });
      await b.end({ timeout: 1 });
      await store.close();
    }
  }, 300_000);

  /** N events over 3 days from BASE, written in one statement (as a big ledger would be). */
  const seed = (sql: postgres.Sql, n: number) =>
    sql`INSERT INTO usage_events (at, bottle, parents, agent, provider, model, input_tokens, output_tokens,
        cache_read_tokens, cache_write_tokens, reasoning_tokens, tokens, cost_usd, usage_missing)
      SELECT ${BASE}::bigint + (i * 3 * ${DAY_MS}::bigint) / ${n}, 'bottle-' || (i % 7), jsonb_build_array('team-' || (i % 2)),
        'agent-' || (i % 3), CASE i % 2 WHEN 0 THEN 'anthropic' ELSE 'openai' END,
        CASE WHEN i % 5 = 0 THEN NULL ELSE 'm' || (i % 4) END, i % 900, i % 90, i % 50, 0, 0, i % 900 + i % 90,
        CASE WHEN i % 7 = 0 THEN NULL ELSE (i % 1000) / 1024.0 END, i % 11 = 0
      FROM generate_series(0, ${n} - 1) AS i`;

  /** Rows a statement read from usage_events (returned plus filtered out), from EXPLAIN ANALYZE. */
  async function eventRowsRead(
    sql: postgres.Sql,
    text: string,
    params: unknown[],
  ): Promise<number> {
    const [row] = await sql.unsafe(`EXPLAIN (ANALYZE, FORMAT JSON) ${text}`, params as never[]);
    let n = 0;
    const walk = (node: Record<string, unknown>) => {
      if (node["Relation Name"] === "usage_events") {
        const loops = Number(node["Actual Loops"] ?? 1);
        n += (Number(node["Actual Rows"]) + Number(node["Rows Removed by Filter"] ?? 0)) * loops;
      }
      for (const child of (node["Plans"] as Array<Record<string, unknown>> | undefined) ?? [])
        walk(child);
    };
    const plan = (row?.["QUERY PLAN"] as Array<{ Plan: Record<string, unknown> }> | undefined)?.[0];
    walk(plan?.Plan ?? {});
    return n;
  }

  it("after a fold a report reads only the events written since, whatever the ledger's size", async () => {
    const url = await pg.newDatabase();
    let now = BASE + 3 * DAY_MS + 30 * 60_000;
    const store = (await openStore(url, { clock: () => now })) as PgStore;
    const sql = postgres(url, { max: 1, onnotice: () => {} });
    try {
      await seed(sql, 20_000);
      await sql`ANALYZE usage_events`;
      expect(await store.foldReports()).toBe(20_000);
      // whole hours (rollups + tail), and the whole ledger (all-time rollup + tail)
      const ranged = [
        null,
        false,
        null,
        null,
        null,
        ...[BASE / DAY_MS + 1, BASE / DAY_MS + 3].map(Number),
        BASE / HOUR_MS + 2,
        BASE / HOUR_MS + 24,
        BASE / HOUR_MS + 72,
        BASE / HOUR_MS + 75,
        BASE + 2 * HOUR_MS,
        BASE + 75 * HOUR_MS,
        0,
        0,
        0,
        0,
      ];
      const all = [null, false, null, null, null];
      const rangedSql = pgUsageSql(["bottle", "provider"], true);
      const allSql = pgUsageSql(["bottle", "provider"], false);
      expect(await eventRowsRead(sql, rangedSql, ranged)).toBe(0);
      expect(await eventRowsRead(sql, allSql, all)).toBe(0);
      for (let i = 0; i < 3; i++) {
        now = BASE + 3 * DAY_MS + i * HOUR_MS;
        await settle(store, { bottle: "web", agent: "coder", provider: "anthropic", input: 5 });
      }
      expect(await eventRowsRead(sql, rangedSql, ranged)).toBe(3);
      expect(await eventRowsRead(sql, allSql, all)).toBe(3);
      // the figures: the same as a recount
      await expectRecount(store, { groupBy: ["bottle", "provider"] });
      await expectRecount(store, {
        since: BASE + 2 * HOUR_MS,
        until: BASE + 75 * HOUR_MS,
        groupBy: ["bottle", "agent", "provider", "model"],
      });
      await expectRecount(store, {
        since: BASE + 17 * 60_000,
        bottle: "team-1",
        includeChildren: true,
      });
    } finally {
      await sql.end({ timeout: 1 });
      await store.close();
    }
  }, 300_000);

  it("a database created at schema v4 gains its rollups while migrating, exactly", async () => {
    const url = await pg.newDatabase();
    const sql = postgres(url, { max: 1, onnotice: () => {} });
    try {
      await sql.begin(async (tx) => {
        await tx`CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)`;
        for (const m of PG_MIGRATIONS.filter((m) => m.version <= 4)) {
          await tx.unsafe(m.sql);
          await tx`INSERT INTO schema_version (version, applied_at) VALUES (${m.version}, 0)`;
        }
      });
      await seed(sql, 3_000);
    } finally {
      await sql.end({ timeout: 1 });
    }
    const store = (await openStore(url, { clock: () => BASE + 4 * DAY_MS })) as PgStore;
    const check = postgres(url, { max: 1, onnotice: () => {} });
    try {
      const [v] = await check`SELECT max(version) AS v FROM schema_version`;
      expect(Number(v?.["v"])).toBeGreaterThanOrEqual(5);
      const { diffs, rows } = await pgRollupDiff(check);
      expect(diffs).toEqual([]);
      expect(rows).toBeGreaterThan(0);
      // the old events carry xid 0, below the watermark: nothing left to fold
      const [old] =
        await check`SELECT count(*)::int AS n FROM usage_events WHERE xid = '0' AND xid < (SELECT watermark FROM usage_rollup_state)`;
      expect(old?.["n"]).toBe(3_000);
      expect(await store.foldReports()).toBe(0);
      await settle(store, { bottle: "web", agent: "coder", provider: "openai", input: 9 });
      await expectRecount(store, { groupBy: ["bottle", "provider"] });
      await expectRecount(store, { since: BASE + DAY_MS + 1, groupBy: ["model"] });
    } finally {
      await check.end({ timeout: 1 });
      await store.close();
    }
  }, 300_000);

  it("a watermark above the server's next xid (a restore into another cluster): rollups ignored, then rebuilt", async () => {
    const url = await pg.newDatabase();
    const store = (await openStore(url, { clock: () => BASE + 4 * DAY_MS })) as PgStore;
    const sql = postgres(url, { max: 1, onnotice: () => {} });
    try {
      await seed(sql, 2_000);
      await store.foldReports();
      // as if restored elsewhere: the rollups and watermark came along, the xid counter did not
      await sql`UPDATE usage_rollup_state SET watermark = '1000000000000'`;
      await seed(sql, 500);
      const [trusted] = await sql`SELECT bk_rollup_trusted() AS t`;
      expect(trusted?.["t"]).toBe(false);
      const all = [null, false, null, null, null];
      const rows = await sql.unsafe(pgUsageSql([], false), all as never[]);
      const [scan] =
        await sql`SELECT count(*)::float8 AS n, sum(tokens)::float8 AS t FROM usage_events`;
      expect(rows[0]).toMatchObject({ events: scan?.["n"], tokens: scan?.["t"] });
      expect(scan?.["n"]).toBe(2_500);
      expect(await store.foldReports()).toBe(2_500);
      const { diffs } = await pgRollupDiff(sql);
      expect(diffs).toEqual([]);
      await expectRecount(store, { groupBy: ["bottle"], since: BASE + HOUR_MS + 5 });
    } finally {
      await sql.end({ timeout: 1 });
      await store.close();
    }
  }, 300_000);

  const call = fc.record({
    at: fc.integer({ min: 0, max: 3 * 24 * HOUR_MS }),
    bottle: fc.constantFrom("web", "api", "cli"),
    agent: fc.constantFrom("coder", "reviewer"),
    provider: fc.constantFrom("anthropic", "openai"),
    input: fc.integer({ min: 0, max: 5_000 }),
    cost: fc.option(fc.integer({ min: 0, max: 10_000 }), { nil: undefined }),
  });
  const query = fc.record({
    since: fc.option(fc.integer({ min: -HOUR_MS, max: 4 * 24 * HOUR_MS }), { nil: undefined }),
    until: fc.option(fc.integer({ min: -HOUR_MS, max: 4 * 24 * HOUR_MS }), { nil: undefined }),
    bottle: fc.option(fc.constantFrom("web", "team"), { nil: undefined }),
    provider: fc.option(fc.constantFrom("openai"), { nil: undefined }),
    groupBy: fc.subarray(["bottle", "agent", "provider", "model"] as const),
  });

  it("property: with two stores writing while a third folds and reports, every report equals a recount and the rollups a full scan", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(call, { minLength: 1, maxLength: 30 }),
        fc.array(call, { minLength: 0, maxLength: 30 }),
        fc.array(query, { minLength: 1, maxLength: 5 }),
        async (callsA, callsB, queries) => {
          const url = await pg.newDatabase();
          const stores: Store[] = [];
          try {
            const writers: Array<{ store: Store; now: number }> = [];
            for (let i = 0; i < 2; i++) {
              const w = { store: undefined as unknown as Store, now: BASE };
              w.store = await openStore(url, { clock: () => w.now });
              writers.push(w);
              stores.push(w.store);
            }
            const reader = (await openStore(url, { clock: () => BASE })) as PgStore;
            stores.push(reader);
            let writing = true;
            const write = async (w: (typeof writers)[number], calls: typeof callsA) => {
              for (const c of calls) {
                w.now = BASE + c.at;
                await settle(w.store, {
                  ...c,
                  ...(c.cost === undefined ? {} : { cost: c.cost / 1000 }),
                });
              }
            };
            const folds = (async () => {
              let n = 0;
              while (writing || n === 0) {
                await reader.foldReports();
                await reader.usage({ groupBy: ["bottle"] });
                n++;
              }
            })();
            await Promise.all([
              write(writers[0] as (typeof writers)[number], callsA),
              write(writers[1] as (typeof writers)[number], callsB),
            ]);
            writing = false;
            await folds;
            for (const q0 of queries) {
              await expectRecount(reader, {
                ...(q0.since === undefined ? {} : { since: Math.max(0, BASE + q0.since) }),
                ...(q0.until === undefined ? {} : { until: Math.max(0, BASE + q0.until) }),
                ...(q0.bottle === undefined
                  ? {}
                  : { bottle: q0.bottle, includeChildren: q0.bottle === "team" }),
                ...(q0.provider === undefined ? {} : { provider: q0.provider }),
                groupBy: [...q0.groupBy],
              });
            }
            // the last fold saw no writer: the rollups hold the whole ledger
            expect(await reader.foldReports()).toBeGreaterThanOrEqual(0);
            const sql = postgres(url, { max: 1, onnotice: () => {} });
            try {
              const { diffs, rows } = await pgRollupDiff(sql);
              expect(diffs).toEqual([]);
              expect(rows).toBeGreaterThan(0);
            } finally {
              await sql.end({ timeout: 1 });
            }
          } finally {
            for (const s of stores) await s.close();
          }
        },
      ),
      { numRuns: 8 },
    );
  }, 600_000);
});
