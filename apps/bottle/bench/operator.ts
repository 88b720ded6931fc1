/**
 * Figures for the operator commands on a big ledger: 1,000,000 usage events from 100 bottles
 * (2 agents, 3 providers, spread over 30 days), written through the store's public
 * reserve/settle path. Prints:
 *   - `bottle usage --by bottle,provider` (the command's code in process, JSON to a sink),
 *     median of 5 (target < 100 ms);
 *   - one dashboard refresh after a settle (target < 50 ms), and the first load;
 *   - `bottle usage --since 24h --by bottle`;
 *   - `bottle usage --by bottle,provider` as a user runs it (a fresh process of the built bin)
 *     against `node -e 0`, wall and CPU time, and its phases in a fresh process: Node start, CLI
 *     modules, the budget store's modules, open, query, render, close.
 * BENCH_EVENTS overrides the event count; BENCH_DB keeps the seeded file for later runs.
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
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
 * Phases of `bottle usage` in a fresh Node process, each what that process loads or does on the
 * command's path: Node's own start (until the first line of user code), the CLI's modules (the
 * built dist/cli.js: commander, diagnostics), the budget store's modules (better-sqlite3's JS
 * too), opening the store (the native addon, the schema check, the owner row), the query, the
 * JSON rendering, closing. Wall ms and, in brackets, CPU ms of the process.
 */
const PHASES_SCRIPT = `
const t = {}; let t0 = performance.now(); let c0 = process.cpuUsage();
t["node start"] = [t0, c0.user / 1000 + c0.system / 1000];
const lap = (k) => { const n = performance.now(); const c = process.cpuUsage(c0); t[k] = [n - t0, (c.user + c.system) / 1000]; t0 = n; c0 = process.cpuUsage(); };
await import(process.argv[1]); lap("cli modules");
const { openStore } = await import("@bottlekit/budget-store"); lap("budget-store modules");
const store = await openStore("sqlite:" + process.argv[2]); lap("open");
const report = await store.usage({ groupBy: ["bottle", "provider"] }); lap("usage()");
JSON.stringify(report, null, 2); lap("render");
await store.close(); lap("close");
console.log(JSON.stringify(t));
`;

