// bottle run overhead: `bottle run -- /bin/true` (controller session, sandbox, probe included)
// against `/bin/true` run directly, in one run, plus the reaction time of a kill cutoff.
// Usage: pnpm --filter @bottlekit/bottle exec tsx --conditions=@bottlekit/source bench/sandbox.ts [iterations]
import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { Writable } from "node:stream";
import { openStore } from "@bottlekit/budget-store";
import { inspectHost, startSandbox } from "@bottlekit/sandbox";
import type { CliIo } from "../src/cli.ts";
import { executeRun } from "../src/run/execute.ts";
import { listSessions } from "../src/run/sessions.ts";

const N = Number(process.argv[2] ?? 10);
const home = fs.mkdtempSync(path.join(os.tmpdir(), "bottle-bench-home-"));
const project = fs.mkdtempSync("/var/tmp/bottle-bench-project-");
const host = inspectHost({});
if (host.account.drop) fs.chownSync(project, host.account.uid, host.account.gid);

const sink = new Writable({ write: (_c, _e, cb) => cb() });
const io: CliIo = {
  stdout: sink,
  stderr: sink,
  env: { PATH: process.env["PATH"] ?? "/usr/bin:/bin" },
};

function spawnTrue(): Promise<void> {
  return new Promise((resolve, reject) => {
    const c = spawn("/bin/true", [], { stdio: "ignore" });
    c.on("exit", () => resolve());
    c.on("error", reject);
  });
}

async function time(fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? Number.NaN;
};

const direct: number[] = [];
const sandboxOnly: number[] = [];
const sandboxProbe: number[] = [];
const full: number[] = [];
// Warm-up (page cache, JIT, account lookup).
await executeRun(undefined, ["/bin/true"], { home, cwd: project }, io);
for (let i = 0; i < N; i++) {
  direct.push(await time(spawnTrue));
  sandboxOnly.push(
    await time(
      () =>
        startSandbox(
          { command: ["/bin/true"], projectDir: project, probe: false },
          { host, stdio: "pipe" },
        ).exited,
    ),
  );
  sandboxProbe.push(
    await time(
      () =>
        startSandbox({ command: ["/bin/true"], projectDir: project }, { host, stdio: "pipe" })
          .exited,
    ),
  );
  full.push(
    await time(async () => {
      const r = await executeRun(undefined, ["/bin/true"], { home, cwd: project }, io);
      if (r.code !== 0) throw new Error(`bottle run exited ${r.code}`);
    }),
  );
}

// Reaction time of a kill cutoff written to the store (polled every 250 ms).
const reactions: number[] = [];
for (let i = 0; i < Math.min(N, 5); i++) {
  const running = executeRun(undefined, ["/bin/sleep", "60"], { home, cwd: project }, io);
  while (listSessions(home).length === 0) await new Promise((r) => setTimeout(r, 20));
  await new Promise((r) => setTimeout(r, 300));
  const store = await openStore(undefined, { home });
  const t0 = performance.now();
  await store.cutOff("default", { policy: "kill", by: "bench", reason: "bench" });
  await running;
  reactions.push(performance.now() - t0);
  await store.restore("default", { by: "bench", reason: "bench" });
  await store.close();
}

const d = median(direct);
console.log(
  `cpus ${os.cpus().length}, load ${os
    .loadavg()
    .map((l) => l.toFixed(2))
    .join(" ")}, ${N} iterations, medians:`,
);
console.log(`  /bin/true directly                       ${d.toFixed(1)} ms`);
console.log(
  `  sandbox, no probe                        ${median(sandboxOnly).toFixed(1)} ms  (+${(median(sandboxOnly) - d).toFixed(1)} ms)`,
);
console.log(
  `  sandbox + probe                          ${median(sandboxProbe).toFixed(1)} ms  (+${(median(sandboxProbe) - d).toFixed(1)} ms)`,
);
console.log(
  `  bottle run -- /bin/true (in-process)     ${median(full).toFixed(1)} ms  (+${(median(full) - d).toFixed(1)} ms added; target < 300 ms)`,
);
console.log(
  `  kill cutoff -> tree gone                 ${median(reactions).toFixed(1)} ms  (max ${Math.max(...reactions).toFixed(1)} ms; bound 1000 ms)`,
);
fs.rmSync(home, { recursive: true, force: true });
fs.rmSync(project, { recursive: true, force: true });
