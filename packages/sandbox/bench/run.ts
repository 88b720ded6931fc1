// @bottlekit/sandbox figures, in one run: /bin/true directly, in the sandbox without and with the
// startup probe, and the seccomp filter build (fresh and cached). With git history available it
// also runs the sandbox as it was at BENCH_BEFORE (default d1dccd1: the probe as a second Node
// process in stage 2, the filter rebuilt every start), so the before/after pair comes from one
// run. Compare the ratios, not absolute times across runs.
// Usage: pnpm --filter @bottlekit/sandbox bench [iterations]
import { execFileSync, spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { buildSeccompFilter, inspectHost, seccompFilter, startSandbox } from "../src/index.ts";

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

const old = await before(process.env["BENCH_BEFORE"] ?? "d1dccd1");
const a: number[] = [];
const b: number[] = [];
const c: number[] = [];
const ob: number[] = [];
const oc: number[] = [];
const run = (start: typeof startSandbox, probe: boolean) => () =>
  start({ command: ["/bin/true"], projectDir: project, probe }, { host, stdio: "pipe" }).exited;
await run(startSandbox, true)();
if (old) await run(old.start, true)();
try {
  for (let i = 0; i < N; i++) {
    a.push(await time(direct));
    b.push(await time(run(startSandbox, false)));
    c.push(await time(run(startSandbox, true)));
    if (old) {
      ob.push(await time(run(old.start, false)));
      oc.push(await time(run(old.start, true)));
    }
  }
} finally {
  if (old) fs.rmSync(old.dir, { recursive: true, force: true });
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
if (old) row("before: sandbox + probe (2nd Node in stage 2)", oc);
row("now:    sandbox + probe (in the launcher + gate)", c);
console.log(
  `  seccomp filter: build ${filterUs.toFixed(1)} µs, cached ${cachedUs.toFixed(2)} µs (${seccompFilter().byteLength} bytes)`,
);
fs.rmSync(project, { recursive: true, force: true });
