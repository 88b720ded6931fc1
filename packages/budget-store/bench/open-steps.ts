/**
 * One `bottle run` controller start against an existing store, step by step: what
 * apps/gateway/src/compose.ts and apps/bottle/src/run/execute.ts call, in their order. Prints one
 * JSON line of { step: [ms, minor page faults] } to stdout. Run it bundled, in a fresh process per
 * sample (first-load cost is the point): see bench/open.ts.
 * Usage: node open-steps.cjs <store.db> [home]
 */
import { openStore } from "../src/index.ts";

const file = process.argv[2];
if (file === undefined) throw new Error("usage: open-steps <store.db> [home]");
const home = process.argv[3] ?? process.cwd();
const steps: Record<string, [number, number]> = {};
let t = performance.now();
let f = process.resourceUsage().minorPageFault;
function mark(step: string): void {
  const t1 = performance.now();
  const f1 = process.resourceUsage().minorPageFault;
  steps[step] = [t1 - t, f1 - f];
  t = t1;
  f = f1;
}

async function main(): Promise<void> {
  const store = await openStore(`sqlite:${file}`, {
    home,
    groupCommitMs: 0,
    walAutocheckpointPages: 4000,
  });
  mark("open");
  await store.replaceBudgets("manifest", []);
  mark("manifest");
  const sub = store.onCutoff(() => {});
  await sub.ready;
  mark("onCutoff");
  const state = await store.cutoffState("bench-bottle");
  mark("cutoffState");
  if (state !== undefined) throw new Error("the bench bottle is cut off");
  await store.defineBudget({
    scope: "bottle",
    key: "bench-bottle",
    provider: "anthropic",
    tokens: 1_000_000,
    source: "flag",
    policy: "cutoff",
  });
  mark("defineBudget");
  await sub.close();
  await store.close();
  mark("close");
  process.stdout.write(`${JSON.stringify(steps)}\n`);
}

// No top-level await: the bench is bundled as CommonJS, as the bin is.
void main();
