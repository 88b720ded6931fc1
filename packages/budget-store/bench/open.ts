/**
 * The store's part of `bottle run`'s start-up: opening an existing, current store and the first
 * calls the embedded controller makes (bench/open-steps.ts), in a fresh process per sample,
 * bundled as the bin bundles it. Given several bundles (e.g. the old code's and the new), runs
 * them interleaved on the same database and prints the median ms and page faults per step.
 *
 *   esbuild bench/open-steps.ts --bundle --platform=node --format=cjs --minify \
 *     --conditions=@bottlekit/source --external:better-sqlite3 \
 *     --define:import.meta.url='"file://'$PWD'/src/connection.ts"' --outfile=/tmp/x/new.cjs
 *   tsx bench/open.ts 21 /tmp/x/old.cjs /tmp/x/new.cjs
 *
 * (esbuild is tsup's; import.meta.url stands for this package's file, as the bin maps it, so
 * better-sqlite3 is found from here.)
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";

const [runsText, ...bundles] = process.argv.slice(2);
const runs = Number(runsText);
if (!Number.isInteger(runs) || runs < 1 || bundles.length === 0) {
  throw new Error("usage: open.ts <runs> <bundle.cjs>...");
}
const dir = mkdtempSync(join(tmpdir(), "budget-store-open-"));
const db = join(dir, "bottlekit.db");
const run = (bundle: string): Record<string, [number, number]> =>
  JSON.parse(execFileSync(process.execPath, [bundle, db, dir], { encoding: "utf8" }));

// The first run creates the store; a few more make it a store a home has used.
for (let i = 0; i < 3; i++) run(bundles[0] as string);
const samples = bundles.map(() => [] as Record<string, [number, number]>[]);
for (let i = 0; i < runs; i++) {
  for (const [j, b] of bundles.entries()) samples[j]?.push(run(b));
}
rmSync(dir, { recursive: true, force: true });

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? 0;
};
console.log(`runs ${runs}, load ${loadavg()[0]?.toFixed(2)}`);
bundles.forEach((b, j) => {
  const got = samples[j] ?? [];
  const steps = Object.keys(got[0] ?? {});
  const cells = steps.map((s) => {
    const ms = median(got.map((r) => r[s]?.[0] ?? 0));
    const pf = median(got.map((r) => r[s]?.[1] ?? 0));
    return `${s} ${ms.toFixed(1)} ms / ${pf}`;
  });
  const total = median(got.map((r) => steps.reduce((a, s) => a + (r[s]?.[0] ?? 0), 0)));
  const faults = median(got.map((r) => steps.reduce((a, s) => a + (r[s]?.[1] ?? 0), 0)));
  console.log(`${b}: ${cells.join(", ")}; total ${total.toFixed(1)} ms / ${faults}`);
});
