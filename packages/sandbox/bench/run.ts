// @bottlekit/sandbox figures, in one run: /bin/true directly, in the sandbox without and with the
// startup probe, and the seccomp filter build. Compare the ratios, not absolute times across runs.
// Usage: pnpm --filter @bottlekit/sandbox bench [iterations]
import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import { buildSeccompFilter, inspectHost, startSandbox } from "../src/index.ts";

const N = Number(process.argv[2] ?? 10);
const host = inspectHost({});
const project = fs.mkdtempSync("/var/tmp/sandbox-bench-");
if (host.account.drop) fs.chownSync(project, host.account.uid, host.account.gid);

async function time(fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}
const median = (xs: number[]) =>
  [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN;
const direct = () =>
  new Promise<void>((resolve, reject) => {
    const c = spawn("/bin/true", [], { stdio: "ignore" });
    c.on("exit", () => resolve());
    c.on("error", reject);
  });

const a: number[] = [];
const b: number[] = [];
const c: number[] = [];
await startSandbox({ command: ["/bin/true"], projectDir: project }, { host, stdio: "pipe" }).exited;
for (let i = 0; i < N; i++) {
  a.push(await time(direct));
  b.push(
    await time(
      () =>
        startSandbox(
          { command: ["/bin/true"], projectDir: project, probe: false },
          { host, stdio: "pipe" },
        ).exited,
    ),
  );
  c.push(
    await time(
      () =>
        startSandbox({ command: ["/bin/true"], projectDir: project }, { host, stdio: "pipe" })
          .exited,
    ),
  );
}
const t0 = performance.now();
for (let i = 0; i < 1000; i++) buildSeccompFilter();
const filterUs = ((performance.now() - t0) / 1000) * 1000;

console.log(
  `cpus ${os.cpus().length}, load ${os
    .loadavg()
    .map((l) => l.toFixed(2))
    .join(" ")}, root: ${host.account.drop}, ${N} iterations, medians:`,
);
console.log(`  /bin/true directly          ${median(a).toFixed(1)} ms`);
console.log(
  `  sandbox (two bwrap stages)  ${median(b).toFixed(1)} ms  (+${(median(b) - median(a)).toFixed(1)} ms)`,
);
console.log(
  `  sandbox + startup probe     ${median(c).toFixed(1)} ms  (+${(median(c) - median(a)).toFixed(1)} ms)`,
);
console.log(
  `  seccomp filter build        ${filterUs.toFixed(1)} µs (${buildSeccompFilter().byteLength} bytes)`,
);
fs.rmSync(project, { recursive: true, force: true });
