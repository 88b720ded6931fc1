#!/usr/bin/env node
// Keeps every core busy (one worker thread per core, each spinning on integer and allocation
// work) until it is killed or its time is up: the load issue 23 runs CI under.
//
//   node scripts/stress.mjs [--workers N] [--seconds S]
//   node scripts/stress.mjs --ci [RUNS]   CI=true bash .ci/run in a fresh clone of HEAD, RUNS times
//                                         in a row (default 3), under that load; stops at the
//                                         first failure (and keeps that clone).
import { spawn, spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdtempSync, rmSync, symlinkSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { isMainThread, Worker } from "node:worker_threads";

if (!isMainThread) {
  // Each worker burns its core: a mix of arithmetic and short-lived allocations, so the garbage
  // collector works too (as it does in the test processes competing for the same cores).
  let x = 0;
  for (;;) {
    for (let i = 0; i < 1e6; i++) x = (x * 1103515245 + 12345) | 0;
    const junk = new Array(1000).fill(x);
    x ^= junk.length;
  }
}

const args = process.argv.slice(2);
const flag = (name, fallback) => {
  const i = args.indexOf(name);
  return i >= 0 && args[i + 1] !== undefined ? Number(args[i + 1]) : fallback;
};
const workers = flag("--workers", os.availableParallelism());
if (!Number.isInteger(workers) || workers < 1) {
  console.error("stress: --workers takes a positive integer");
  process.exit(2);
}

const threads = [];
for (let i = 0; i < workers; i++) threads.push(new Worker(fileURLToPath(import.meta.url)));
console.error(`stress: ${workers} busy worker(s) started (pid ${process.pid})`);
const stop = (code) => {
  for (const t of threads) t.terminate();
  process.exit(code);
};
process.on("SIGINT", () => stop(130));
process.on("SIGTERM", () => stop(143));

const ci = args.indexOf("--ci");
if (ci >= 0) {
  const runs = Number(args[ci + 1] ?? 3) || 3;
  const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
  for (let n = 1; n <= runs; n++) {
    // Each run is a fresh clone of the committed HEAD (no turbo cache, no build output), with the
    // shared reference data beside it as in the checkout.
    const dir = mkdtempSync(path.join(os.tmpdir(), `bottlekit-stress-ci-${n}-`));
    // Searchable by others, as a checkout is: as root, the test Postgres server and the sandboxed
    // agents run as unprivileged accounts that must reach the clone's binaries.
    chmodSync(dir, 0o755);
    const clone = path.join(dir, "main");
    const git = spawnSync("git", ["clone", "-q", root, clone], { stdio: "inherit" });
    if (git.status !== 0) stop(1);
    const head = spawnSync("git", ["-C", clone, "rev-parse", "--short", "HEAD"], {
      encoding: "utf8",
    });
    console.error(`stress: CI run ${n}/${runs} of ${head.stdout.trim()} in ${clone}`);
    const shared = path.join(root, "..", "shared");
    if (existsSync(shared)) symlinkSync(shared, path.join(dir, "shared"));
    const t0 = Date.now();
    // The workers keep spinning on their own threads while this one waits for CI.
    const code = await new Promise((resolve) => {
      const child = spawn("bash", [".ci/run"], {
        cwd: clone,
        stdio: "inherit",
        env: { ...process.env, CI: "true" },
      });
      child.on("close", (c) => resolve(c ?? 1));
    });
    const min = ((Date.now() - t0) / 60000).toFixed(1);
    console.error(
      `stress: CI run ${n}/${runs} in ${clone} ${code === 0 ? "passed" : `FAILED (exit ${code})`} in ${min} min under load`,
    );
    if (code !== 0) stop(1);
    rmSync(dir, { recursive: true, force: true });
  }
  stop(0);
} else {
  const seconds = flag("--seconds", 0);
  if (seconds > 0) setTimeout(() => stop(0), seconds * 1000);
}
