import { execFileSync } from "node:child_process";
import crypto from "node:crypto";
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { hostDir, LAUNCHERS, launcherHost, projectDir, runIn } from "../test/helpers.ts";
import { startSandbox } from "./index.ts";
import { envEntries, envScript, launcherConfig, parseReport, setupLine } from "./launcher.ts";
import { GATE_UNIX_PROBE } from "./scripts.ts";

const node = process.execPath;

/**
 * A unix socket standing in for the proxy that echoes every connection back, hashing what it got:
 * the bridge must carry bytes both ways whole, in order, under backpressure, and pass an end on.
 */
async function echoSocket(): Promise<{ socketPath: string; received: string[]; close(): void }> {
  const dir = hostDir("echo");
  const socketPath = path.join(dir, "echo.sock");
  const received: string[] = [];
  const server = net.createServer((c) => {
    const hash = crypto.createHash("sha256");
    c.on("data", (d) => {
      hash.update(d);
      c.write(d);
    });
    // The client's end reached us: answer with the hash of everything, then end our side.
    c.on("end", () => {
      const h = hash.digest("hex");
      received.push(h);
      c.end(`#${h}`);
    });
    c.on("error", () => {});
  });
  await new Promise<void>((resolve) => server.listen(socketPath, resolve));
  fs.chmodSync(dir, 0o755);
  fs.chmodSync(socketPath, 0o777);
  return {
    socketPath,
    received,
    close: () => {
      server.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Run inside the sandbox: `n` connections through the bridge, each sending `size` pseudo-random bytes then ending. */
const BRIDGE_CLIENT = `
const net = require("node:net");
const crypto = require("node:crypto");
const [port, n, size] = process.argv.slice(1).map(Number);
const one = (i) => new Promise((resolve, reject) => {
  const data = crypto.createHash("sha512").update(String(i)).digest();
  const body = Buffer.alloc(size);
  for (let o = 0; o < size; o += data.length) data.copy(body, o);
  const sent = crypto.createHash("sha256").update(body).digest("hex");
  const got = [];
  const s = net.connect({ host: "127.0.0.1", port }, () => s.end(body));
  s.on("data", (d) => got.push(d));
  s.on("error", reject);
  s.on("close", () => {
    const all = Buffer.concat(got);
    const echoed = all.subarray(0, size);
    const trailer = all.subarray(size).toString("latin1");
    resolve({ same: echoed.equals(body), trailer: trailer === "#" + sent, length: all.length });
  });
});
Promise.all(Array.from({ length: n }, (_, i) => one(i))).then((r) => console.log(JSON.stringify(r)), (e) => { console.log(JSON.stringify({ error: e.message })); });
`;

describe.each(LAUNCHERS)("stage 1 under %s", (launcher) => {
  const host = launcherHost(launcher);
  let project: string;
  beforeAll(() => {
    project = projectDir();
  });
  afterAll(() => {
    fs.rmSync(project, { recursive: true, force: true });
  });

  it("runs stage 1 (the host's process tree shows it)", async () => {
    const sb = startSandbox(
      { command: ["/bin/sh", "-c", "read line"], projectDir: project },
      { host, stdio: "pipe" },
    );
    try {
      expect((await sb.probe).ok).toBe(true);
      const cmdlines = sb
        .pids()
        .map((p) => {
          try {
            return fs.readFileSync(`/proc/${p}/cmdline`, "utf8").split("\0").join(" ");
          } catch {
            return "";
          }
        })
        .join("\n");
      const expected = launcher === "perl" && host.perl ? "launcher.pl" : "launcher.cjs";
      expect(sb.plan.launcher).toBe(expected === "launcher.pl" ? "perl" : "node");
      expect(cmdlines).toContain(`/run/bottle/${expected} /run/bottle/launcher.conf`);
    } finally {
      sb.stdout?.destroy();
      await sb.kill();
    }
  });

  it("closes the descriptors the host process inherited without close-on-exec", () => {
    // A host process started by a shell that left descriptors open (no close-on-exec): they
    // reach bwrap and the launcher, which must close them before stage 2.
    const dir = hostDir("fds");
    const script = path.join(dir, "run.mts");
    fs.writeFileSync(
      script,
      [
        `import { inspectHost, startSandbox } from ${JSON.stringify(path.join(import.meta.dirname, "index.ts"))};`,
        `const host = inspectHost({}, ${launcher === "node" ? "{ perl: null }" : "{}"});`,
        "const out = [];",
        "for (const probe of [false, true]) {",
        `  const sb = startSandbox({ command: ["/bin/sh", "-c", "ls /proc/self/fd"], projectDir: ${JSON.stringify(project)}, probe }, { host, stdio: "pipe" });`,
        '  let text = ""; sb.stdout.on("data", (d) => (text += d));',
        "  await sb.exited;",
        "  out.push(text.trim().split(/\\s+/).map(Number));",
        "}",
        "console.log(JSON.stringify(out));",
      ].join("\n"),
    );
    try {
      const stdout = execFileSync(
        "/bin/sh",
        [
          "-c",
          'exec 7</etc/hostname 8</etc/hostname 9</etc/hostname; exec "$0" --import tsx "$1"',
          node,
          script,
        ],
        { cwd: path.join(import.meta.dirname, ".."), encoding: "utf8" },
      );
      const runs = JSON.parse(stdout) as number[][];
      expect(runs).toHaveLength(2);
      // 0-2 and ls's own directory descriptor (3): nothing else, with the probe or without.
      for (const fds of runs) expect(fds.filter((n) => n > 3)).toEqual([]);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("the bridge carries 12 concurrent connections of 3 MB each way whole, and passes each end on", async () => {
    const echo = await echoSocket();
    try {
      const r = await runIn(
        {
          command: [node, "-e", BRIDGE_CLIENT, "3128", "12", String(3 * 1024 * 1024)],
          projectDir: project,
          probe: false,
          proxy: { socketPath: echo.socketPath },
        },
        { host },
      );
      expect(r.stderr).toBe("");
      const results = JSON.parse(r.stdout) as { same: boolean; trailer: boolean }[];
      expect(results).toHaveLength(12);
      expect(results.filter((x) => !(x.same && x.trailer))).toEqual([]);
      expect(echo.received).toHaveLength(12);
    } finally {
      echo.close();
    }
  });

  it("starts with none of the agent's variables: PERL5OPT, PERL5LIB and NODE_OPTIONS reach the agent only", async () => {
    const trap = path.join(project, "trap.js");
    fs.writeFileSync(trap, "require('fs').writeFileSync(process.env.TRAP_MARK, 'ran');");
    const mark = path.join(project, "trap-ran");
    const env = {
      PERL5OPT: "-Mdiagnostics=-traceonly -e exit(7)",
      PERL5LIB: project,
      PERLIO: ":crlf",
      NODE_OPTIONS: `--require ${trap}`,
      TRAP_MARK: mark,
      LANG: "xx_YY.nonexistent",
    };
    const r = await runIn(
      {
        command: ["/bin/sh", "-c", 'printf "%s|%s|%s" "$PERL5OPT" "$PERL5LIB" "$NODE_OPTIONS"'],
        projectDir: project,
        env,
      },
      { host, checkEnv: () => ({ ok: true, detail: "clean" }) },
    );
    expect(r.probeOk).toBe(true);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`${env.PERL5OPT}|${env.PERL5LIB}|${env.NODE_OPTIONS}`);
    expect(r.stderr).not.toMatch(/perl: warning|locale/i);
    // The launcher itself never loaded the trap (the gate's own node fallback would not either).
    expect(fs.existsSync(mark)).toBe(false);
  });

  it("without the probe, the agent's environment is the plan's, byte for byte (property)", async () => {
    const name = fc.stringMatching(/^[A-Za-z_][A-Za-z0-9_]{0,12}$/).filter(
      // names the sandbox sets itself, and the shell's own
      (n) =>
        !["PWD", "SHLVL", "_", "OLDPWD"].includes(n) &&
        !/^(HOME|PATH|USER|LOGNAME|TMPDIR|TERM|LANG|BOTTLE_SANDBOX|HTTPS?_PROXY|https?_proxy|ALL_PROXY|all_proxy|NO_PROXY|no_proxy)$/.test(
          n,
        ),
    );
    const value = fc.string({ unit: "binary", maxLength: 40 }).filter((v) => !v.includes("\0"));
    await fc.assert(
      fc.asyncProperty(fc.dictionary(name, value, { maxKeys: 6 }), async (env) => {
        const r = await runIn(
          {
            command: [node, "-e", "process.stdout.write(JSON.stringify(process.env))"],
            projectDir: project,
            probe: false,
            env,
          },
          { host },
        );
        const seen = JSON.parse(r.stdout) as Record<string, string>;
        for (const [k, v] of Object.entries(env)) expect(seen[k]).toBe(v);
      }),
      { numRuns: 8 },
    );
  });
});

describe("the launcher protocol (host side)", () => {
  it("refuses variable names the gate cannot set, and NUL in values", () => {
    for (const bad of ["", "1A", "A-B", "A=B", "A B", "ä"]) {
      expect(() => envEntries({ [bad]: "x" })).toThrow(/refused/);
    }
    expect(() => envEntries({ A: "x\0y" })).toThrow(/refused/);
    expect(envEntries({ A: "x=y", _b: "" })).toEqual(["A=x=y", "_b="]);
  });

  it("writes every value as hex, so no value can add a line or a key (property)", () => {
    fc.assert(
      fc.property(fc.array(fc.string({ unit: "binary" }), { maxLength: 5 }), (argv) => {
        const text = launcherConfig({
          bwrap: "/usr/bin/bwrap",
          inner: argv,
          filter: "/run/bottle/seccomp.bpf",
          probe: true,
          late: false,
          lateTimeoutMs: 1000,
          env: { A: "1" },
          tcpTargets: [],
          dnsName: "example.com",
          writeProbes: [],
        });
        const lines = text.trimEnd().split("\n");
        for (const l of lines) expect(l).toMatch(/^[A-Za-z_][A-Za-z0-9_]* (?:[0-9a-f]{2})*$/);
        const inner = lines
          .filter((l) => l.startsWith("inner "))
          .map((l) => Buffer.from(l.slice(6), "hex").toString("utf8"));
        expect(inner).toEqual(argv.map((a) => Buffer.from(a, "utf8").toString("utf8")));
      }),
    );
  });

  it("the setup line carries the environment and the script in hex", () => {
    const line = setupLine({ A: "1\n2" }, envScript({}, { A: "1\n2" }));
    expect(line).toMatch(/^setup [0-9a-f]+ [0-9a-f]+\n$/);
    const [, env, script] = line.trim().split(" ");
    expect(Buffer.from(env as string, "hex").toString("utf8")).toBe("A=1\n2");
    expect(Buffer.from(script as string, "hex").toString("utf8")).toContain("export A='1\n2'");
  });

  const status = "Uid:\t999\t999\t999\t999\nCapEff:\t0000000000000000\nSeccomp:\t2\n";
  const environ = `environ ${Buffer.from("A=1\0B=2\0").toString("base64")}\nend\n`;
  const report = (gate: string, extra: Record<string, unknown> = {}) =>
    JSON.stringify({ checks: [], gate, unixConnections: 0, ...extra });

  it("reads the gate's status, unix attempt and environment", () => {
    const r = parseReport(
      report(`unix 1 logger: socket: Operation not permitted\n${status}${environ}`),
    );
    expect(r.env).toEqual({ A: "1", B: "2" });
    expect(r.checks).toEqual([
      { name: "not root, no capabilities", ok: true, detail: "uid 999, CapEff 0000000000000000" },
      { name: "socket(AF_UNIX) refused", ok: true, detail: "EPERM" },
    ]);
  });

  it("fails closed on what it cannot vouch for", () => {
    const failed = (line: string) =>
      parseReport(line)
        .checks.filter((c) => !c.ok)
        .map((c) => c.name);
    // A connection to the launcher's unix socket, counted or not counted.
    expect(
      failed(report(`unix 1 Operation not permitted\n${status}${environ}`, { unixConnections: 1 })),
    ).toEqual(["socket(AF_UNIX) refused"]);
    expect(
      failed(
        report(`unix 1 Operation not permitted\n${status}${environ}`, { unixConnections: "0" }),
      ),
    ).toEqual(["socket(AF_UNIX) refused"]);
    // The attempt connected (exit 0), or failed for another reason than the filter.
    expect(failed(report(`unix 0 \n${status}${environ}`))).toEqual(["socket(AF_UNIX) refused"]);
    expect(failed(report(`unix 1 No such file or directory\n${status}${environ}`))).toEqual([
      "socket(AF_UNIX) refused",
    ]);
    // No filter, root, capabilities.
    expect(
      failed(report(`unix 1 EPERM\n${status.replace("Seccomp:\t2", "Seccomp:\t0")}${environ}`)),
    ).toEqual(["socket(AF_UNIX) refused"]);
    expect(
      failed(report(`unix 1 EPERM\n${status.replace("Uid:\t999", "Uid:\t0")}${environ}`)),
    ).toEqual(["not root, no capabilities"]);
    expect(
      failed(
        report(
          `unix 1 EPERM\n${status.replace(/CapEff:\t0+/, "CapEff:\t0000000000000400")}${environ}`,
        ),
      ),
    ).toEqual(["not root, no capabilities"]);
    // Nothing from the gate; no environment.
    expect(failed(report(""))).toEqual([
      "not root, no capabilities",
      "socket(AF_UNIX) refused",
      "probe answered",
    ]);
    expect(failed(report(`unix 1 EPERM\n${status}end\n`))).toEqual(["probe answered"]);
    // Not a report at all.
    expect(() => parseReport("not json")).toThrow();
    expect(() => parseReport(JSON.stringify({ checks: {}, gate: "" }))).toThrow();
    expect(() => parseReport(JSON.stringify({ checks: [] }))).toThrow();
    expect(() => parseReport("null")).toThrow();
  });

  it("keeps the launcher's own checks, failed ones included, in the checklist's order", () => {
    const r = parseReport(
      report(`unix 1 EPERM\n${status}${environ}`, {
        checks: [
          { name: "proxy answers", ok: true, detail: "HTTP/1.1 403" },
          { name: "DNS fails", ok: false, detail: "example.com resolved to 1.2.3.4" },
          { name: "direct TCP fails", ok: "yes", detail: 1 },
        ],
      }),
    );
    expect(r.checks.map((c) => [c.name, c.ok])).toEqual([
      ["not root, no capabilities", true],
      ["socket(AF_UNIX) refused", true],
      ["direct TCP fails", false],
      ["DNS fails", false],
      ["proxy answers", true],
    ]);
    expect(GATE_UNIX_PROBE.startsWith("/tmp/")).toBe(true);
  });
});
