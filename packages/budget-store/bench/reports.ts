/**
 * Report figures on a big ledger: 1,000,000 usage events over 7 days, 100 bottles (10 parent
 * teams), 3 agents, 2 providers, 4 models. Prints the time of `bottle usage --by bottle,provider`
 * (since 24 h and all time) and of one dashboard refresh (usage by bottle today, every budget's
 * status, burn rate per bottle over 15 minutes, the latest 20 audit entries), medians of 15 runs.
 * Targets: usage report < 100 ms, dashboard refresh < 50 ms.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import postgres from "postgres";
import { openConnection } from "../src/connection.ts";
import { openStore, type Store } from "../src/index.ts";
import { startTestPostgres, type TestPostgres } from "../test/pg.ts";

const EVENTS = Number(process.env["BENCH_EVENTS"] ?? 1_000_000);
const DAY = 86_400_000;
const keep = process.env["BENCH_KEEP_DIR"];
const dir = keep ?? mkdtempSync(join(tmpdir(), "budget-store-reports-"));
const file = join(dir, "ledger.db");
const now = Date.now();

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? 0;
}

/** Median wall time and median client CPU time (this process) of `runs` calls, in ms. */
async function time(fn: () => Promise<unknown>, runs = 15): Promise<number> {
  return (await timeCpu(fn, runs)).wall;
}

async function timeCpu(
  fn: () => Promise<unknown>,
  runs = 15,
): Promise<{ wall: number; cpu: number }> {
  const wall: number[] = [];
  const cpu: number[] = [];
  for (let i = 0; i < runs; i++) {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    await fn();
    wall.push(performance.now() - t0);
    const c = process.cpuUsage(c0);
    cpu.push((c.user + c.system) / 1000);
  }
  return { wall: median(wall), cpu: median(cpu) };
}

/** 100 bottle budgets (half operator, half config), a global and a ceiling, 50 cutoffs. */
async function defineFleet(store: Store): Promise<void> {
  for (let b = 0; b < 100; b++) {
    await store.defineBudget({
      scope: "bottle",
      key: `bottle-${b}`,
      provider: "anthropic",
      tokens: 5_000_000,
      window: "daily",
      source: b % 2 === 0 ? "operator" : "config",
    });
  }
  await store.defineBudget({ scope: "global", provider: "anthropic", tokens: 1e12 });
  await store.defineBudget({ scope: "ceiling", provider: "openai", tokens: 1e12, usd: 1e6 });
  for (let i = 0; i < 50; i++)
    await store.cutOff(`bottle-${i % 100}`, { by: "ops", reason: "bench" });
}

/** The report and dashboard figures of one store, printed next to their targets. */
async function figures(
  label: string,
  store: Store,
  scan: { events: number; tokens: number },
): Promise<void> {
  const day = await timeCpu(() =>
    store.usage({ groupBy: ["bottle", "provider"], since: now - DAY }),
  );
  const week = await timeCpu(() => store.usage({ groupBy: ["bottle", "provider"] }));
  const byModel = await timeCpu(() =>
    store.usage({ groupBy: ["bottle", "agent", "provider", "model"], since: now - 7 * DAY }),
  );
  const f = (x: { wall: number; cpu: number }) =>
    `${x.wall.toFixed(1)} ms (client CPU ${x.cpu.toFixed(1)} ms)`;
  console.log(
    `${label}: usage --by bottle,provider --since 24h: ${f(day)}; all time: ${f(week)}; by bottle,agent,provider,model over 7d: ${f(byModel)} (target < 100 ms)`,
  );
  // The figures are exact: the all-time report against a full scan of the ledger.
  const report = await store.usage({ groupBy: ["bottle", "provider"] });
  const exact =
    report.totals.events === scan.events &&
    report.totals.tokens === scan.tokens &&
    report.groups.reduce((n, g) => n + g.tokens, 0) === scan.tokens;
  console.log(
    `  all-time report against a full scan: ${report.totals.events} events, ${report.totals.tokens} tokens: ${exact ? "equal" : "DIFFERENT"}`,
  );
  if (!exact) process.exitCode = 1;
  const todayStart = Math.floor(now / DAY) * DAY;
  const parts = {
    usageToday: await time(() => store.usage({ groupBy: ["bottle"], since: todayStart })),
    budgetStatus: await time(() => store.budgetStatus()),
    burnRate: await time(() => store.burnRate({ minutes: 15, byBottle: true })),
    actions: await time(() => store.actions({ limit: 20 })),
  };
  console.log(
    `  parts: ${Object.entries(parts)
      .map(([k, v]) => `${k} ${v.toFixed(1)} ms`)
      .join(", ")}`,
  );
  const refresh = await timeCpu(async () => {
    await store.usage({ groupBy: ["bottle"], since: todayStart });
    await store.budgetStatus();
    await store.burnRate({ minutes: 15, byBottle: true });
    await store.actions({ limit: 20 });
  });
  console.log(
    `${label}: dashboard refresh (usage today, budget status, burn rate, audit): ${f(refresh)} (target < 50 ms)`,
  );
  // A settle between refreshes: the next report reads (or folds) one more event.
  const r = await store.reserve({
    bottle: "bottle-77",
    agent: "agent-1",
    provider: "anthropic",
    estimateTokens: 10,
  });
  const afterSettle = await time(async () => {
    if (!r.ok) throw new Error(`refused: ${r.reason} on ${r.scope.scope} ${r.scope.key}`);
    return store.usage({ groupBy: ["bottle"], since: todayStart });
  }, 1);
  if (r.ok) await store.settle(r.id, { inputTokens: 5 });
  console.log(`  usage by bottle today right after a settle: ${afterSettle.toFixed(1)} ms`);
}

