/**
 * execpolicy benchmarks: in-process checks per second and CLI wall time per check.
 * Run with `pnpm --filter @bottlekit/execpolicy bench` (build first for the CLI figures).
 */
import { execFileSync } from "node:child_process";
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { checkArgv, checkShellSync, loadBashParser, loadPolicySources } from "../src/index.ts";

const here = dirname(fileURLToPath(import.meta.url));

function policyText(n: number): string {
  const programs = ["git", "npm", "cargo", "docker", "kubectl", "make", "ls", "cat", "rm", "curl"];
  const lines: string[] = [];
  for (let i = 0; i < n; i++) {
    const p = i < programs.length * 10 ? (programs[i % programs.length] as string) : `tool${i}`;
    const decision = ["allow", "prompt", "forbidden"][i % 3];
    lines.push(
      `prefix_rule(pattern=[${JSON.stringify(p)}, ${JSON.stringify(`sub${i}`)}, ["a", "b"]], decision=${JSON.stringify(decision)})`,
    );
  }
  lines.push(
    'prefix_rule(pattern=["git", "status"])',
    'prefix_rule(pattern=["npm", "test"])',
    'prefix_rule(pattern=["rm"], decision="forbidden")',
  );
  return lines.join("\n");
}

function stats(samples: number[]): { p50: number; p90: number; p99: number } {
  const s = [...samples].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.floor(q * s.length))] as number;
  return { p50: at(0.5), p90: at(0.9), p99: at(0.99) };
}

function measure(fn: () => void, iterations: number): number[] {
  for (let i = 0; i < Math.min(1000, iterations); i++) fn(); // warm up
  const out: number[] = [];
  for (let i = 0; i < iterations; i++) {
    const t0 = performance.now();
    fn();
    out.push((performance.now() - t0) * 1000);
  }
  return out;
}

const fmt = (n: number) => n.toFixed(1);

const loaded = loadPolicySources([{ path: "bench.rules", text: policyText(1000) }]);
if (loaded.errors.length > 0) throw new Error(JSON.stringify(loaded.errors));
const policy = loaded.policy;
await loadBashParser();

const script = "git status && npm test > out.log; cargo build | tee log && ls -la";
const argv = ["git", "status", "--short"];

const argvSamples = measure(() => checkArgv(policy, argv), 20_000);
const a = stats(argvSamples);
console.log(`policy: ${policy.size} prefix rules`);
console.log(
  `argv check      p50 ${fmt(a.p50)} µs  p90 ${fmt(a.p90)} µs  p99 ${fmt(a.p99)} µs  (${Math.round(1e6 / a.p50).toLocaleString("en")} checks/s)`,
);
const shellSamples = measure(() => checkShellSync(policy, script), 5_000);
const s = stats(shellSamples);
console.log(
  `5-command script p50 ${fmt(s.p50)} µs  p90 ${fmt(s.p90)} µs  p99 ${fmt(s.p99)} µs  (${Math.round(1e6 / s.p50).toLocaleString("en")} checks/s)  budget p50 < 50 µs`,
);

// CPU time per check: unaffected by other processes competing for the cores (wall-clock p50 is).
const cpu = (fn: () => void, n: number) => {
  const c0 = process.cpuUsage();
  for (let i = 0; i < n; i++) fn();
  const c = process.cpuUsage(c0);
  return (c.user + c.system) / n;
};
console.log(
  `CPU per check    argv ${fmt(cpu(() => checkArgv(policy, argv), 200_000))} µs  5-command script ${fmt(cpu(() => checkShellSync(policy, script), 20_000))} µs`,
);

const big = Array.from(
  { length: 60 },
  (_, i) => `echo ${i} "$(git status)" && npm test > out${i}.log`,
).join("; ");
const b = stats(measure(() => checkShellSync(policy, big), 200));
console.log(
  `4 KB script (${big.length} chars, 180 commands) p50 ${fmt(b.p50 / 1000)} ms  p99 ${fmt(b.p99 / 1000)} ms  budget < 50 ms`,
);

