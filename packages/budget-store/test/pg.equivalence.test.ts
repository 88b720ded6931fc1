/**
 * The Postgres ledger against the SQLite one: random sequences of budget changes, reserves,
 * settles, releases, cutoffs, restores and clock steps give the same answers and the same ledger
 * on both (the Postgres metering path runs server-side functions, SQLite runs the brain in
 * process). And the Postgres metering path costs one statement per call, fewer when batched.
 */
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openStore, type Store } from "../src/index.ts";
import { openPostgres } from "../src/pg-store.ts";
import { describeWhere, startTestPostgres, type TestPostgres } from "./pg.ts";

let pg: TestPostgres;
beforeAll(async () => {
  pg = await startTestPostgres();
}, 120_000);
afterAll(async () => {
  await pg?.stop();
}, 300_000); // hang guard

const T0 = Date.parse("2026-01-31T12:00:00Z");
const HOUR = 3_600_000;

const subjects = [
  { bottle: "web", parents: ["team"], agent: "a1", provider: "p" },
  { bottle: "api", parents: ["team"], agent: "a2", provider: "p" },
  { bottle: "solo", parents: [], agent: "a1", provider: "p" },
  { bottle: "web", parents: ["team"], agent: "a1", provider: "q" },
];

type Op =
  | {
      k: "budget";
      scope: "agent" | "bottle" | "global" | "ceiling";
      key: number;
      tokens: number | undefined;
      usd: number | undefined;
      window: "none" | "daily" | "2d";
      policy: "cutoff" | "freeze" | undefined;
      provider: "p" | "q";
    }
  | { k: "reserve"; who: number; est: number; estUsd: number }
  | {
      k: "settle";
      pick: number;
      tokens: number;
      costQuarters: number | undefined;
      missing: boolean;
    }
  | { k: "release"; pick: number }
  | { k: "cut"; bottle: string }
  | { k: "restore"; bottle: string }
  | { k: "tick"; hours: number };

const op: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 2,
    arbitrary: fc.record({
      k: fc.constant("budget" as const),
      scope: fc.constantFrom("agent", "bottle", "global", "ceiling"),
      key: fc.nat(2),
      tokens: fc.option(fc.integer({ min: 0, max: 400 }), { nil: undefined }),
      usd: fc.option(fc.integer({ min: 0, max: 8 }), { nil: undefined }),
      window: fc.constantFrom("none", "daily", "2d"),
      policy: fc.constantFrom("cutoff", "freeze", undefined),
      provider: fc.constantFrom("p", "q"),
    }),
  },
  {
    weight: 6,
    arbitrary: fc.record({
      k: fc.constant("reserve" as const),
      who: fc.nat(subjects.length - 1),
      est: fc.integer({ min: 0, max: 150 }),
      estUsd: fc.constantFrom(0, 0.25, 1),
    }),
  },
  {
    weight: 5,
    arbitrary: fc.record({
      k: fc.constant("settle" as const),
      pick: fc.nat(),
      tokens: fc.integer({ min: 0, max: 200 }),
      costQuarters: fc.option(fc.integer({ min: 0, max: 8 }), { nil: undefined }),
      missing: fc.boolean(),
    }),
  },
  { weight: 1, arbitrary: fc.record({ k: fc.constant("release" as const), pick: fc.nat() }) },
  {
    weight: 1,
    arbitrary: fc.record({
      k: fc.constant("cut" as const),
      bottle: fc.constantFrom("web", "team", "solo"),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      k: fc.constant("restore" as const),
      bottle: fc.constantFrom("web", "team", "solo"),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      k: fc.constant("tick" as const),
      hours: fc.integer({ min: 1, max: 30 }),
    }),
  },
);

const KEYS = {
  agent: ["a1", "a2", "a1"],
  bottle: ["web", "team", "solo"],
  global: [undefined, undefined, undefined],
  ceiling: [undefined, undefined, undefined],
} as const;

