/**
 * Budget-store figures: reserve+settle pairs per second in one process and in aggregate with
 * four processes on one database file, then the same on Postgres (one process and four, with 1
 * and 8 calls in flight each). Targets: SQLite >= 5,000/s single, >= 3,000/s aggregate;
 * Postgres >= 2,000/s aggregate with four processes.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import postgres from "postgres";
import { openStore } from "../src/index.ts";
import { startTestPostgres } from "../test/pg.ts";
import { runCycleWorkers, type WorkerResult } from "../test/workers/spawn.ts";

async function sqliteFigures(): Promise<void> {
  // Single process, file database (WAL), budgets on several scopes so the full check path runs.
  const single: number[] = [];
  for (const url of [
    "sqlite::memory:",
    ...[0, 1, 2].map((i) => `sqlite:${join(dir, `single-${i}.db`)}`),
  ]) {
    const store = await openStore(url);
    await store.defineBudget({ scope: "global", provider: "p", tokens: 1e12 });
    await store.defineBudget({ scope: "ceiling", provider: "p", tokens: 1e12 });
    await store.defineBudget({
      scope: "bottle",
      key: "fleet",
      provider: "p",
      tokens: 1e12,
      window: "monthly",
    });
    const N = 10_000;
    const t0 = performance.now();
    for (let i = 0; i < N; i++) {
      const r = await store.reserve({
        bottle: "b",
        parents: ["fleet"],
        agent: "a",
        provider: "p",
        estimateTokens: 100,
      });
      if (!r.ok) throw new Error(`refused: ${r.reason}`);
      await store.settle(r.id, { inputTokens: 60, outputTokens: 40 });
    }
    const rate = N / ((performance.now() - t0) / 1000);
    await store.close();
    if (url === "sqlite::memory:")
      console.log(`single process, :memory:: ${Math.round(rate)} pairs/s`);
    else single.push(rate);
  }
  single.sort((a, b) => a - b);
  console.log(
    `single process, WAL file: ${Math.round(single[1] ?? 0)} reserve+settle pairs/s median of 3 (best ${Math.round(single[2] ?? 0)}; target >= 5000)`,
  );

  for (const procs of [1, 4]) {
    const file = join(dir, `multi-${procs}.db`);
    const setup = await openStore(`sqlite:${file}`);
    await setup.defineBudget({ scope: "bottle", key: "fleet", provider: "limited", tokens: 1e12 });
    await setup.close();
    const cycles = 5_000;
    const results = await runCycleWorkers(file, procs, cycles);
    const start = Math.min(...results.map((r) => r.started));
    const end = Math.max(...results.map((r) => r.finished));
    const pairs = results.reduce((n, r) => n + cycles - r.refused - r.errors.length, 0);
    const errors = results.reduce((n, r) => n + r.errors.length, 0);
    const rate = pairs / ((end - start) / 1000);
    console.log(
      `${procs} process(es): ${Math.round(rate)} pairs/s aggregate (${pairs} pairs, ${errors} errors${procs === 4 ? "; target >= 3000" : ""})`,
    );
  }
}

async function postgresFigures(): Promise<void> {
  // Postgres (a throwaway embedded server, or BOTTLEKIT_TEST_POSTGRES_URL), same workload and
  // run: one process and four, each with 1 and with 8 calls in flight.
  const pg = await startTestPostgres({ durable: true });
  {
    const sql = postgres(pg.adminUrl, { max: 1, onnotice: () => {} });
    const rows = await sql<Array<{ name: string; setting: string }>>`SELECT name, setting
      FROM pg_settings WHERE name IN ('fsync', 'synchronous_commit', 'shared_buffers', 'wal_sync_method')
      ORDER BY name`;
    await sql.end({ timeout: 1 });
    console.log(`postgres server: ${rows.map((r) => `${r.name}=${r.setting}`).join(", ")}`);
  }
  try {
    // "one budget": every budgeted call of every process counts against one budget row (the
    // bottles' parent "fleet"), so all of them serialize on its lock. "4 budgets": the same calls
    // with one budget per process (on its agent), to show what that serialization costs.
    for (const [procs, inFlight, spread] of [
      [1, 1, false],
      [1, 8, false],
      [4, 1, false],
      [4, 8, false],
      [4, 8, true],
    ] as const) {
      if (
        process.env["BENCH_PG"] !== undefined &&
        process.env["BENCH_PG"] !== `${procs}x${inFlight}`
      )
        continue;
      const url = await pg.newDatabase();
      const setup = await openStore(url);
      if (spread) {
        for (let i = 0; i < procs; i++) {
          await setup.defineBudget({
            scope: "agent",
            key: `agent-${i}`,
            provider: "limited",
            tokens: 1e12,
          });
        }
      } else {
        await setup.defineBudget({
          scope: "bottle",
          key: "fleet",
          provider: "limited",
          tokens: 1e12,
        });
      }
      await setup.close();
      // With 8 calls in flight a worker runs 6,000 cycles: a gateway meters for hours, and over
      // 2,000 cycles about a quarter of a worker's CPU per pair was warm-up (V8 compiling the
      // hot path; one process, 8 in flight: 0.43 ms per pair over 2,000 cycles, 0.32 over 16,000).
      const cycles = inFlight === 8 ? 6_000 : 2_000;
      const pm = await postmasterPid(url);
      const cpu0 = serverCpuMs(pm);
      const syncs0 = await walSyncs(pg.adminUrl);
      const results = await runCycleWorkers(url, procs, cycles, 10, inFlight);
      const cpu1 = serverCpuMs(pm);
      const syncs1 = await walSyncs(pg.adminUrl);
      const start = Math.min(...results.map((r) => r.started));
      const end = Math.max(...results.map((r) => r.finished));
      const pairs = results.reduce((n, r) => n + cycles - r.refused - r.errors.length, 0);
      const errors = results.reduce((n, r) => n + r.errors.length, 0);
      const rate = pairs / ((end - start) / 1000);
      const serverMs = cpu0 === undefined || cpu1 === undefined ? undefined : cpu1 - cpu0;
      console.log(
        `postgres, ${procs} process(es) x ${inFlight} in flight, ${spread ? `${procs} budgets` : "one budget"}: ${Math.round(rate)} pairs/s aggregate (${pairs} pairs, ${errors} errors${procs === 4 && inFlight === 8 && !spread ? "; target >= 2000" : ""}); ${cpuPerPair(results, serverMs, pairs)}; WAL flushes per pair ${syncs0 === undefined || syncs1 === undefined ? "?" : ((syncs1 - syncs0) / pairs).toFixed(3)}`,
      );
    }
  } finally {
    await pg.stop();
  }
}

/** Clock ticks per second of /proc/<pid>/stat times. */
const TICKS = (() => {
  try {
    return Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** utime, stime, cutime, cstime and ppid of a process, or undefined once it is gone. */
function procTimes(pid: number): { own: number; children: number; ppid: number } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // fields after the ")" that ends the command name: state ppid ... utime(14) stime cutime cstime
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const n = (i: number) => Number(f[i - 3]);
    return { own: n(14) + n(15), children: n(16) + n(17), ppid: n(4) };
  } catch {
    return undefined;
  }
}

/**
 * CPU time the whole Postgres server has used so far (ms): the postmaster, its live processes,
 * and the backends it has reaped (a backend ends when its client disconnects). Undefined when the
 * server is not on this machine.
 */
function serverCpuMs(postmaster: number | undefined): number | undefined {
  if (postmaster === undefined) return undefined;
  const main = procTimes(postmaster);
  if (main === undefined) return undefined;
  let ticks = main.own + main.children;
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    const t = procTimes(Number(name));
    if (t?.ppid === postmaster) ticks += t.own;
  }
  return (ticks * 1000) / TICKS;
}