console.log(
  `load average before: ${loadavg()
    .map((l) => l.toFixed(2))
    .join(" ")} (wall figures rise on a busy machine; CPU figures less)`,
);
try {
  // The schema, then the ledger written in bulk (a settle-by-settle fill would take minutes);
  // the schema's triggers add each event to the report rollups as a settle's insert does.
  const init = await openStore(`sqlite:${file}`);
  await defineFleet(init);
  await init.close();

  const t0 = performance.now();
  const raw = openConnection(file);
  raw.exec("PRAGMA journal_mode = WAL");
  raw.exec("PRAGMA synchronous = OFF");
  raw.db
    .prepare(
      `WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < ? - 1)
       INSERT INTO usage_events (at, request_id, reservation_id, bottle, parents, agent, provider, model,
         input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, reasoning_tokens, tokens, cost_usd, usage_missing)
       SELECT CAST(? - (i * 7 * ${DAY}) / ? AS INTEGER), NULL, NULL, 'bottle-' || (i % 100), '["team-' || (i % 10) || '"]',
         'agent-' || (i % 3), CASE i % 2 WHEN 0 THEN 'anthropic' ELSE 'openai' END, 'model-' || (i % 4),
         100 + i % 900, 10 + i % 90, i % 50, 0, 0, 110 + i % 900 + i % 90,
         CASE WHEN i % 7 = 0 THEN NULL ELSE (i % 1000) / 100000.0 END, (i % 101 = 0)
       FROM n`,
    )
    .run(EVENTS, now, BigInt(EVENTS));
  // The per-scope daily counters settle keeps (budget checks read these).
  for (const [scope, key] of [
    ["agent", "agent"],
    ["bottle", "bottle"],
    ["bottle", "json_extract(parents, '$[0]')"],
    ["global", "'*'"],
  ]) {
    raw.db
      .prepare(
        `INSERT INTO usage_buckets (scope, key, provider, day, tokens, usd)
         SELECT '${scope}', ${key}, provider, CAST(at / ${DAY} AS INTEGER), sum(tokens), coalesce(sum(cost_usd), 0)
         FROM usage_events GROUP BY 2, 3, 4
         ON CONFLICT(scope, key, provider, day) DO UPDATE SET tokens = tokens + excluded.tokens, usd = usd + excluded.usd`,
      )
      .run();
  }
  raw.close();
  console.log(`ledger: ${EVENTS} events written in ${Math.round(performance.now() - t0)} ms`);

  const store = await openStore(`sqlite:${file}`);
  const check = openConnection(file);
  const scan = check
    .prepare("SELECT count(*) AS events, sum(tokens) AS tokens FROM usage_events")
    .get() as { events: number; tokens: number };
  check.close();
  await figures("sqlite", store, scan);
  await store.close();
} finally {
  if (keep === undefined) rmSync(dir, { recursive: true, force: true });
}

await postgresFigures();

