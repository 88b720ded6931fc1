/**
 * Figures for the operator commands on a big ledger: 1,000,000 usage events from 100 bottles
 * (2 agents, 3 providers, spread over 30 days), written through the store's public
 * reserve/settle path. Prints:
 *   - `bottle usage --by bottle,provider` (the command's code in process, JSON to a sink),
 *     median of 5 (target < 100 ms);
 *   - one dashboard refresh after a settle (target < 50 ms), and the first load;
 *   - `bottle usage --since 24h --by bottle`.
 * BENCH_EVENTS overrides the event count; BENCH_DB keeps the seeded file for later runs.
 */
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { openStore } from "@bottlekit/budget-store";
import { runUsage } from "../src/commands/usage.ts";
import { meter } from "../src/dashboard/fixtures.ts";
import { DashboardModel } from "../src/dashboard/model.ts";

const EVENTS = Number(process.env["BENCH_EVENTS"] ?? 1_000_000);
const BOTTLES = 100;
const PROVIDERS = ["openai", "anthropic", "gemini"];
const DAY = 86_400_000;
const keep = process.env["BENCH_DB"];
const dir = keep ? undefined : mkdtempSync(join(tmpdir(), "bk-operator-bench-"));
const db = keep ?? join(dir ?? "", "bottlekit.db");
const end = Date.now();

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? 0;
}

async function seed(): Promise<void> {
  let now = end - 30 * DAY;
  const store = await openStore(`sqlite:${db}`, { clock: () => now });
  await store.defineBudget({ scope: "global", provider: "openai", tokens: 1e12 });
  for (let b = 0; b < BOTTLES; b += 10) {
    await store.defineBudget({
      scope: "bottle",
      key: `bottle-${b}`,
      provider: "anthropic",
      tokens: 5e9,
      window: "daily",
    });
  }
  const t0 = performance.now();
  const batch = 2_000;
  const step = (30 * DAY) / EVENTS;
  for (let i = 0; i < EVENTS; i += batch) {
    now = Math.floor(end - 30 * DAY + i * step);
    const calls: Promise<unknown>[] = [];
    for (let j = i; j < Math.min(EVENTS, i + batch); j++) {
      calls.push(
        meter(store, {
          bottle: `bottle-${j % BOTTLES}`,
          agent: j % 7 === 0 ? "ops" : "dev",
          provider: PROVIDERS[j % 3] ?? "openai",
          model: `model-${j % 5}`,
          input: 100 + (j % 900),
          output: 10 + (j % 90),
          ...(j % 11 === 0 ? {} : { costUsd: 0.0001 * (j % 50) }),
        }),
      );
    }
    await Promise.all(calls);
    if ((i / batch) % 50 === 0)
      process.stderr.write(`\rseeding ${i.toLocaleString("en")} / ${EVENTS.toLocaleString("en")}`);
  }
  process.stderr.write(
    `\rseeded ${EVENTS.toLocaleString("en")} events in ${((performance.now() - t0) / 1000).toFixed(0)} s\n`,
  );
  await store.close();
}

const sink = () =>
  new Writable({
    write(_chunk, _enc, cb) {
      cb();
    },
  });

try {
  if (!existsSync(db)) await seed();
  const io = { stdout: sink(), stderr: sink(), env: {} as NodeJS.ProcessEnv };
  const usageTimes: number[] = [];
  for (let i = 0; i < 5; i++) {
    const t0 = performance.now();
    const code = await runUsage({ store: db, by: ["bottle,provider"], json: true }, io);
    usageTimes.push(performance.now() - t0);
    if (code !== 0) throw new Error(`bottle usage exited ${code}`);
  }
  const sinceTimes: number[] = [];
  for (let i = 0; i < 5; i++) {
    const t0 = performance.now();
    await runUsage({ store: db, by: ["bottle"], since: "24h", json: true }, io);
    sinceTimes.push(performance.now() - t0);
  }

  let t0 = performance.now();
  const store = await openStore(`sqlite:${db}`);
  const openMs = performance.now() - t0;
  const queryTimes: number[] = [];
  for (let i = 0; i < 5; i++) {
    t0 = performance.now();
    await store.usage({ groupBy: ["bottle", "provider"] });
    queryTimes.push(performance.now() - t0);
  }
  const model = new DashboardModel(store);
  t0 = performance.now();
  const first = await model.refresh();
  const firstMs = performance.now() - t0;
  const refreshTimes: number[] = [];
  let queries = 0;
  for (let i = 0; i < 9; i++) {
    await meter(store, { bottle: `bottle-${i * 7}`, provider: "anthropic", input: 50, output: 5 });
    t0 = performance.now();
    const snap = await model.refresh();
    refreshTimes.push(performance.now() - t0);
    queries = snap.queries;
  }
  const idleTimes: number[] = [];
  for (let i = 0; i < 9; i++) {
    t0 = performance.now();
    await model.refresh();
    idleTimes.push(performance.now() - t0);
  }
  await store.close();

  const total = first.rows.reduce((n, r) => n + r.events, 0);
  console.log(
    `operator bench: ${total.toLocaleString("en")} events, ${first.rows.length} bottles (${db})`,
  );
  console.log(
    `bottle usage --by bottle,provider:   ${median(usageTimes).toFixed(1)} ms median of 5 (target < 100 ms)`,
  );
  console.log(
    `  of which store.usage() alone:      ${median(queryTimes).toFixed(1)} ms median of 5; openStore ${openMs.toFixed(1)} ms`,
  );
  console.log(
    `bottle usage --since 24h --by bottle: ${median(sinceTimes).toFixed(1)} ms median of 5`,
  );
  console.log(
    `dashboard refresh after a settle:     ${median(refreshTimes).toFixed(1)} ms median of 9, ${queries} store reads (target < 50 ms)`,
  );
  console.log(
    `dashboard refresh, nothing new:       ${median(idleTimes).toFixed(1)} ms median of 9`,
  );
  console.log(`dashboard first load:                 ${firstMs.toFixed(0)} ms (once, at start)`);
} finally {
  if (dir) rmSync(dir, { recursive: true, force: true });
}
