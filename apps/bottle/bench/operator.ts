/**
 * Figures for the operator commands on a big ledger: 1,000,000 usage events from 100 bottles
 * (2 agents, 3 providers, spread over 30 days), written through the store's public
 * reserve/settle path. Prints:
 *   - `bottle usage --by bottle,provider` (the command's code in process, JSON to a sink),
 *     median of 5 (target < 100 ms);
 *   - one dashboard refresh after a settle (target < 50 ms), and the first load;
 *   - `bottle usage --since 24h --by bottle`;
 *   - `bottle usage --by bottle,provider` as a user runs it (a fresh process of the built bin)
 *     against `node -e 0`, and its phases in a fresh process: CLI modules, the budget store's
 *     dependencies one by one, open, query, close.
 * BENCH_EVENTS overrides the event count; BENCH_DB keeps the seeded file for later runs.
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { Writable } from "node:stream";
import { fileURLToPath, pathToFileURL } from "node:url";
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

const here = dirname(fileURLToPath(import.meta.url));
const bin = join(here, "..", "bin", "bottle.js");

/**
 * Phases of `bottle usage` in a fresh Node process: the CLI modules, then what the budget store
 * loads (its heavy dependencies first, each on its own, so their share shows), open, query, close.
 */
const PHASES_SCRIPT = `
const t = {}; let t0 = performance.now();
const lap = (k) => { const n = performance.now(); t[k] = n - t0; t0 = n; };
const { createRequire } = await import("node:module");
const req = createRequire(process.argv[1]);
await import(process.argv[2]); lap("bottle cli");
for (const dep of ["zod", "yaml", "postgres", "better-sqlite3"]) {
  try { await import(req.resolve(dep)); } catch {}
  lap(dep);
}
const { openStore } = await import("@bottlekit/budget-store"); lap("budget-store itself");
const store = await openStore("sqlite:" + process.argv[3]); lap("open");
await store.usage({ groupBy: ["bottle", "provider"] }); lap("usage()");
await store.close(); lap("close");
console.log(JSON.stringify(t));
`;

function freshProcess(): { cli: number; node: number; phases: Record<string, number> } | undefined {
  if (!existsSync(join(here, "..", "dist", "cli.js"))) return undefined;
  const cli: number[] = [];
  const node: number[] = [];
  const phases: Record<string, number[]> = {};
  const budgetStorePkg = join(here, "..", "..", "..", "packages", "budget-store", "package.json");
  for (let i = 0; i < 5; i++) {
    let t0 = performance.now();
    execFileSync(process.execPath, ["-e", "0"]);
    node.push(performance.now() - t0);
    t0 = performance.now();
    execFileSync(
      process.execPath,
      [bin, "usage", "--by", "bottle,provider", "--store", db, "--json"],
      {
        stdio: ["ignore", "ignore", "inherit"],
      },
    );
    cli.push(performance.now() - t0);
    const out = execFileSync(
      process.execPath,
      [
        "--input-type=module",
        "-e",
        PHASES_SCRIPT,
        budgetStorePkg,
        pathToFileURL(join(here, "..", "dist", "cli.js")).href,
        db,
      ],
      { cwd: join(here, ".."), encoding: "utf8" },
    );
    for (const [k, v] of Object.entries(JSON.parse(out) as Record<string, number>)) {
      const list = phases[k] ?? [];
      list.push(v);
      phases[k] = list;
    }
  }
  return {
    cli: median(cli),
    node: median(node),
    phases: Object.fromEntries(Object.entries(phases).map(([k, v]) => [k, median(v)])),
  };
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

  // The command as a user runs it: a fresh process (needs dist/), and where its time goes.
  const startup = freshProcess();

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
  if (startup === undefined) console.log("(no dist/: build first for the fresh-process figures)");
  else {
    console.log(
      `bottle usage --by bottle,provider, fresh process: ${startup.cli.toFixed(0)} ms median of 5; node -e 0 ${startup.node.toFixed(0)} ms (target < 100 ms)`,
    );
    console.log(
      `  in a fresh process, by phase (median of 5): ${Object.entries(startup.phases)
        .map(([k, v]) => `${k} ${v.toFixed(1)}`)
        .join(", ")} ms`,
    );
  }
} finally {
  if (dir) rmSync(dir, { recursive: true, force: true });
}
