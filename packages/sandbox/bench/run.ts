// @bottlekit/sandbox figures, in one run: /bin/true directly, in the sandbox without and with the
// startup probe, with a late setup settled at once (the whole start, to the agent's exit) and
// BENCH_LATE_MS after the start (a comma-separated list, default 120 as `bottle run`'s controller
// does, and 300, when the sandbox's own start is over by then; timed from the moment it settles to
// the agent's exit), and the seccomp filter build (fresh and cached). Each sandbox figure is taken
// with stage 1 under Perl (the default when the host has /usr/bin/perl) and under Node (the
// fallback), interleaved, so the pairs come from one run. Compare the ratios, not absolute times
// across runs.
// Usage: pnpm --filter @bottlekit/sandbox bench [iterations]
import { spawn } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import {
  buildSeccompFilter,
  inspectHost,
  type LateSetup,
  seccompFilter,
  startSandbox,
} from "../src/index.ts";

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

// A stand-in for the controller: a proxy socket refusing every request, and a bottle CA.
const LATE_MS = (process.env["BENCH_LATE_MS"] ?? "0,120,300").split(",").map(Number);
const lateDir = fs.mkdtempSync("/var/tmp/sandbox-bench-late-");
const proxySocketPath = path.join(lateDir, "proxy.sock");
const caCertPath = path.join(lateDir, "ca.pem");
fs.writeFileSync(caCertPath, "-----BEGIN CERTIFICATE-----\nbench\n-----END CERTIFICATE-----\n");
const proxy = net.createServer((s) => {
  s.once("data", () => s.end("HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\n\r\n"));
  s.on("error", () => {});
});
await new Promise<void>((resolve) => proxy.listen(proxySocketPath, resolve));

// "before": stage 1 under Node, as every run had it until the Perl launcher.
const nodeHost = { ...host, perl: undefined };
const old = host.perl !== undefined;
const a: number[] = [];
const b: number[] = [];
const c: number[] = [];
const l = LATE_MS.map(() => [] as number[]);
const ob: number[] = [];
const oc: number[] = [];
const ol = LATE_MS.map(() => [] as number[]);
const run =
  (start: typeof startSandbox, probe: boolean, h = host) =>
  () =>
    start({ command: ["/bin/true"], projectDir: project, probe }, { host: h, stdio: "pipe" })
      .exited;
/** Milliseconds from the late setup settling (`ms` after the start) to the agent's exit. */
const runLate = async (start: typeof startSandbox, ms: number, h = host): Promise<number> => {
  let settled = 0;
  const late = new Promise<LateSetup>((resolve) =>
    setTimeout(() => {
      settled = performance.now();
      resolve({ proxySocketPath, caCertPath, env: { PLACEHOLDER: "bottlekit:resolve:env:KEY" } });
    }, ms),
  );
  const exit = await start(
    { command: ["/bin/true"], projectDir: project },
    { host: h, stdio: "pipe", late },
  ).exited;
  if (exit.code !== 0) throw new Error(`late run exited ${exit.code}`);
  return performance.now() - settled;
};
await run(startSandbox, true)();
await runLate(startSandbox, 0);
if (old) {
  await run(startSandbox, true, nodeHost)();
  await runLate(startSandbox, 0, nodeHost);
}
try {
  for (let i = 0; i < N; i++) {
    a.push(await time(direct));
    b.push(await time(run(startSandbox, false)));
    c.push(await time(run(startSandbox, true)));
    for (const [j, ms] of LATE_MS.entries()) l[j]?.push(await runLate(startSandbox, ms));
    if (old) {
      ob.push(await time(run(startSandbox, false, nodeHost)));
      oc.push(await time(run(startSandbox, true, nodeHost)));
      for (const [j, ms] of LATE_MS.entries())
        ol[j]?.push(await runLate(startSandbox, ms, nodeHost));
    }
  }
} finally {
  proxy.close();
  fs.rmSync(lateDir, { recursive: true, force: true });
}
let t0 = performance.now();
for (let i = 0; i < 1000; i++) buildSeccompFilter();
const filterUs = ((performance.now() - t0) / 1000) * 1000;
t0 = performance.now();
for (let i = 0; i < 1000; i++) seccompFilter();
const cachedUs = ((performance.now() - t0) / 1000) * 1000;

const d = median(a);
const row = (label: string, xs: number[]) =>
  console.log(
    `  ${label.padEnd(40)} ${median(xs).toFixed(1).padStart(7)} ms  (+${(median(xs) - d).toFixed(1)} ms)`,
  );
console.log(
  `cpus ${os.cpus().length}, load ${os
    .loadavg()
    .map((l) => l.toFixed(2))
    .join(" ")}, root: ${host.account.drop}, ${N} iterations, medians:`,
);
console.log(`  ${"/bin/true directly".padEnd(40)} ${d.toFixed(1).padStart(7)} ms`);
if (old) row("node:   sandbox, no probe", ob);
row("perl:   sandbox, no probe", b);
if (old) row("node:   sandbox + probe", oc);
row("perl:   sandbox + probe", c);
const lateRow = (label: string, xs: number[]) =>
  console.log(`  ${label.padEnd(40)} ${median(xs).toFixed(1).padStart(7)} ms`);
for (const [j, ms] of LATE_MS.entries()) {
  const now = l[j] ?? [];
  const then = ol[j] ?? [];
  if (old) lateRow(`node:   late +${ms} ms, settled → exit`, then);
  lateRow(`perl:   late +${ms} ms, settled → exit`, now);
  if (old)
    console.log(`  ${"  ratio perl/node".padEnd(40)} ${(median(now) / median(then)).toFixed(2)}x`);
}
console.log(
  `  seccomp filter: build ${filterUs.toFixed(1)} µs, cached ${cachedUs.toFixed(2)} µs (${seccompFilter().byteLength} bytes)`,
);
fs.rmSync(project, { recursive: true, force: true });