/** Run `ops` on `store` (clock read through `clock`), returning every answer, ids replaced. */
async function run(store: Store, ops: readonly Op[], clock: { now: number }): Promise<unknown[]> {
  const held: string[] = [];
  const out: unknown[] = [];
  const attempt = async (f: () => Promise<unknown>) => {
    try {
      return await f();
    } catch (err) {
      return { error: (err as { code?: string }).code ?? String(err) };
    }
  };
  for (const o of ops) {
    switch (o.k) {
      case "budget":
        if (o.tokens === undefined && o.usd === undefined) break;
        out.push(
          await attempt(async () => {
            const b = await store.defineBudget({
              scope: o.scope,
              key: KEYS[o.scope][o.key],
              provider: o.provider,
              tokens: o.tokens,
              usd: o.usd,
              window: o.window,
              policy: o.policy,
            });
            return { ...b, updatedAt: b.updatedAt - T0 };
          }),
        );
        break;
      case "reserve":
        out.push(
          await attempt(async () => {
            const r = await store.reserve({
              ...(subjects[o.who] as (typeof subjects)[number]),
              estimateTokens: o.est,
              estimateUsd: o.estUsd,
            });
            if (!r.ok) return r;
            held.push(r.id);
            return { ok: true, expiresAt: r.expiresAt - T0 };
          }),
        );
        break;
      case "settle":
      case "release": {
        if (held.length === 0) break;
        const i = o.pick % held.length;
        const id = held[i] as string;
        held.splice(i, 1);
        if (o.k === "release") out.push(await attempt(() => store.release(id)));
        else
          out.push(
            await attempt(async () => {
              const s = await store.settle(id, {
                inputTokens: o.tokens,
                costUsd: o.costQuarters === undefined ? undefined : o.costQuarters / 4,
                usageMissing: o.missing,
              });
              return { ...s, eventId: undefined };
            }),
          );
        break;
      }
      case "cut":
        out.push(
          await attempt(async () => {
            const s = await store.cutOff(o.bottle, { by: "ops", reason: "test" });
            return { ...s, since: s.since - T0 };
          }),
        );
        break;
      case "restore":
        out.push(await attempt(() => store.restore(o.bottle, { by: "ops", reason: "test" })));
        break;
      case "tick":
        clock.now += o.hours * HOUR;
        break;
    }
  }
  // The ledger, the holds and the audit trail.
  out.push(await store.usage({ groupBy: ["bottle", "agent", "provider"] }));
  for (const s of subjects) out.push(await store.remaining(s));
  out.push((await store.actions()).map((a) => ({ ...a, id: undefined })));
  for (const b of ["web", "team", "solo"]) out.push(await store.cutoffState(b));
  return out;
}

describe(`the Postgres ledger equals the SQLite one (${describeWhere()})`, () => {
  it("for random operation sequences", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 60 }), async (ops) => {
        const clockA = { now: T0 };
        const clockB = { now: T0 };
        const sqlite = await openStore("sqlite::memory:", { clock: () => clockA.now });
        const postgres = await openStore(await pg.newDatabase(), { clock: () => clockB.now });
        try {
          const a = await run(sqlite, ops, clockA);
          const b = await run(postgres, ops, clockB);
          expect(b).toEqual(a);
        } finally {
          await sqlite.close();
          await postgres.close();
        }
      }),
      { numRuns: 25 },
    );
  }, 300_000);
});

