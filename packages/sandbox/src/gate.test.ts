import { spawn } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import type { Readable, Writable } from "node:stream";
import fc from "fast-check";
import { afterEach, describe, expect, it } from "vitest";
import { envScript } from "./launcher.ts";
import { GATE_ENV_APPLIED, GATE_SCRIPT, GATE_UNIX_PROBE, PROBE_REFUSED_EXIT } from "./scripts.ts";

/**
 * The gate outside any sandbox (no seccomp filter): its AF_UNIX attempt connects, and its report
 * says so — the launcher fails the "socket(AF_UNIX) refused" check on such a report (inside the
 * sandbox, sandbox.test.ts sees it refused). It applies the environment script the launcher sends
 * in fd 6 (from envScript, the host's code the launcher passes on) once told "env" on fd 5, reports its
 * environment and starts the agent only on "go".
 */
let server: net.Server | undefined;
afterEach(async () => {
  await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
  server = undefined;
  fs.rmSync(GATE_UNIX_PROBE, { force: true });
});

interface GateRun {
  /** Stage 2's environment at spawn. */
  env?: Record<string, string>;
  /** What the file on fd 6 holds (default: envScript(env, final ?? env)). */
  script?: string;
  final?: Record<string, string>;
  /** What fd 5 carries after "env" (default "go\n"). */
  verdict?: string;
  agent?: string[];
}

const decodeEnv = (text: string): Record<string, string> => {
  const env: Record<string, string> = {};
  for (const entry of text.split("\0")) {
    const eq = entry.indexOf("=");
    if (eq > 0) env[entry.slice(0, eq)] = entry.slice(eq + 1);
  }
  return env;
};

async function runGate(run: GateRun = {}) {
  let connections = 0;
  fs.rmSync(GATE_UNIX_PROBE, { force: true });
  server = net.createServer((c) => {
    connections++;
    c.destroy();
  });
  await new Promise<void>((r) => server?.listen(GATE_UNIX_PROBE, () => r()));
  const env = run.env ?? { PATH: process.env["PATH"] ?? "", MARKER: "seen-by-the-agent" };
  // As the launcher does: an unlinked file, written once the environment is known.
  const dir = fs.mkdtempSync(`${os.tmpdir()}/bottle-gate-env-`);
  const scriptFd = fs.openSync(`${dir}/env.sh`, "wx", 0o600);
  fs.rmSync(dir, { recursive: true });
  const child = spawn(
    "/bin/sh",
    [
      "-c",
      GATE_SCRIPT,
      "bottle-gate",
      process.execPath,
      ...(run.agent ?? ["/bin/sh", "-c", "echo agent-ran"]),
    ],
    { stdio: ["ignore", "pipe", "pipe", "ignore", "pipe", "pipe", scriptFd], env, cwd: "/" },
  );
  let report = "";
  let out = Buffer.alloc(0);
  let err = "";
  child.stdout?.on("data", (d: Buffer) => {
    out = Buffer.concat([out, d]);
  });
  child.stderr?.on("data", (d: Buffer) => {
    err += d.toString();
  });
  const fds = child.stdio as unknown as (Readable & Writable)[];
  const [fd4, fd5] = [fds[4], fds[5]] as [Readable, Writable];
  fd5.on("error", () => {});
  const closed = new Promise<number>((r) => child.on("close", (c) => r(c ?? 1)));
  // What the gate reports before it has any environment to apply.
  let beforeEnv = "";
  await new Promise<void>((resolve) => {
    fd4.on("data", (d: Buffer) => {
      report += d.toString("latin1");
      if (!beforeEnv && /^nonvoluntary_ctxt_switches:/m.test(report)) {
        beforeEnv = report;
        fs.writeSync(scriptFd, run.script ?? envScript(env, run.final ?? env));
        fs.closeSync(scriptFd);
        fd5.write("env\n");
      }
      if (/(^|\n)end\n/.test(report)) resolve();
    });
    fd4.on("close", () => resolve());
  });
  fd5.end(run.verdict ?? "go\n");
  const code = await closed;
  const b64 = /^environ (\S*)$/m.exec(report)?.[1];
  const reported = b64 === undefined ? undefined : decodeEnv(Buffer.from(b64, "base64").toString());
  return { report, beforeEnv, reported, out: out.toString(), err, code, connections };
}

