/**
 * Budget-store figures: reserve+settle pairs per second in one process and in aggregate with
 * four processes on one database file, then the same on Postgres (one process and four, with 1
 * and 8 calls in flight each). Targets: SQLite >= 5,000/s single, >= 3,000/s aggregate;
 * Postgres >= 2,000/s aggregate with four processes.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { openStore } from "../src/index.ts";
import { startTestPostgres } from "../test/pg.ts";
import { runCycleWorkers } from "../test/workers/spawn.ts";

/** BENCH_ONLY=sqlite or postgres runs one backend (a quick look; the full run compares both). */
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
  const pg = await startTestPostgres();
  try {
    for (const [procs, inFlight] of [
      [1, 1],
      [1, 8],
      [4, 1],
      [4, 8],
    ] as const) {
      const url = await pg.newDatabase();
      const setup = await openStore(url);
      await setup.defineBudget({
        scope: "bottle",
        key: "fleet",
        provider: "limited",
        tokens: 1e12,
      });
      await setup.close();
      const cycles = 2_000;
      const results = await runCycleWorkers(url, procs, cycles, 10, inFlight);
      const start = Math.min(...results.map((r) => r.started));
      const end = Math.max(...results.map((r) => r.finished));
      const pairs = results.reduce((n, r) => n + cycles - r.refused - r.errors.length, 0);
      const errors = results.reduce((n, r) => n + r.errors.length, 0);
      const rate = pairs / ((end - start) / 1000);
      console.log(
        `postgres, ${procs} process(es) x ${inFlight} in flight: ${Math.round(rate)} pairs/s aggregate (${pairs} pairs, ${errors} errors${procs === 4 && inFlight === 8 ? "; target >= 2000" : ""})`,
      );
    }
  } finally {
    await pg.stop();
  }
}
