/**
 * Figures for @bottlekit/manifest: validating a tree of N manifests (the `bottle validate` path),
 * and resolving one agent with provenance. Compare the ratios printed in one run.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { writeManifestTree } from "@bottlekit/test-utils";
import { explainAgent, resolveAgent, validatePaths } from "../src/index.ts";

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? 0;
}

const rows: string[] = [];
let base = 0;
for (const count of [200, 400, 800]) {
  const root = mkdtempSync(join(tmpdir(), "bk-bench-"));
  const home = join(root, "home");
  const names = writeManifestTree(home, count);
  const loc = { home, cwd: root, env: {} };
  const times: number[] = [];
  for (let i = 0; i < 5; i++) {
    const t0 = performance.now();
    const r = validatePaths([], loc);
    times.push(performance.now() - t0);
    if (!r.ok) throw new Error("bench tree should be valid");
  }
  const ms = median(times);
  if (count === 200) base = ms;
  const resolveTimes: number[] = [];
  for (let i = 0; i < 20; i++) {
    const t0 = performance.now();
    resolveAgent(names[i % names.length] as string, loc);
    resolveTimes.push(performance.now() - t0);
  }
  const t0 = performance.now();
  explainAgent(names[names.length - 1] as string, loc);
  const explainMs = performance.now() - t0;
  rows.push(
    `validate ${String(count).padStart(4)} manifests: ${ms.toFixed(1).padStart(7)} ms  (x${(ms / base).toFixed(2)} of 200)   resolveAgent: ${median(resolveTimes).toFixed(2)} ms   explainAgent: ${explainMs.toFixed(2)} ms`,
  );
  rmSync(root, { recursive: true, force: true });
}
console.log("@bottlekit/manifest bench (median of runs, in-process, cold loader per run)");
for (const r of rows) console.log(r);