/** CPU ms this process's waited-for children have used so far (Linux; undefined elsewhere). */
function childrenCpuMs(): number | undefined {
  try {
    const stat = readFileSync("/proc/self/stat", "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    // fields[0] is field 3 (state); cutime and cstime are fields 16 and 17, in clock ticks (100/s)
    return ((Number(fields[13]) + Number(fields[14])) * 1000) / 100;
  } catch {
    return undefined;
  }
}

interface Fresh {
  cli: number;
  node: number;
  cliCpu: number | undefined;
  nodeCpu: number | undefined;
  phases: Record<string, [number, number]>;
}

function freshProcess(runs = 7): Fresh | undefined {
  if (!existsSync(join(here, "..", "dist", "cli.js"))) return undefined;
  const cli: number[] = [];
  const node: number[] = [];
  let cliCpu = 0;
  let nodeCpu = 0;
  const phases: Record<string, Array<[number, number]>> = {};
  for (let i = 0; i < runs; i++) {
    let c0 = childrenCpuMs();
    let t0 = performance.now();
    execFileSync(process.execPath, ["-e", "0"]);
    node.push(performance.now() - t0);
    let c1 = childrenCpuMs();
    if (c0 !== undefined && c1 !== undefined) nodeCpu += c1 - c0;
    c0 = c1;
    t0 = performance.now();
    execFileSync(
      process.execPath,
      [bin, "usage", "--by", "bottle,provider", "--store", db, "--json"],
      {
        stdio: ["ignore", "ignore", "inherit"],
      },
    );
    cli.push(performance.now() - t0);
    c1 = childrenCpuMs();
    if (c0 !== undefined && c1 !== undefined) cliCpu += c1 - c0;
    const out = execFileSync(
      process.execPath,
      [
        "--input-type=module",
        "-e",
        PHASES_SCRIPT,
        pathToFileURL(join(here, "..", "dist", "cli.js")).href,
        db,
      ],
      { cwd: join(here, ".."), encoding: "utf8" },
    );
    for (const [k, v] of Object.entries(JSON.parse(out) as Record<string, [number, number]>)) {
      const list = phases[k] ?? [];
      list.push(v);
      phases[k] = list;
    }
  }
  const cpuKnown = childrenCpuMs() !== undefined;
  return {
    cli: median(cli),
    node: median(node),
    cliCpu: cpuKnown ? cliCpu / runs : undefined,
    nodeCpu: cpuKnown ? nodeCpu / runs : undefined,
    phases: Object.fromEntries(
      Object.entries(phases).map(([k, v]) => [
        k,
        [median(v.map((x) => x[0])), median(v.map((x) => x[1]))] as [number, number],
      ]),
    ),
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
  const usageCpu: number[] = [];
  for (let i = 0; i < 5; i++) {
    const t0 = performance.now();
    const c0 = process.cpuUsage();
    const code = await runUsage({ store: db, by: ["bottle,provider"], json: true }, io);
    const c = process.cpuUsage(c0);
    usageTimes.push(performance.now() - t0);
    usageCpu.push((c.user + c.system) / 1000);
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
  const refreshCpu: number[] = [];
  let queries = 0;
  for (let i = 0; i < 9; i++) {
    await meter(store, { bottle: `bottle-${i * 7}`, provider: "anthropic", input: 50, output: 5 });
    t0 = performance.now();
    const c0 = process.cpuUsage();
    const snap = await model.refresh();
    const c = process.cpuUsage(c0);
    refreshTimes.push(performance.now() - t0);
    refreshCpu.push((c.user + c.system) / 1000);
    queries = snap.queries;
  }
  // When a budget changes, a refresh re-reads every bottle's budgets at once.
  const fullTimes: number[] = [];
  let fullQueries = 0;
  for (let i = 0; i < 3; i++) {
    await store.defineBudget({
      scope: "bottle",
      key: "bottle-1",
      provider: "openai",
      tokens: 1e9 + i,
      source: "operator",
    });
    t0 = performance.now();
    const snap = await model.refresh();
    fullTimes.push(performance.now() - t0);
    fullQueries = snap.queries;
  }
  // The periodic re-read: 30 s later every bottle is due; each refresh re-reads a few of them.
  let skew = 0;
  const later = new DashboardModel(store, () => Date.now() + skew);
  await later.refresh();
  skew = 31_000;
  const rereadTimes: number[] = [];
  let rereadQueries = 0;
  for (let i = 0; i < 5; i++) {
    t0 = performance.now();
    const snap = await later.refresh();
    rereadTimes.push(performance.now() - t0);
    rereadQueries = Math.max(rereadQueries, snap.queries);
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
    `bottle usage --by bottle,provider:   ${median(usageTimes).toFixed(1)} ms median of 5, ${median(usageCpu).toFixed(1)} ms CPU (target < 100 ms; open, query, JSON, close)`,
  );
  console.log(
    `  of which store.usage() alone:      ${median(queryTimes).toFixed(1)} ms median of 5; openStore ${openMs.toFixed(1)} ms`,
  );
  console.log(
    `bottle usage --since 24h --by bottle: ${median(sinceTimes).toFixed(1)} ms median of 5`,
  );
  console.log(
    `dashboard refresh after a settle:     ${median(refreshTimes).toFixed(1)} ms median of 9, ${median(refreshCpu).toFixed(1)} ms CPU, ${queries} store reads (target < 50 ms)`,
  );
  console.log(
    `dashboard full refresh (a budget changed): ${median(fullTimes).toFixed(1)} ms median of 3, ${fullQueries} store reads`,
  );
  console.log(
    `dashboard refresh 30 s later (rolling budget re-read): ${median(rereadTimes).toFixed(1)} ms median of 5, at most ${rereadQueries} store reads`,
  );
  console.log(
    `dashboard refresh, nothing new:       ${median(idleTimes).toFixed(1)} ms median of 9`,
  );
  console.log(`dashboard first load:                 ${firstMs.toFixed(0)} ms (once, at start)`);
  if (startup === undefined) console.log("(no dist/: build first for the fresh-process figures)");
  else {
    const cpu = (x: number | undefined) => (x === undefined ? "" : `, ${x.toFixed(0)} ms CPU`);
    console.log(
      `bottle usage --by bottle,provider, fresh process: ${startup.cli.toFixed(0)} ms median of 7${cpu(startup.cliCpu)}; node -e 0 ${startup.node.toFixed(0)} ms${cpu(startup.nodeCpu)} (target < 100 ms)`,
    );
    console.log(
      `  in a fresh process, by phase (median of 7, wall ms [CPU ms]): ${Object.entries(
        startup.phases,
      )
        .map(([k, [wall, c]]) => `${k} ${wall.toFixed(1)} [${c.toFixed(1)}]`)
        .join(", ")}`,
    );
  }
} finally {
  if (dir) rmSync(dir, { recursive: true, force: true });
}