describe("the stage-2 gate", () => {
  it("reports its AF_UNIX attempt and /proc status before it has an environment, then its environment; runs the agent on go", async () => {
    const r = await runGate();
    // Everything that does not depend on the environment came before the script was sent.
    expect(r.beforeEnv).toMatch(/^unix 0 /m);
    expect(r.beforeEnv).toMatch(/^Seccomp:\s+0$/m);
    expect(r.beforeEnv).toMatch(/^Uid:\s+\d+/m);
    expect(r.beforeEnv).not.toMatch(/^environ /m);
    expect(r.connections).toBeGreaterThan(0);
    expect(r.reported?.["MARKER"]).toBe("seen-by-the-agent");
    expect(r.out).toBe("agent-ran\n");
    expect(r.code).toBe(0);
  });

  it("puts the whole output of its unix attempt on the unix line (newlines as spaces)", async () => {
    const bin = fs.mkdtempSync(`${os.tmpdir()}/bottle-gate-bin-`);
    try {
      fs.writeFileSync(
        `${bin}/logger`,
        "#!/bin/sh\nprintf 'first line\\nsecond: Operation not permitted\\n\\n'\nexit 1\n",
        { mode: 0o755 },
      );
      const r = await runGate({ env: { PATH: `${bin}:${process.env["PATH"]}` } });
      expect(r.report).toMatch(/^unix 1 first line second: Operation not permitted\n/m);
      expect(r.report).toMatch(/^Uid:\s+\d+/m);
      expect(r.code).toBe(0);
    } finally {
      fs.rmSync(bin, { recursive: true, force: true });
    }
  });

  it("exits 3 without running the agent on anything but go", async () => {
    for (const verdict of ["", "stop\n", "go", "gone\n", " go\n"]) {
      const r = await runGate({ verdict });
      expect(r.out).toBe("");
      expect(r.code).toBe(PROBE_REFUSED_EXIT);
    }
  });

  it("gives the agent exactly the final environment, byte for byte, whatever the values and names", async () => {
    const path = process.env["PATH"] ?? "";
    // Stage 2 started with these; the gate's own variables (u, c, r, l, b, o, d, node, nl) among them.
    const start = {
      PATH: path,
      BASE_ONLY: "dropped by the final environment",
      u: "start",
      b: "start",
      KEEP: "old value",
    };
    const final: Record<string, string> = {
      KEEP: "new value",
      quote: "it's 'quoted' '\\''",
      dquote: 'say "hi" \\" \\',
      subst: "$(id) `id` ${HOME} $HOME $((1+1))",
      newlines: "line one\nline two\n\n",
      ifs_like: " \t\n",
      empty: "",
      glob: "* ? [a-z] ~root",
      dash: "-n -e --",
      percent: "%s %d \\n \\0 \\c",
      utf8: "é € 𝄞 \u0081\u0082\u0083\u0084\u0085\u0086\u0087\u0088 \u00ff",
      controls: "\u0001\u0007\u001b[31m\r\u007f",
      // The gate's own names, and the shell's special variables: the gate must be immune.
      u: "final u",
      c: "final c",
      r: "final r",
      l: "final l",
      b: "final b",
      o: "final o",
      d: "final d",
      nl: "final nl",
      node: "final node",
      IFS: "/:= x",
      PATH: "/nowhere:/also/nowhere",
      CDPATH: "/",
      ENV: "/etc/passwd",
      PS4: "$(touch /tmp/ps4) ",
      PPID: "not a pid",
      OPTIND: "7",
      LINENO: "x",
      _: "underscore",
    };
    const r = await runGate({ env: start, final, agent: ["/usr/bin/env", "-0"] });
    expect(r.err).toBe("");
    expect(r.code).toBe(0);
    const want = { ...final, PWD: "/" }; // the shell sets PWD itself, as when the env came from spawn
    expect(decodeEnv(r.out)).toEqual(want);
    expect(r.reported).toEqual(want);
  });

  it("descriptors 4, 5 and 6 are closed when the agent starts", async () => {
    const r = await runGate({ agent: ["/bin/ls", "/proc/self/fd"] });
    expect(r.code).toBe(0);
    // (Others may come from whoever started the test run: the launcher closes those.)
    const fds = r.out.split("\n").filter(Boolean).map(Number);
    expect(fds).toContain(1);
    for (const fd of [4, 5, 6]) expect(fds).not.toContain(fd);
  });

  it("stops (exit 3, an empty environment reported, agent never runs) when the script is cut short or missing", async () => {
    const whole = envScript({ PATH: process.env["PATH"] ?? "" }, { A: "1", B: "2" });
    const cut = whole.slice(0, whole.indexOf("\nexport B"));
    for (const script of ["", cut, `${cut}\n`, whole.slice(0, -20)]) {
      const r = await runGate({ script });
      expect(r.out).toBe("");
      // The launcher refuses a report without an environment.
      expect(r.reported).toEqual({});
      expect(r.code).not.toBe(0);
    }
  });
});

describe("envScript (the host's, passed on by the launcher)", () => {
  it("refuses a name that is not a shell variable name, in the final or the starting environment", () => {
    for (const name of ["A-B", "1A", "A B", "", "A=B", "A\nB", "A;id", "é", "$(id)"]) {
      expect(() => envScript({}, { [name]: "x" })).toThrow(/refused/);
      expect(() => envScript({ [name]: "x" }, {})).toThrow(/refused/);
    }
    expect(() => envScript({}, { A: "nul\0byte" })).toThrow(/refused/);
  });

  it("unsets what the final environment lacks and exports every final variable, quoted", () => {
    expect(envScript({ A: "1", PWD: "/x", B: "2" }, { B: "it's" })).toBe(
      `unset A\nexport B='it'\\''s'\nset -- ${GATE_ENV_APPLIED} "$@"\n`,
    );
  });

  it("any environment survives the gate byte for byte (property)", async () => {
    const name = fc
      .stringMatching(/^[A-Za-z_][A-Za-z0-9_]{0,7}$/)
      .filter((n) => n !== "PWD" && n !== "OPTIND");
    // Strings as they reach a process environment: UTF-8, no NUL.
    const value = fc
      .string({ unit: "binary", maxLength: 40 })
      .map((v) => Buffer.from(v.replaceAll("\0", ""), "utf8").toString("utf8"));
    await fc.assert(
      fc.asyncProperty(
        fc.dictionary(name, value, { maxKeys: 12 }),
        fc.dictionary(name, value, { maxKeys: 12 }),
        async (start, final) => {
          const r = await runGate({
            env: { ...start, PATH: process.env["PATH"] ?? "" },
            final,
            agent: ["/usr/bin/env", "-0"],
          });
          expect(r.code).toBe(0);
          expect(decodeEnv(r.out)).toEqual({ ...final, PWD: "/" });
        },
      ),
      { numRuns: 40 },
    );
  });
});