/**
 * The same ledger on Postgres (a throwaway embedded server with fsync on, or
 * BOTTLEKIT_TEST_POSTGRES_URL), written in one INSERT … SELECT; the first report folds it into
 * the rollups. Then what the xid column costs the metering path: reserve+settle pairs on two
 * databases of one server, one with the column and its index and one without, interleaved.
 */
async function postgresFigures(): Promise<void> {
  if (process.env["BENCH_ONLY"] === "sqlite") return;
  const pg = await startTestPostgres({ durable: true });
  try {
    const url = await pg.newDatabase();
    const init = await openStore(url);
    await defineFleet(init);
    await init.close();
    const sql = postgres(url, { max: 1, onnotice: () => {} });
    let scan: { events: number; tokens: number };
    try {
      const t0 = performance.now();
      await sql`INSERT INTO usage_events (at, request_id, reservation_id, bottle, parents, agent, provider, model,
          input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, reasoning_tokens, tokens, cost_usd, usage_missing)
        SELECT ${now}::bigint - (i * 7 * ${DAY}::bigint) / ${EVENTS}::bigint, NULL, NULL, 'bottle-' || (i % 100),
          jsonb_build_array('team-' || (i % 10)), 'agent-' || (i % 3),
          CASE i % 2 WHEN 0 THEN 'anthropic' ELSE 'openai' END, 'model-' || (i % 4),
          100 + i % 900, 10 + i % 90, i % 50, 0, 0, 110 + i % 900 + i % 90,
          CASE WHEN i % 7 = 0 THEN NULL ELSE (i % 1000) / 100000.0 END, i % 101 = 0
        FROM generate_series(0::bigint, ${EVENTS}::bigint - 1) AS i`;
      for (const [scope, key] of [
        ["agent", "agent"],
        ["bottle", "bottle"],
        ["bottle", "parents->>0"],
        ["global", "'*'"],
      ] as const) {
        await sql.unsafe(`INSERT INTO usage_buckets (scope, key, provider, day, tokens, usd)
          SELECT '${scope}', ${key}, provider, (at / ${DAY})::int, sum(tokens), coalesce(sum(cost_usd), 0)
          FROM usage_events GROUP BY 2, 3, 4
          ON CONFLICT (scope, key, provider, day) DO UPDATE SET tokens = usage_buckets.tokens + excluded.tokens,
            usd = usage_buckets.usd + excluded.usd`);
      }
      await sql`ANALYZE`;
      console.log(
        `postgres ledger: ${EVENTS} events written in ${Math.round(performance.now() - t0)} ms`,
      );
      const [row] = await sql<Array<{ events: number; tokens: number }>>`
        SELECT count(*)::float8 AS events, sum(tokens)::float8 AS tokens FROM usage_events`;
      scan = row ?? { events: 0, tokens: 0 };
    } finally {
      await sql.end({ timeout: 1 });
    }
    const store = await openStore(url);
    try {
      // The ledger was written after the last fold: the first report folds all of it.
      const first = await timeCpu(() => store.usage({ groupBy: ["bottle", "provider"] }), 1);
      console.log(
        `postgres: first report, folding ${EVENTS} events into the rollups: ${first.wall.toFixed(0)} ms (once)`,
      );
      await figures("postgres", store, scan);
    } finally {
      await store.close();
    }
    // The ledger's database goes before the A/B: its autovacuum would write WAL into the figures.
    const admin = postgres(pg.adminUrl, { max: 1, onnotice: () => {} });
    try {
      await admin.unsafe(`DROP DATABASE IF EXISTS ${new URL(url).pathname.slice(1)} WITH (FORCE)`);
      await admin`CHECKPOINT`;
    } finally {
      await admin.end({ timeout: 1 });
    }
    await hotPathAB(pg);
  } finally {
    await pg.stop();
  }
}

/**
 * CPU time (ms) of the Postgres server processes: all of them (the postmaster, its children,
 * the reaped ones), or with `database`, only the backends serving that database (their process
 * title names it), which leaves out the other databases' work and the server's background work.
 */