describe("Postgres metering round trips", () => {
  it("one statement per reserve and per settle; calls made together share one", async () => {
    const statements: string[] = [];
    const store = await openPostgres(await pg.newDatabase(), {
      clock: Date.now,
      reservationTtlMs: 600_000,
      settleGraceMs: 3_600_000,
      owner: "round-trips",
      leaseMs: 3_600_000,
      reclaimOnOpen: false,
      onStatement: (text) => statements.push(text),
    });
    try {
      await store.defineBudget({ scope: "bottle", key: "team", provider: "p", tokens: 1_000_000 });
      await store.defineBudget({ scope: "ceiling", provider: "p", tokens: 1_000_000 });
      const who = subjects[0] as (typeof subjects)[number];
      // Warm the budget cache (one read of the budgets), then count.
      const warm = await store.reserve({ ...who, estimateTokens: 1 });
      if (!warm.ok) throw new Error("refused");
      await store.settle(warm.id, { inputTokens: 1 });
      statements.length = 0;
      for (let i = 0; i < 20; i++) {
        const r = await store.reserve({ ...who, estimateTokens: 10 });
        if (!r.ok) throw new Error("refused");
        await store.settle(r.id, { inputTokens: 9 });
      }
      // Each batch: bk_meter, then the flush barrier pipelined after it on the same connection.
      const metering = statements.filter((t) => t.includes("bk_meter("));
      const barriers = statements.filter((t) => t.includes("pg_logical_emit_message("));
      expect(metering).toHaveLength(40);
      expect(barriers).toHaveLength(40);
      expect(statements).toHaveLength(80);
      expect(statements.every((t, i) => (i % 2 === 0 ? metering : barriers).includes(t))).toBe(
        true,
      );
      statements.length = 0;
      const held = await Promise.all(
        Array.from({ length: 8 }, () => store.reserve({ ...who, estimateTokens: 10 })),
      );
      await Promise.all(
        held.map((r) => (r.ok ? store.settle(r.id, { inputTokens: 10 }) : Promise.reject())),
      );
      // Eight reserves in one batch, eight settles in one (each a statement and its barrier).
      expect(statements.filter((t) => t.includes("bk_meter("))).toHaveLength(2);
      expect(statements).toHaveLength(4);
      expect((await store.usage()).totals).toMatchObject({ events: 29, tokens: 1 + 180 + 80 });
      // One batch mixing calls no budget governs (run first, without locks) with budgeted ones:
      // each answer still reaches its own call, and the budgeted ones keep call order.
      await store.defineBudget({ scope: "bottle", key: "web", provider: "m", tokens: 25 });
      await store.remaining({ ...who, provider: "m" });
      statements.length = 0;
      const mixed = await Promise.all(
        ["m", "m", "m", "z", "z"].map((provider) =>
          store.reserve({ ...who, provider, estimateTokens: 10 }),
        ),
      );
      expect(statements.filter((t) => t.includes("bk_meter("))).toHaveLength(1);
      expect(mixed.map((r) => r.ok)).toEqual([true, true, false, true, true]);
      expect(mixed[2]).toMatchObject({ reason: "insufficient", remaining: 5 });
    } finally {
      await store.close();
    }
  }, 300_000); // hang guard

  it("a user who may not write the flush barrier's WAL message meters through bk_meter alone", async () => {
    // The flush barrier is pg_logical_emit_message; a server may deny it to ordinary users.
    const url = await pg.newDatabase();
    const dbName = new URL(url).pathname.slice(1);
    const role = `bk_plain_${process.pid}_${Date.now().toString(36)}`;
    const admin = await openPostgres(url, {
      clock: Date.now,
      reservationTtlMs: 600_000,
      settleGraceMs: 3_600_000,
      owner: "admin",
      leaseMs: 3_600_000,
      reclaimOnOpen: false,
    });
    const statements: string[] = [];
    let store: Awaited<ReturnType<typeof openPostgres>> | undefined;
    const { default: postgres } = await import("postgres");
    const raw = postgres(url, { max: 1, onnotice: () => {} });
    try {
      await raw.unsafe(`CREATE ROLE ${role} LOGIN PASSWORD 'plain'`);
      await raw.unsafe(`GRANT ALL ON ALL TABLES IN SCHEMA public TO ${role}`);
      await raw.unsafe(`GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO ${role}`);
      await raw.unsafe(`GRANT CREATE, USAGE ON SCHEMA public TO ${role}`);
      await raw.unsafe(`ALTER DATABASE ${dbName} OWNER TO ${role}`);
      for (const { sig } of await raw<Array<{ sig: string }>>`
          SELECT p.oid::regprocedure::text AS sig FROM pg_proc p
          WHERE p.proname = 'pg_logical_emit_message' AND p.pronamespace = 'pg_catalog'::regnamespace`) {
        await raw.unsafe(`REVOKE EXECUTE ON FUNCTION ${sig} FROM PUBLIC`);
      }
      await admin.defineBudget({ scope: "bottle", key: "team", provider: "p", tokens: 100 });
      const u = new URL(url);
      u.username = role;
      u.password = "plain";
      store = await openPostgres(u.toString(), {
        clock: Date.now,
        reservationTtlMs: 600_000,
        settleGraceMs: 3_600_000,
        owner: "plain",
        leaseMs: 3_600_000,
        reclaimOnOpen: false,
        onStatement: (text) => statements.push(text),
      });
      const who = subjects[0] as (typeof subjects)[number];
      await store.remaining(who);
      statements.length = 0;
      const held = await Promise.all(
        [40, 40, 40].map((n) => store?.reserve({ ...who, estimateTokens: n })),
      );
      expect(held.map((r) => r?.ok)).toEqual([true, true, false]);
      const first = held[0];
      if (first?.ok !== true) throw new Error("refused");
      await store.settle(first.id, { inputTokens: 30 });
      const metering = statements.filter((t) => t.includes("bk_meter"));
      expect(metering).toHaveLength(2);
      expect(metering.every((t) => t.includes("SELECT bk_meter(") && !t.includes("CALL"))).toBe(
        true,
      );
      expect((await admin.usage()).totals).toMatchObject({ events: 1, tokens: 30 });
    } finally {
      await store?.close();
      await admin.close();
      await raw.unsafe(`ALTER DATABASE ${dbName} OWNER TO CURRENT_USER`).catch(() => {});
      await raw.unsafe(`DROP OWNED BY ${role}`).catch(() => {});
      await raw.end({ timeout: 5 });
      // (the database is dropped by pg.stop(); the role goes with DROP ROLE once nothing uses it)
      const cleanup = postgres(pg.adminUrl, { max: 1, onnotice: () => {} });
      await cleanup.unsafe(`DROP ROLE IF EXISTS ${role}`).catch(() => {});
      await cleanup.end({ timeout: 5 });
    }
  }, 300_000); // hang guard
});
