/**
 * Server CPU of the Postgres metering functions, per reserve+settle pair: the schema-2 and
 * schema-4 versions (installed beside the current ones under other names) against the current
 * bk_meter (schema 6: sums inline, a settle's claim and event in one statement) and the
 * bk_meter_call procedure, the same batches interleaved on one connection of a durable test
 * server (fsync on). Half the calls are budgeted (one budget), half are not, as in bench/run.ts.
 * CPU is the backend's own (/proc/<pid>/stat), so other load on the machine moves it less than
 * wall time. `pnpm exec tsx --conditions=@bottlekit/source bench/pg-functions.ts`
 */
import { readFileSync } from "node:fs";
import { loadavg } from "node:os";
import postgres from "postgres";
import { openStore } from "../src/index.ts";
import { PG_MIGRATIONS } from "../src/pg-schema.ts";
import { startTestPostgres } from "../test/pg.ts";

/** CPU ms of a local process (utime + stime at 100 ticks/s). */
function cpuMs(pid: number): number {
  const st = readFileSync(`/proc/${pid}/stat`, "utf8");
  const f = st.slice(st.lastIndexOf(")") + 2).split(" ");
  return (Number(f[11]) + Number(f[12])) * 10;
}

console.log(
  `load average before: ${loadavg()
    .map((l) => l.toFixed(2))
    .join(" ")}`,
);
const pg = await startTestPostgres({ durable: true });
try {
  const url = await pg.newDatabase();
  const store = await openStore(url);
  await store.defineBudget({ scope: "bottle", key: "fleet", provider: "limited", tokens: 1e12 });
  await store.close();
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  const migration = (version: number) =>
    PG_MIGRATIONS.find((m) => m.version === version)?.sql ?? "";
  const v2 = migration(2)
    .replace(/CREATE TYPE bk_op[\s\S]*?\);\n/, "")
    .replace(/bk_sums/g, "v2_sums")
    .replace(/bk_reserve_op/g, "v2_reserve_op")
    .replace(/bk_settle_op/g, "v2_settle_op")
    .replace(/bk_meter/g, "v2_meter");
  await sql.unsafe(v2);
  // schema 4's functions (sums through bk_sums, a settle in separate statements) beside the
  // current ones
  const v4 = migration(4)
    .replace(/DROP INDEX reservations_owner;/, "")
    .replace(/bk_reserve_op/g, "v4_reserve_op")
    .replace(/bk_settle_op/g, "v4_settle_op")
    .replace(/bk_meter\(/g, "v4_meter(");
  await sql.unsafe(v4);
  await sql.unsafe((await import("../src/pg-meter-v6.ts")).PG_METER_V6_SQL);
  const [ver] = await sql<
    Array<{ v: string }>
  >`SELECT value AS v FROM meta WHERE key = 'budgets_version'`;
  const [me] = await sql<Array<{ pid: number }>>`SELECT pg_backend_pid() AS pid`;
  const version = ver?.v ?? "0";
  const pid = me?.pid ?? 0;
  const day = Math.floor(Date.now() / 86_400_000);
  let next = 0;
  /** Eight reserves or the eight settles of them, as the store sends them. */
  function batch(kind: "r" | "s", ids: readonly string[]) {
    return ids.map((id, i) => {
      const limited = i % 2 === 0;
      const bottle = `bottle-${i % 2}`;
      const base = {
        id,
        now: Date.now(),
        req: null,
        bottle,
        parents: ["fleet"],
        agent: "agent-0",
        provider: limited ? "limited" : "open",
        scopes: limited ? ["bottle"] : [],
        keys: limited ? ["fleet"] : [],
        days: limited ? [-2_147_483_648] : [],
        tok: limited ? [1e12] : [],
        usd: limited ? [null] : [],
      };
      return kind === "r"
        ? {
            k: "r",
            ...base,
            chain: [bottle, "fleet"],
            est: 10,
            est_usd: 0,
            expires: Date.now() + 600_000,
          }
        : {
            k: "s",
            ...base,
            model: null,
            input: 8,
            output: 2,
            cache_read: 0,
            cache_write: 0,
            reasoning: 0,
            tokens: 10,
            cost: null,
            missing: false,
            charged_usd: 0,
            counter_scopes: ["agent", "bottle", "bottle", "global"],
            counter_keys: ["agent-0", bottle, "fleet", "*"],
            day,
          };
    });
  }
  const locks = ["limited|bottle|fleet"];
  type Way = "v2_meter" | "v4_meter" | "bk_meter" | "bk_meter_call";
  async function run(way: Way, cycles: number): Promise<number> {
    const c0 = cpuMs(pid);
    for (let c = 0; c < cycles; c++) {
      const ids = Array.from({ length: 8 }, () => `r_${next++}`);
      for (const kind of ["r", "s"] as const) {
        const ops = sql.json(batch(kind, ids) as unknown as postgres.JSONValue);
        const [row] =
          way === "bk_meter_call"
            ? await sql<Array<{ r: Array<{ s: string }> }>>`
              CALL bk_meter_call(${version}::text, 'bench'::text, ${locks}::text[], ${ops}, NULL)`
            : await sql<Array<{ r: Array<{ s: string }> }>>`
              SELECT ${sql.unsafe(way)}(${version}::text, 'bench'::text, ${locks}::text[], ${ops}) AS r`;
        const want = kind === "r" ? "granted" : "settled";
        if (row?.r.some((x) => x.s !== want)) throw new Error(`${way}: ${JSON.stringify(row?.r)}`);
      }
    }
    return (cpuMs(pid) - c0) / (cycles * 4); // 8 calls = 4 pairs per cycle
  }
  const ways: Way[] = ["v2_meter", "v4_meter", "bk_meter", "bk_meter_call"];
  for (const way of ways) await run(way, 50); // warm: plans, caches
  const got: Record<Way, number[]> = {
    v2_meter: [],
    v4_meter: [],
    bk_meter: [],
    bk_meter_call: [],
  };
  for (let round = 0; round < 4; round++)
    for (const way of ways) got[way].push(await run(way, 200));
  for (const way of ways) {
    console.log(
      `${way}: server CPU per reserve+settle pair ${got[way].map((x) => x.toFixed(3)).join(", ")} ms (8 calls per batch)`,
    );
  }
  await sql.end();
} finally {
  await pg.stop();
}
