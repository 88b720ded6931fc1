/**
 * Where the start-up time of `bottle run -- /bin/true` goes, in one run (compare ratios, not
 * absolute times across runs; the machine's load is printed). Medians of N iterations:
 *   - baselines: /bin/true spawned directly, and a bare Node process (`node -e 0`);
 *   - the bottle CLI process: `bottle --version` (Node + CLI module load);
 *   - the sandbox alone (@bottlekit/sandbox, no probe / with the probe);
 *   - `executeRun` in process, by phase (performance marks `bottle-run:<phase>`);
 *   - the whole command as a user runs it: `node bin/bottle.js run -- /bin/true` (needs dist/),
 *     with its phases from the bin's trace (BOTTLEKIT_STARTUP_TRACE: performance marks with the
 *     process's CPU time): Node start, the first bundle file (code cache), CLI + modules,
 *     manifest, host, agent files, sandbox spawn, controller (the second bundle file, gateway and
 *     proxy modules, CA, session), store (cutoff
 *     check) and budgets while stage 2 starts, rest of the probe, agent exec, teardown, exit;
 *   - the same command with a host controller already running (`bottle-gateway up` serving the
 *     home's control socket; here the bench process serves it): the run registers its session
 *     over the socket instead of starting a controller in its own process;
 *   - the bin's own start-up: `bottle --version`, `bottle usage --help`;
 *   - as root, the agent account lookup before (`getent passwd`) and now (/etc/passwd).
 * The sandbox's own before/after (the probe's second Node process) is in packages/sandbox/bench.
 * Usage: pnpm --filter @bottlekit/bottle exec tsx --conditions=@bottlekit/source bench/startup.ts [N]
 */
