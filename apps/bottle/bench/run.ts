/**
 * Figures for the bottle CLI: wall time of `bottle validate` (the built bin, a fresh process each
 * time, as CI runs it) on trees of 200 and 400 manifests, plus `bottle --help` start-up.
 * Needs dist/ (the turbo bench task builds first).
 * Then bench/startup.ts: the start-up of `bottle run -- /bin/true`, by phase, against its target.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { writeManifestTree } from "@bottlekit/test-utils";

const bin = join(dirname(fileURLToPath(import.meta.url)), "..", "bin", "bottle.js");

function timeRun(args: string[], runs = 5): number {
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    execFileSync(process.execPath, [bin, ...args], { stdio: "ignore", env: { NO_COLOR: "1" } });
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)] ?? 0;
}

const root = mkdtempSync(join(tmpdir(), "bk-bottle-bench-"));
try {
  console.log("bottle CLI bench (median wall time of 5 fresh processes)");
  console.log(`bottle --help:                 ${timeRun(["--help"]).toFixed(0)} ms`);
  for (const n of [200, 400]) {
    const home = join(root, `home-${n}`);
    writeManifestTree(home, n);
    const ms = timeRun(["validate", "--home", home, "--cwd", root]);
    console.log(
      `bottle validate ${n} manifests: ${ms.toFixed(0)} ms${n === 200 ? "  (target < 1000 ms)" : ""}`,
    );
  }
} finally {
  rmSync(root, { recursive: true, force: true });
}

// Then where `bottle run -- /bin/true` spends its start-up (issue 15: under 300 ms added).
console.log("");
await import("./startup.ts");