// Inputs that must answer prompt quickly (issue 16): deep nesting and 1 MB, budget < 50 ms each
const hostile: [string, string][] = [
  ["5,000 nested (", `${"(".repeat(5000)}ls${")".repeat(5000)}`],
  ["5,000 nested $(", `echo ${"$(".repeat(5000)}ls${")".repeat(5000)}`],
  ["5,000 nested {", `${"{ ".repeat(5000)}ls${"; }".repeat(5000)}`],
  ["5,000 &&", `${"ls && ".repeat(5000)}ls`],
  ["5,000 [[ ( ) ]]", `[[ ${"( ".repeat(5000)}x${" )".repeat(5000)} ]]`],
  ["1 MB script", `ls; ${"echo aaaaaaaa; ".repeat(70_000)}`],
];
for (const [what, text] of hostile) {
  const h = stats(measure(() => checkShellSync(policy, text), 20));
  const c = cpu(() => checkShellSync(policy, text), 5) / 1000;
  console.log(
    `${what.padEnd(16)} ${checkShellSync(policy, text).decision}  p50 ${fmt(h.p50 / 1000)} ms  max ${fmt(h.p99 / 1000)} ms  CPU ${fmt(c)} ms  budget < 50 ms`,
  );
}

const bin = join(here, "..", "bin", "execpolicy.cjs");
if (existsSync(join(here, "..", "dist", "cli.cjs"))) {
  const dir = mkdtempSync(join(tmpdir(), "execpolicy-bench-"));
  const rules = join(dir, "policy.rules");
  writeFileSync(rules, policyText(1000));
  // the same 1,000 rules in the native format, block style as people write it
  const yaml1000 = join(dir, "policy.yaml");
  const yamlToken = (t: string) => JSON.stringify(t);
  writeFileSync(
    yaml1000,
    [
      "version: 1",
      "rules:",
      ...loaded.policy.rules().flatMap((r) => [
        `  - pattern: [${[
          yamlToken(r.program),
          ...r.rest.map((p) => {
            const alts = p.map((a) => yamlToken("literal" in a ? a.literal : a.glob));
            return alts.length === 1 ? alts[0] : `[${alts.join(", ")}]`;
          }),
        ].join(", ")}]`,
        `    decision: ${r.decision}`,
      ]),
    ].join("\n"),
  );
  // CPU time of the child, measured inside it (getrusage of the whole process, bootstrap included)
  const preload = join(dir, "cpu.cjs");
  writeFileSync(
    preload,
    `process.on("exit", () => { const c = process.cpuUsage(); require("node:fs").writeFileSync(process.env.BENCH_CPU_FILE, String((c.user + c.system) / 1000)); });`,
  );
  const cpuFile = join(dir, "cpu.txt");
  let cacheRun = 0;
  // The code cache (compiled CLI) is filled once by the first run after install; the policy cache
  // once per policy change. "cold" is the first check after a policy changed: code cache warm.
  const codeCacheSeed = join(dir, "code-cache-seed");
  execFileSync(process.execPath, [bin, "check", "-r", rules, "--shell", script], {
    stdio: "ignore",
    env: { ...process.env, BOTTLEKIT_EXECPOLICY_CACHE_DIR: codeCacheSeed },
  });
  execFileSync(process.execPath, [bin, "check", "-r", yaml1000, "--", "ls"], {
    stdio: "ignore",
    env: { ...process.env, BOTTLEKIT_EXECPOLICY_CACHE_DIR: codeCacheSeed },
  });
  const seeded = () => {
    const d = join(dir, `cache-${cacheRun++}`);
    mkdirSync(d, { mode: 0o700 });
    for (const f of readdirSync(codeCacheSeed).filter((n) => n.endsWith(".v8cache")))
      cpSync(join(codeCacheSeed, f), join(d, f), { preserveTimestamps: true });
    return d;
  };
  type CacheMode = "off" | "first" | "cold" | "warm";
  /**
   * Runs the CLI `n` times. `cache`: "off" (no cache at all), "first" (empty cache directory:
   * the first run after install), "cold" (policy cache empty, code cache filled: the first run
   * after a policy changed) or "warm" (both filled).
   */
  const cli = (args: string[], cache: CacheMode, n = 10) => {
    const warmDir = seeded();
    const once = () => {
      const cacheDir =
        cache === "off"
          ? "off"
          : cache === "warm"
            ? warmDir
            : cache === "cold"
              ? seeded()
              : join(dir, `cache-${cacheRun++}`);
      const t0 = performance.now();
      execFileSync(process.execPath, ["--require", preload, bin, ...args], {
        stdio: ["ignore", "ignore", "ignore"],
        env: { ...process.env, BOTTLEKIT_EXECPOLICY_CACHE_DIR: cacheDir, BENCH_CPU_FILE: cpuFile },
      });
      const wall = performance.now() - t0;
      return { wall, cpu: Number(readFileSync(cpuFile, "utf8")) };
    };
    if (cache === "warm") once();
    const runs = Array.from({ length: n }, once);
    return {
      cpu: stats(runs.map((r) => r.cpu)).p50,
      wall: stats(runs.map((r) => r.wall)).p50,
    };
  };
  const node = stats(
    Array.from({ length: 10 }, () => {
      const t0 = performance.now();
      execFileSync(process.execPath, ["-e", "0"]);
      return performance.now() - t0;
    }),
  );
  console.log(`bare node startup wall p50 ${fmt(node.p50)} ms (for comparison)`);
  const examples = join(here, "..", "examples");
  const shell = ["--shell", script];
  const argvOf = ["--", "git", "status"];
  const rulesEx = ["-r", join(examples, "policy.rules")];
  const yamlEx = ["-r", join(examples, "policy.yaml")];
  const rows: [string, string[], CacheMode][] = [
    ["example .rules, no cache", rulesEx, "off"],
    ["example .rules, first run", rulesEx, "first"],
    ["example .rules, warm cache", rulesEx, "warm"],
    ["example .yaml, no cache", yamlEx, "off"],
    ["example .yaml, first run", yamlEx, "first"],
    ["example .yaml, cold cache", yamlEx, "cold"],
    ["example .yaml, warm cache", yamlEx, "warm"],
    ["example .rules + .yaml, cold", [...rulesEx, ...yamlEx], "cold"],
    ["example .rules + .yaml, warm", [...rulesEx, ...yamlEx], "warm"],
    ["1,000-rule .rules, cold cache", ["-r", rules], "cold"],
    ["1,000-rule .rules, warm cache", ["-r", rules], "warm"],
    ["1,000-rule .yaml, cold cache", ["-r", yaml1000], "cold"],
    ["1,000-rule .yaml, warm cache", ["-r", yaml1000], "warm"],
  ];
  console.log("CLI `execpolicy check`, p50 of 10 runs: CPU (user+sys) / wall, budget < 150 ms");
  for (const [name, files, cache] of rows) {
    const a = cli(["check", ...files, ...argvOf], cache);
    const sh = cli(["check", ...files, ...shell], cache);
    console.log(
      `  ${name.padEnd(31)} argv ${fmt(a.cpu)} / ${fmt(a.wall)} ms   --shell ${fmt(sh.cpu)} / ${fmt(sh.wall)} ms`,
    );
  }
  // hostile inputs through the CLI (--stdin, warm caches): the time over a plain --shell run is
  // the analysis; exit 3 with --fail-on prompt
  const warmHostile = seeded();
  const plain = cli(["check", ...rulesEx, ...shell], "warm");
  console.log(
    `CLI hostile inputs (--stdin, --fail-on prompt), p50 of 5; plain --shell ${fmt(plain.wall)} ms`,
  );
  for (const [what, text] of hostile) {
    const walls: number[] = [];
    let code = 0;
    for (let i = 0; i < 5; i++) {
      const t0 = performance.now();
      try {
        execFileSync(
          process.execPath,
          [bin, "check", ...rulesEx, "--fail-on", "prompt", "--stdin"],
          {
            input: text,
            stdio: ["pipe", "ignore", "ignore"],
            env: { ...process.env, BOTTLEKIT_EXECPOLICY_CACHE_DIR: warmHostile },
          },
        );
      } catch (e) {
        code = (e as { status?: number }).status ?? -1;
      }
      walls.push(performance.now() - t0);
    }
    console.log(
      `  ${what.padEnd(16)} exit ${code}  wall ${fmt(stats(walls).p50)} ms (${fmt(stats(walls).p50 - plain.wall)} ms over plain)`,
    );
  }
  rmSync(dir, { recursive: true, force: true });
} else {
  console.log("CLI times   skipped: run `pnpm --filter @bottlekit/execpolicy build` first");
}