/** The server's main process id (the parent of a backend), when the server runs here. */
async function postmasterPid(url: string): Promise<number | undefined> {
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  try {
    const [row] = await sql<Array<{ pid: number }>>`SELECT pg_backend_pid() AS pid`;
    return row === undefined ? undefined : procTimes(row.pid)?.ppid;
  } catch {
    return undefined;
  } finally {
    await sql.end({ timeout: 1 });
  }
}

/**
 * WAL fsyncs the server has made so far (pg_stat_io, PostgreSQL 16+; pg_stat_wal before), or
 * undefined when neither can be read. Every durable commit a flush did not already cover costs
 * one, and on this kind of machine each costs the server about a millisecond of CPU (mostly
 * kernel time), so this counts the work group commit saves.
 */
async function walSyncs(url: string): Promise<number | undefined> {
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  const read = async (q: () => Promise<Array<{ n: number | null }>>) => {
    try {
      return (await q())[0]?.n ?? undefined;
    } catch {
      return undefined; // pg_stat_io has WAL rows from PostgreSQL 18; pg_stat_wal before it
    }
  };
  try {
    return (
      (await read(
        () => sql`SELECT sum(fsyncs)::float8 AS n FROM pg_stat_io WHERE object = 'wal'`,
      )) ?? (await read(() => sql`SELECT wal_sync::float8 AS n FROM pg_stat_wal`))
    );
  } finally {
    await sql.end({ timeout: 1 });
  }
}

/** Client and server CPU per pair, for the figures' line. */
function cpuPerPair(results: readonly WorkerResult[], serverMs: number | undefined, pairs: number) {
  const client = results.reduce((n, r) => n + r.cpuMs, 0) / pairs;
  const server = serverMs === undefined ? "?" : (serverMs / pairs).toFixed(3);
  return `CPU per pair: clients ${client.toFixed(3)} ms, server ${server} ms`;
}

/**
 * BENCH_ONLY=sqlite or postgres runs one backend (a quick look; the full run compares both);
 * BENCH_PG=4x8 runs one Postgres shape (processes x calls in flight).
 */
const only = process.env["BENCH_ONLY"];
const dir = mkdtempSync(join(tmpdir(), "budget-store-bench-"));
try {
  console.log(
    `load average before: ${loadavg()
      .map((l) => l.toFixed(2))
      .join(" ")} (figures drop on a busy machine)`,
  );
  if (only !== "postgres") await sqliteFigures();
  if (only !== "sqlite") await postgresFigures();
} finally {
  rmSync(dir, { recursive: true, force: true });
}
