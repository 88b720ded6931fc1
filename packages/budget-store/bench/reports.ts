/**
 * Report figures on a big ledger: 1,000,000 usage events over 7 days, 100 bottles (10 parent
 * teams), 3 agents, 2 providers, 4 models. Prints the time of `bottle usage --by bottle,provider`
 * (since 24 h and all time) and of one dashboard refresh (usage by bottle today, every budget's
 * status, burn rate per bottle over 15 minutes, the latest 20 audit entries), medians of 15 runs.
 * Targets: usage report < 100 ms, dashboard refresh < 50 ms.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openConnection } from "../src/connection.ts";
import { openStore } from "../src/index.ts";

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

async function time(fn: () => Promise<unknown>, runs = 15): Promise<number> {
  const out: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    await fn();
    out.push(performance.now() - t0);
  }
  return median(out);
}

try {
  // The schema, then the ledger written in bulk (a settle-by-settle fill would take minutes);
  // the schema's triggers add each event to the report rollups as a settle's insert does.
  const init = await openStore(`sqlite:${file}`);
  for (let b = 0; b < 100; b++) {
    await init.defineBudget({
      scope: "bottle",
      key: `bottle-${b}`,
      provider: "anthropic",
      tokens: 5_000_000,
      window: "daily",
      source: b % 2 === 0 ? "operator" : "config",
    });
  }
  await init.defineBudget({ scope: "global", provider: "anthropic", tokens: 1e12 });
  await init.defineBudget({ scope: "ceiling", provider: "openai", tokens: 1e12, usd: 1e6 });
  for (let i = 0; i < 50; i++)
    await init.cutOff(`bottle-${i % 100}`, { by: "ops", reason: "bench" });
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
  const day = await time(() => store.usage({ groupBy: ["bottle", "provider"], since: now - DAY }));
  const week = await time(() => store.usage({ groupBy: ["bottle", "provider"] }));
  const byModel = await time(() =>
    store.usage({ groupBy: ["bottle", "agent", "provider", "model"], since: now - 7 * DAY }),
  );
  console.log(
    `usage --by bottle,provider --since 24h: ${day.toFixed(1)} ms; all time: ${week.toFixed(1)} ms; by bottle,agent,provider,model over 7d: ${byModel.toFixed(1)} ms (target < 100 ms)`,
  );
  // The figures are exact: the all-time report against a full scan of the ledger.
  const report = await store.usage({ groupBy: ["bottle", "provider"] });
  const check = openConnection(file);
  const scan = check
    .prepare("SELECT count(*) AS events, sum(tokens) AS tokens FROM usage_events")
    .get() as { events: number; tokens: number };
  check.close();
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
  const refresh = await time(async () => {
    await store.usage({ groupBy: ["bottle"], since: todayStart });
    await store.budgetStatus();
    await store.burnRate({ minutes: 15, byBottle: true });
    await store.actions({ limit: 20 });
  });
  console.log(
    `dashboard refresh (usage today, budget status, burn rate, audit): ${refresh.toFixed(1)} ms (target < 50 ms)`,
  );
  // A settle between refreshes: the next report folds one event.
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
  console.log(`usage by bottle today right after a settle: ${afterSettle.toFixed(1)} ms`);
  await store.close();
} finally {
  if (keep === undefined) rmSync(dir, { recursive: true, force: true });
}