function serverCpuMs(postmaster: number | undefined, database?: string): number | undefined {
  if (postmaster === undefined) return undefined;
  const times = (pid: number) => {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      // fields from 3 on: ppid is 4, utime 14, stime 15, cutime 16, cstime 17
      const n = (i: number) => Number(f[i - 3]);
      return { own: n(14) + n(15), reaped: n(16) + n(17), ppid: n(4) };
    } catch {
      return undefined;
    }
  };
  const serves = (pid: number) => {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, "utf8").includes(` ${database} `);
    } catch {
      return false;
    }
  };
  const main = times(postmaster);
  if (main === undefined) return undefined;
  let ticks = database === undefined ? main.own + main.reaped : 0;
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    const t = times(Number(name));
    if (t?.ppid === postmaster && (database === undefined || serves(Number(name)))) ticks += t.own;
  }
  return (ticks * 1000) / 100; // USER_HZ is 100 on Linux
}

async function hotPathAB(pg: TestPostgres): Promise<void> {
  const dbs: Array<{
    label: string;
    database: string;
    store: Store;
    wall: number;
    cpu: number;
    backendCpu: number;
    wal: number;
    pairs: number;
  }> = [];
  const admin = postgres(pg.adminUrl, { max: 1, onnotice: () => {} });
  const lsn = async () =>
    Number((await admin<Array<{ l: string }>>`SELECT pg_current_wal_lsn() - '0/0' AS l`)[0]?.l);
  let postmaster: number | undefined;
  for (const label of ["xid column and index", "xid column, no index", "no xid column"]) {
    const url = await pg.newDatabase();
    const sql = postgres(url, { max: 1, onnotice: () => {} });
    await openStore(url).then((s) => s.close());
    if (label === "no xid column") await sql`ALTER TABLE usage_events DROP COLUMN xid`;
    if (label === "xid column, no index") await sql`DROP INDEX usage_events_xid`;
    const [row] = await sql<Array<{ pid: number }>>`SELECT pg_backend_pid() AS pid`;
    try {
      const stat = readFileSync(`/proc/${row?.pid}/stat`, "utf8");
      postmaster = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
    } catch {
      postmaster = undefined;
    }
    await sql.end({ timeout: 1 });
    const store = await openStore(url);
    await store.defineBudget({ scope: "bottle", key: "fleet", provider: "p", tokens: 1e15 });
    const database = new URL(url).pathname.slice(1);
    dbs.push({ label, database, store, wall: 0, cpu: 0, backendCpu: 0, wal: 0, pairs: 0 });
  }
  const pairsPerRound = Number(process.env["BENCH_AB_PAIRS"] ?? 1_000);
  const rounds = Number(process.env["BENCH_AB_ROUNDS"] ?? 6);
  // round -1 warms every database's backends up and is not counted (without it the arm that
  // runs first measured 0.13-0.15 ms more server CPU per pair, whichever it was)
  for (let round = -1; round < rounds; round++) {
    for (const d of round % 2 === 0 ? dbs : [...dbs].reverse()) {
      const cpu0 = serverCpuMs(postmaster);
      const own0 = serverCpuMs(postmaster, d.database);
      const wal0 = await lsn();
      const t0 = performance.now();
      await Promise.all(
        Array.from({ length: 8 }, async (_, lane) => {
          for (let i = lane; i < pairsPerRound; i += 8) {
            const r = await d.store.reserve({
              bottle: `b${lane}`,
              parents: ["fleet"],
              agent: "a",
              provider: "p",
              estimateTokens: 100,
            });
            if (!r.ok) throw new Error(`refused: ${r.reason}`);
            await d.store.settle(r.id, { inputTokens: 60, outputTokens: 40, model: "m" });
          }
        }),
      );
      if (round < 0) continue;
      d.wall += performance.now() - t0;
      d.wal += (await lsn()) - wal0;
      d.cpu += (serverCpuMs(postmaster) ?? Number.NaN) - (cpu0 ?? Number.NaN);
      d.backendCpu += (serverCpuMs(postmaster, d.database) ?? Number.NaN) - (own0 ?? Number.NaN);
      d.pairs += pairsPerRound;
    }
  }
  for (const d of dbs) await d.store.close();
  await admin.end({ timeout: 1 });
  console.log(
    `postgres metering (what the xid column costs), 8 in flight, ${rounds} interleaved rounds of ${pairsPerRound} pairs: ${dbs
      .map(
        (d) =>
          `${d.label}: ${Math.round(d.pairs / (d.wall / 1000))} pairs/s, server CPU ${(d.cpu / d.pairs).toFixed(3)} ms (its backends ${(d.backendCpu / d.pairs).toFixed(3)} ms) and ${Math.round(d.wal / d.pairs)} WAL bytes per pair`,
      )
      .join("; ")}`,
  );
}
