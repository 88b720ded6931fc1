// @bottlekit/sandbox figures, in one run: /bin/true directly, in the sandbox without and with the
// startup probe, with a late setup settled BENCH_LATE_MS after the start (a comma-separated list,
// default 120 as `bottle run`'s controller does, and 300, when the sandbox's own start is over by
// then; timed from the moment it settles to the agent's exit), and the
// seccomp filter build (fresh and cached). With git history available it also runs the sandbox as
// it was at BENCH_BEFORE (default d1d5f3a: stage 2 started only once a late setup arrived),
// interleaved, so the before/after pairs come from one run. Compare the ratios, not absolute times
// across runs.
// Usage: pnpm --filter @bottlekit/sandbox bench [iterations]
import { execFileSync, spawn } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
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

/** The library's source at `rev`, written next to this package so its imports resolve. */
async function before(
  rev: string,
): Promise<{ start: typeof startSandbox; dir: string } | undefined> {
  const pkg = path.join(path.dirname(fileURLToPath(import.meta.url)), "..");
  const dir = path.join(pkg, `.bench-before-${rev}`);
  try {
    const files = execFileSync(
      "git",
      ["ls-tree", "--full-tree", "--name-only", rev, "packages/sandbox/src/"],
      {
        cwd: pkg,
        encoding: "utf8",
      },
    )
      .split("\n")
      .filter((f) => f.endsWith(".ts") && !f.endsWith(".test.ts"));
    fs.mkdirSync(path.join(dir, "src"), { recursive: true });
    for (const f of files) {
      fs.writeFileSync(
        path.join(dir, "src", path.basename(f)),
        execFileSync("git", ["show", `${rev}:${f}`], { cwd: pkg }),
      );
    }
    const mod = (await import(path.join(dir, "src", "index.ts"))) as {
      startSandbox: typeof startSandbox;
    };
    return { start: mod.startSandbox, dir };
  } catch (error) {
    fs.rmSync(dir, { recursive: true, force: true });
    console.error(`(no before figures: ${(error as Error).message.split("\n")[0]})`);
    return undefined;
  }
}

// A stand-in for the controller: a proxy socket refusing every request, and a bottle CA.
const LATE_MS = (process.env["BENCH_LATE_MS"] ?? "120,300").split(",").map(Number);
const lateDir = fs.mkdtempSync("/var/tmp/sandbox-bench-late-");
const proxySocketPath = path.join(lateDir, "proxy.sock");
const caCertPath = path.join(lateDir, "ca.pem");
fs.writeFileSync(caCertPath, "-----BEGIN CERTIFICATE-----\nbench\n-----END CERTIFICATE-----\n");
const proxy = net.createServer((s) => {
  s.once("data", () => s.end("HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\n\r\n"));
  s.on("error", () => {});
});
await new Promise<void>((resolve) => proxy.listen(proxySocketPath, resolve));

const old = await before(process.env["BENCH_BEFORE"] ?? "d1d5f3a");
const a: number[] = [];
const b: number[] = [];
const c: number[] = [];
const l = LATE_MS.map(() => [] as number[]);
const ob: number[] = [];
const oc: number[] = [];
const ol = LATE_MS.map(() => [] as number[]);
const run = (start: typeof startSandbox, probe: boolean) => () =>
  start({ command: ["/bin/true"], projectDir: project, probe }, { host, stdio: "pipe" }).exited;
/** Milliseconds from the late setup settling (`ms` after the start) to the agent's exit. */
const runLate = async (start: typeof startSandbox, ms: number): Promise<number> => {
  let settled = 0;
  const late = new Promise<LateSetup>((resolve) =>
    setTimeout(() => {
      settled = performance.now();
      resolve({ proxySocketPath, caCertPath, env: { PLACEHOLDER: "bottlekit:resolve:env:KEY" } });
    }, ms),
  );
  const exit = await start(
    { command: ["/bin/true"], projectDir: project },
    { host, stdio: "pipe", late },
  ).exited;
  if (exit.code !== 0) throw new Error(`late run exited ${exit.code}`);
  return performance.now() - settled;
};
await run(startSandbox, true)();
await runLate(startSandbox, 0);
if (old) {
  await run(old.start, true)();
  await runLate(old.start, 0);
}
try {
  for (let i = 0; i < N; i++) {
    a.push(await time(direct));
    b.push(await time(run(startSandbox, false)));
    c.push(await time(run(startSandbox, true)));
    for (const [j, ms] of LATE_MS.entries()) l[j]?.push(await runLate(startSandbox, ms));
    if (old) {
      ob.push(await time(run(old.start, false)));
      oc.push(await time(run(old.start, true)));
      for (const [j, ms] of LATE_MS.entries()) ol[j]?.push(await runLate(old.start, ms));
    }
  }
} finally {
  if (old) fs.rmSync(old.dir, { recursive: true, force: true });
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
if (old) row("before: sandbox, no probe", ob);
row("now:    sandbox, no probe", b);
if (old) row("before: sandbox + probe", oc);
row("now:    sandbox + probe", c);
const lateRow = (label: string, xs: number[]) =>
  console.log(`  ${label.padEnd(40)} ${median(xs).toFixed(1).padStart(7)} ms`);
for (const [j, ms] of LATE_MS.entries()) {
  const now = l[j] ?? [];
  const then = ol[j] ?? [];
  if (old) lateRow(`before: late +${ms} ms, settled → exit`, then);
  lateRow(`now:    late +${ms} ms, settled → exit`, now);
  if (old)
    console.log(`  ${"  ratio now/before".padEnd(40)} ${(median(now) / median(then)).toFixed(2)}x`);
}
console.log(
  `  seccomp filter: build ${filterUs.toFixed(1)} µs, cached ${cachedUs.toFixed(2)} µs (${seccompFilter().byteLength} bytes)`,
);
fs.rmSync(project, { recursive: true, force: true });