import { execFileSync, spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { Writable } from "node:stream";
import { fileURLToPath } from "node:url";
import { startGateway } from "@bottlekit/gateway";
import { inspectHost, startSandbox } from "@bottlekit/sandbox";
import type { CliIo } from "../src/cli.ts";
import { executeRun, RUN_PHASES } from "../src/run/execute.ts";

const N = Number(process.argv[2] ?? 7);
const bin = path.join(path.dirname(fileURLToPath(import.meta.url)), "..", "bin", "bottle.js");
const home = fs.mkdtempSync(path.join(os.tmpdir(), "bottle-bench-home-"));
const project = fs.mkdtempSync("/var/tmp/bottle-bench-project-");
const host = inspectHost({});
if (host.account.drop) fs.chownSync(project, host.account.uid, host.account.gid);
const env = { PATH: process.env["PATH"] ?? "/usr/bin:/bin", NO_COLOR: "1" };

const sink = new Writable({ write: (_c, _e, cb) => cb() });
const io: CliIo = { stdout: sink, stderr: sink, env };

function spawnWait(cmd: string, args: string[], extra: NodeJS.ProcessEnv = {}): Promise<number> {
  return new Promise((resolve, reject) => {
    const c = spawn(cmd, args, { stdio: "ignore", env: { ...env, ...extra } });
    c.on("exit", (code) => resolve(code ?? 1));
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

const series: Record<string, number[]> = {};
const add = (name: string, ms: number) => {
  const list = series[name] ?? [];
  list.push(ms);
  series[name] = list;
};

async function inProcessRun(): Promise<void> {
  performance.clearMarks();
  const r = await executeRun(undefined, ["/bin/true"], { home, cwd: project }, io);
  if (r.code !== 0) throw new Error(`bottle run exited ${r.code}`);
  const at = (p: string) => performance.getEntriesByName(`bottle-run:${p}`, "mark")[0]?.startTime;
  for (let i = 1; i < RUN_PHASES.length; i++) {
    const a = at(RUN_PHASES[i - 1] as string);
    const b = at(RUN_PHASES[i] as string);
    if (a !== undefined && b !== undefined) add(`phase ${RUN_PHASES[i]}`, b - a);
  }
  const a = at("start");
  const b = at("cleaned");
  if (a !== undefined && b !== undefined) add("executeRun total", b - a);
}

const haveDist =
  fs.existsSync(path.join(path.dirname(bin), "..", "dist", "cli.js")) &&
  fs.existsSync(path.join(path.dirname(bin), "..", "dist", "bottle-run.cjs"));
const traceFile = path.join(home, "startup-trace.json");
const esmCli = path.join(path.dirname(bin), "..", "dist", "cli.js");
const cacheDir = path.join(home, "code-cache");

/** Phases of one CLI run, from the bin's trace: [label, first mark, last mark]. */
const CLI_PHASES: [string, string, string][] = [
  ["node start → bin", "", "bottle-bin:start"],
  ["first bundle file (code cache)", "bottle-bin:start", "bottle-bin:loaded"],
  ["CLI parse + run modules", "bottle-bin:loaded", "bottle-run:start"],
  ["manifest (plan)", "bottle-run:start", "bottle-run:planned"],
  ["host facts", "bottle-run:planned", "bottle-run:host"],
  ["agent files", "bottle-run:host", "bottle-run:agent-files"],
  ["sandbox spawn (then starts alongside)", "bottle-run:agent-files", "bottle-run:sandbox-spawned"],
  // Loads dist/bottle-controller.cjs (the second file, with its code cache) first.
  ["controller (2nd file, gateway)", "bottle-run:sandbox-spawned", "bottle-run:controller"],
  // From here the agent's side of the sandbox starts (stage 2, the probe) alongside.
  ["store open (cutoff check)", "bottle-run:controller", "bottle-run:store"],
  ["budgets", "bottle-run:store", "bottle-run:budgets"],
  // The embedded gateway loads its approvals service and HTTP client here, alongside the probe.
  ["rest of sandbox start + probe", "bottle-run:budgets", "bottle-run:probe"],
  ["agent exec", "bottle-run:probe", "bottle-run:exited"],
  ["teardown", "bottle-run:exited", "bottle-run:cleaned"],
  ["cache save + trace", "bottle-run:cleaned", "bottle-bin:end"],
];

/** Adds each phase's wall and CPU ms of one traced CLI run; returns the last mark's time. */
function addTrace(): number {
  const t = JSON.parse(fs.readFileSync(traceFile, "utf8")) as {
    marks: { name: string; at: number; cpu: number }[];
  };
  const at = (n: string) => (n === "" ? { at: 0, cpu: 0 } : t.marks.find((m) => m.name === n));
  for (const [label, a, b] of CLI_PHASES) {
    const x = at(a);
    const y = at(b);
    if (x && y) {
      add(`cli ${label}`, y.at - x.at);
      add(`cli cpu ${label}`, y.cpu - x.cpu);
    }
  }
  return at("bottle-bin:end")?.at ?? Number.NaN;
}
// Warm-up (page cache, account lookup, the CA written once in the home).
await inProcessRun();
// The first CLI run finds no code cache and writes it; the timed runs below use it.
let firstRun = Number.NaN;
if (haveDist) {
  firstRun = await time(() =>
    spawnWait(process.execPath, [bin, "run", "--home", home, "--cwd", project, "--", "/bin/true"], {
      BOTTLEKIT_CODE_CACHE_DIR: cacheDir,
    }),
  );
}
for (let i = 0; i < N; i++) {
  add("/bin/true directly", await time(() => spawnWait("/bin/true", [])));
  add("node -e 0", await time(() => spawnWait(process.execPath, ["-e", "0"])));
  if (haveDist) {
    add("bottle --version", await time(() => spawnWait(process.execPath, [bin, "-V"])));
    add(
      "bottle usage --help",
      await time(() => spawnWait(process.execPath, [bin, "usage", "--help"])),
    );
  }
  add(
    "sandbox, no probe",
    await time(
      () =>
        startSandbox(
          { command: ["/bin/true"], projectDir: project, probe: false },
          { host, stdio: "pipe" },
        ).exited,
    ),
  );
  add(
    "sandbox + probe",
    await time(
      () =>
        startSandbox({ command: ["/bin/true"], projectDir: project }, { host, stdio: "pipe" })
          .exited,
    ),
  );
  await inProcessRun();
  if (haveDist) {
    const wall = await time(async () => {
      const code = await spawnWait(
        process.execPath,
        [bin, "run", "--home", home, "--cwd", project, "--", "/bin/true"],
        { BOTTLEKIT_STARTUP_TRACE: traceFile, BOTTLEKIT_CODE_CACHE_DIR: cacheDir },
      );
      if (code !== 0) throw new Error(`bottle run exited ${code}`);
    });
    add("bottle run -- /bin/true (CLI)", wall);
    add("cli exit after the last mark", wall - addTrace());
    // A/B in the same run: the same command through the ESM build (module by module, no bundle,
    // no code cache), as the bin ran it before.
    add(
      "bottle run via the ESM build",
      await time(async () => {
        const code = await spawnWait(process.execPath, [
          "--input-type=module",
          "-e",
          `import { run } from ${JSON.stringify(esmCli)}; process.exitCode = await run(process.argv.slice(1));`,
          "run",
          "--home",
          home,
          "--cwd",
          project,
          "--",
          "/bin/true",
        ]);
        if (code !== 0) throw new Error(`bottle run (ESM build) exited ${code}`);
      }),
    );
  }
}

// With a host controller running for the home (as `bottle-gateway up` does): the run registers
// over the control socket. Started after the embedded series, which must not find its socket.
if (haveDist) {
  const controller = await startGateway({
    proxyDoor: true,
    listen: "127.0.0.1:0",
    env: { ...env, BOTTLEKIT_HOME: home },
  });
  try {
    for (let i = 0; i < N; i++) {
      add(
        "bottle run, host controller running",
        await time(async () => {
          const code = await spawnWait(
            process.execPath,
            [bin, "run", "--home", home, "--cwd", project, "--", "/bin/true"],
            { BOTTLEKIT_CODE_CACHE_DIR: cacheDir },
          );
          if (code !== 0) throw new Error(`bottle run (host controller) exited ${code}`);
        }),
      );
    }
  } finally {
    await controller.close(0);
  }
}

// The agent account lookup as root, before (a getent process per run) and now (/etc/passwd).
if (host.account.drop) {
  for (let i = 0; i < N; i++) {
    add(
      "account: getent (before)",
      await time(async () => execFileSync("getent", ["passwd", host.account.name])),
    );
    add("account: inspectHost (now)", await time(async () => inspectHost({})));
  }
}

const m = (k: string) => median(series[k] ?? []);
const d = m("/bin/true directly");
const line = (label: string, ms: number, note = "") =>
  console.log(`  ${label.padEnd(34)} ${ms.toFixed(1).padStart(8)} ms${note}`);
console.log(
  `bottle run start-up: cpus ${os.cpus().length}, load ${os
    .loadavg()
    .map((l) => l.toFixed(2))
    .join(" ")}, root ${host.account.drop}, ${N} iterations, medians`,
);
line("/bin/true directly", d);
line("node -e 0", m("node -e 0"), "  (one Node process start)");
if (haveDist) {
  line("bottle --version", m("bottle --version"), "  (the bin's own start-up, ESM CLI)");
  line("bottle usage --help", m("bottle usage --help"), "  (the bin's own start-up, ESM CLI)");
}
line(
  "sandbox, no probe",
  m("sandbox, no probe"),
  `  (+${(m("sandbox, no probe") - d).toFixed(1)})`,
);
line("sandbox + probe", m("sandbox + probe"), `  (+${(m("sandbox + probe") - d).toFixed(1)})`);
if (host.account.drop) {
  line("root: getent passwd (before)", m("account: getent (before)"));
  line("root: inspectHost (now)", m("account: inspectHost (now)"), "  (reads /etc/passwd)");
}
console.log("  executeRun in process, by phase:");
for (const p of RUN_PHASES.slice(1)) line(`  ${p}`, m(`phase ${p}`));
line("executeRun total", m("executeRun total"), `  (+${(m("executeRun total") - d).toFixed(1)})`);
if (haveDist) {
  console.log(
    "  bottle run -- /bin/true as a user runs it, by phase (wall ms, this process's CPU ms):",
  );
  for (const [label] of CLI_PHASES) {
    line(`  ${label}`, m(`cli ${label}`), `  cpu ${m(`cli cpu ${label}`).toFixed(1).padStart(6)}`);
  }
  line("  exit after the last mark", m("cli exit after the last mark"));
  line("  first run (no code cache yet)", firstRun, `  (+${(firstRun - d).toFixed(1)}, once)`);
  const esm = m("bottle run via the ESM build");
  line("  via the ESM build (A/B, no bundle)", esm, `  (+${(esm - d).toFixed(1)})`);
  const full = m("bottle run -- /bin/true (CLI)");
  line(
    "bottle run -- /bin/true (CLI)",
    full,
    `  (+${(full - d).toFixed(1)} added; target < 300 ms)`,
  );
  const hosted = m("bottle run, host controller running");
  line(
    "  with a host controller running",
    hosted,
    `  (+${(hosted - d).toFixed(1)} added: the session registers over the control socket)`,
  );
} else console.log("  (no dist/: build first for the CLI figures)");
fs.rmSync(home, { recursive: true, force: true });
fs.rmSync(project, { recursive: true, force: true });
