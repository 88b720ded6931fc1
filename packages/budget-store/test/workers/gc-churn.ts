/**
 * Regression worker for the Node >= 24.19 abort (run with `node --expose-gc`; see test/gc.test.ts).
 *
 * With better-sqlite3 12 on Node >= 24.19, a better-sqlite3 Statement or Database that the GC
 * finalizes while no JS context is entered (e.g. a scavenge inside the microtask checkpoint that
 * continues top-level module evaluation, which is where a long chain of awaits runs) aborts the
 * process: `Assertion failed: (env) != nullptr` in node::RemoveEnvironmentCleanupHook from
 * ~Statement. The store must never let such an object become garbage.
 *
 * Phase 1 (what reproduces the abort): every kind of store call, including the reports whose SQL
 * is built from filters and whole stores opened and closed, as one chain of awaits that never
 * returns to the event loop, with allocation pressure so that V8's own scavenges land inside it.
 * No forced GC there: gc() runs with a context entered and would quietly collect the garbage at a
 * harmless point, hiding the bug.
 * Phase 2: the same calls from the event loop while timers and microtasks force full GCs.
 *
 * argv: <db path> <rounds>. Prints "ok <events in the file database>" at the end.
 */
import { openStore } from "../../src/index.ts";
import type { Store, UsageQuery } from "../../src/types.ts";

const [dbPath, roundsArg = "200"] = process.argv.slice(2);
const rounds = Number(roundsArg);
const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) throw new Error("run with node --expose-gc");
const collect: () => void = gc;

const queries: UsageQuery[] = [
  {},
  { bottle: "web" },
  { bottle: "fleet", includeChildren: true },
  { agent: "a1", provider: "p" },
  { model: "m", since: 0 },
  { provider: "p", until: Date.now() + 60_000, groupBy: ["agent", "provider"] },
  { groupBy: ["model"] },
  { bottle: "web", since: 1, groupBy: ["provider", "agent", "bottle"] },
];

let sink = 0;
/** Short-lived garbage, so that scavenges happen often. */
function churnHeap(n: number): void {
  const junk = Array.from({ length: n }, (_, i) => ({ i, s: `x${i}` }));
  sink += junk.length;
}

async function churn(store: Store, round: number, pause: () => Promise<void>): Promise<void> {
  await store.defineBudget({ scope: "bottle", key: "fleet", provider: "p", tokens: 1e12 });
  await store.defineBudget({
    scope: "agent",
    key: `a${round % 3}`,
    provider: "p",
    tokens: 1e12,
    window: "daily",
    source: round % 2 === 0 ? "settings" : "flag",
  });
  await pause();
  for (let i = 0; i < 5; i++) {
    const subject = {
      bottle: i % 2 === 0 ? "web" : "api",
      parents: i % 3 === 0 ? ["fleet", "org"] : ["fleet"],
      agent: `a${i % 3}`,
      provider: "p",
    };
    const r = await store.reserve({ ...subject, estimateTokens: 10 });
    if (!r.ok) throw new Error(`refused: ${r.reason}`);
    churnHeap(500);
    await pause();
    await store.settle(r.id, { inputTokens: 7, outputTokens: 2, model: i % 2 ? "m" : "n" });
    await store.remaining(subject);
  }
  const q = queries[round % queries.length] as UsageQuery;
  await store.usage(q);
  await pause();
  const { groupBy: _, ...filter } = q;
  await store.events({ ...filter, limit: 5 });
  await store.listBudgets(round % 2 === 0 ? {} : { scope: "agent", provider: "p" });
  await store.removeBudgets({ scope: "agent", key: `a${round % 3}`, source: "flag" });
  await store.actions({ bottle: "web" });
  await store.isCutOff("web");
}

async function extraStores(round: number, pause: () => Promise<void>): Promise<void> {
  // Whole stores opened and dropped: their Database objects become unreachable.
  const extra = await openStore(`sqlite:${dbPath}`);
  await extra.usage({ bottle: "web", groupBy: ["agent"] });
  await extra.close();
  const mem = await openStore("sqlite::memory:");
  await churn(mem, round, pause);
  await mem.close();
}

const main = await openStore(`sqlite:${dbPath}`);

// Phase 1: one chain of awaits from top-level evaluation, natural GCs only.
const noPause = async (): Promise<void> => {};
for (let round = 0; round < rounds; round++) {
  await churn(main, round, noPause);
  if (round % 25 === 24) await extraStores(round, noPause);
}

// Phase 2: from the event loop, forced full GCs from a timer and from microtasks.
let ticks = 0;
const fromTimer = setInterval(() => {
  ticks++;
  collect();
}, 2);
const gcInMicrotask = (): Promise<void> =>
  new Promise((resolve) =>
    queueMicrotask(() => {
      collect();
      resolve();
    }),
  );
for (let round = 0; round < 6; round++) {
  await new Promise((resolve) => setTimeout(resolve, 3));
  await churn(main, round, gcInMicrotask);
  if (round % 3 === 2) await extraStores(round, gcInMicrotask);
}
const { totals } = await main.usage();
await main.close();
await new Promise((resolve) => setTimeout(resolve, 10));
clearInterval(fromTimer);
collect();
if (ticks === 0 || sink === 0) throw new Error("the GC timer never fired");
process.stdout.write(`ok ${totals.events}\n`);
