/**
 * Start-up cost of the library in a fresh Node process, as a program using it pays it (issue 15:
 * `bottle run` builds three scanners per run): `import` of the built package, the first and a
 * second `createScanner` (different known secrets, same rules), and the first scan after them.
 * CPU time of the process (process.cpuUsage), with wall time next to it; each figure is the median
 * of BENCH_CONSTRUCT_RUNS fresh processes (default 7). The import is measured twice: on its own,
 * and after the dependencies (zod, re2js, @bottlekit/diagnostics) were already imported, which is
 * what the library itself adds in a process that loads them anyway.
 *
 * Runs on the built package (dist/): it is built first when missing or older than src/.
 */

import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, statSync } from "node:fs";
import { fileURLToPath, pathToFileURL } from "node:url";

const pkgDir = fileURLToPath(new URL("..", import.meta.url));
const dist = `${pkgDir}dist/index.js`;
const RUNS = Number(process.env.BENCH_CONSTRUCT_RUNS ?? 7);
const out = (s: string) => process.stdout.write(`${s}\n`);

function newestSource(): number {
  let newest = 0;
  for (const f of readdirSync(`${pkgDir}src`)) {
    if (f.endsWith(".ts") && !f.endsWith(".test.ts")) {
      newest = Math.max(newest, statSync(`${pkgDir}src/${f}`).mtimeMs);
    }
  }
  return newest;
}

if (!existsSync(dist) || statSync(dist).mtimeMs < newestSource()) {
  out("construct: dist/ missing or older than src/, building it (tsup)");
  const tsup = fileURLToPath(new URL("../../../node_modules/.bin/tsup", import.meta.url));
  const b = spawnSync(tsup, [], { cwd: pkgDir, encoding: "utf8" });
  if (b.status !== 0) {
    process.stderr.write(b.stdout + b.stderr);
    process.exit(1);
  }
}

// The child: plain node (no tsx), the built package, one JSON line of figures.
const CHILD = `
const cpu = () => { const u = process.cpuUsage(); return (u.user + u.system) / 1000; };
const lap = (f) => { const c = cpu(); const t = performance.now(); const v = f(); return [cpu() - c, performance.now() - t, v]; };
const r = {};
if (process.env.PRELOAD === "1") {
  await import("zod"); await import("re2js"); await import("@bottlekit/diagnostics");
  await import("node:zlib"); await import("node:crypto");
}
let c = cpu(); let t = performance.now();
const m = await import(${JSON.stringify(pathToFileURL(dist).href)});
r.importCpu = cpu() - c; r.importWall = performance.now() - t;
const secret = (s) => ({ name: "K" + s, value: "Zq9Lm2Xw7Rt4Yp1Vn8Qa5" + s });
let s1, s2;
[r.firstCpu, r.firstWall, s1] = lap(() => m.createScanner({ knownSecrets: [secret("a")] }));
[r.secondCpu, r.secondWall, s2] = lap(() => m.createScanner({ knownSecrets: [secret("b"), secret("c")] }));
const body = JSON.stringify({ messages: [{ role: "user", content: "please look at this config ".repeat(200) }] });
[r.scanCpu, r.scanWall] = lap(() => s1.scan(body));
[r.scan2Cpu, r.scan2Wall] = lap(() => s2.scan(body));
process.stdout.write(JSON.stringify(r) + "\\n");
`;

type Figures = Record<string, number>;
function child(preload: boolean): Figures | string {
  const c = spawnSync(process.execPath, ["--input-type=module", "-e", CHILD], {
    cwd: pkgDir,
    encoding: "utf8",
    env: { ...process.env, PRELOAD: preload ? "1" : "0" },
  });
  if (c.status !== 0) return (c.stderr || c.stdout).trim().split("\n").slice(-3).join(" ");
  return JSON.parse(c.stdout.trim().split("\n").pop() as string) as Figures;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] as number;
};
const runs: { alone: Figures[]; preloaded: Figures[] } = { alone: [], preloaded: [] };
for (let i = 0; i < RUNS; i++) {
  // alternate which kind goes first
  for (const preload of i % 2 === 0 ? [false, true] : [true, false]) {
    const f = child(preload);
    if (typeof f === "string") {
      out(`construct: the child process failed: ${f}`);
      process.exit(1);
    }
    (preload ? runs.preloaded : runs.alone).push(f);
  }
}
const fig = (set: Figures[], k: string) =>
  `${median(set.map((f) => f[`${k}Cpu`] as number)).toFixed(1)} ms CPU (${median(set.map((f) => f[`${k}Wall`] as number)).toFixed(1)} ms wall)`;
const load = (await import("node:os")).loadavg().map((l) => l.toFixed(2));
out(
  `construct (built package, fresh node ${process.version}, median of ${RUNS} processes, load ${load.join(" ")}):`,
);
out(`  import('@bottlekit/egress-dlp'): ${fig(runs.alone, "import")}`);
out(
  `  of which the library itself (zod, re2js, diagnostics imported before): ${fig(runs.preloaded, "import")}`,
);
out(`  first createScanner (rules + 1 known secret): ${fig(runs.alone, "first")}`);
out(
  `  second createScanner (2 other known secrets, same rules): ${fig(runs.alone, "second")} (target: next to nothing)`,
);
out(
  `  first scan (5 KB body): ${fig(runs.alone, "scan")}; second scanner's first scan: ${fig(runs.alone, "scan2")}`,
);
const total = median(
  runs.alone.map(
    (f) => (f.importCpu as number) + (f.firstCpu as number) + (f.secondCpu as number) * 2,
  ),
);
out(
  `construct: import + three scanners ${total.toFixed(1)} ms CPU (issue 15: bottle run < 300 ms in all)`,
);
