/**
 * Budget-store figures: reserve+settle pairs per second in one process and in aggregate with
 * four processes on one database file. Targets: >= 5,000/s single, >= 3,000/s aggregate.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { openStore } from "../src/index.ts";
import { runCycleWorkers } from "../test/workers/spawn.ts";

const dir = mkdtempSync(join(tmpdir(), "budget-store-bench-"));
try {
  console.log(
    `load average before: ${loadavg()
      .map((l) => l.toFixed(2))
      .join(" ")} (figures drop on a busy machine)`,
  );
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
} finally {
  rmSync(dir, { recursive: true, force: true });
}
