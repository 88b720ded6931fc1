import fs from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  hostDir,
  isRoot,
  LAUNCHERS,
  launcherHost,
  projectDir,
  proxySocket,
  runIn as runWith,
} from "../test/helpers.ts";
import {
  inspectHost,
  isSandboxError,
  type SandboxSpec,
  type StartOptions,
  startSandbox as start,
} from "./index.ts";

const node = process.execPath;
// The suites below that do not name a launcher take the host's default (Perl where there is one).
const startSandbox = start;
const runIn = runWith;

describe("host checks", () => {
  it("refuses anything but Linux", () => {
    let error: unknown;
    try {
      inspectHost({}, { platform: "darwin" });
    } catch (e) {
      error = e;
    }
    expect(isSandboxError(error) && error.code).toBe("E_UNSUPPORTED_PLATFORM");
    expect((error as Error).message).toMatch(/not supported on darwin/);
  });

  it("names the install command when bwrap is missing", () => {
    let error: unknown;
    const empty = hostDir("empty-path");
    try {
      inspectHost({}, { env: { PATH: empty } });
    } catch (e) {
      error = e;
    } finally {
      fs.rmSync(empty, { recursive: true, force: true });
    }
    expect(isSandboxError(error) && error.code).toBe("E_BWRAP_MISSING");
    expect(isSandboxError(error) && error.hint).toBe("apt-get install bubblewrap");
  });

  it("as root, never runs the agent as an account with uid 0", () => {
    let error: unknown;
    try {
      inspectHost({ runAs: "root" }, { uid: 0 });
    } catch (e) {
      error = e;
    }
    expect(isSandboxError(error) && error.code).toBe("E_ROOT_REFUSED");
  });

  it("as root, refuses an unknown account it may not create", () => {
    let error: unknown;
    try {
      inspectHost({ runAs: "bottlekit-nobody-here", createAccount: false }, { uid: 0 });
    } catch (e) {
      error = e;
    }
    expect(isSandboxError(error) && error.code).toBe("E_ROOT_REFUSED");
  });

  it("drops to an unprivileged account when the caller is root", () => {
    const host = inspectHost({});
    if (isRoot()) {
      expect(host.account.drop).toBe(true);
      expect(host.account.uid).not.toBe(0);
    } else {
      expect(host.account.drop).toBe(false);
    }
  });
});

describe("sandbox", () => {
  let project: string;
  beforeAll(() => {
    project = projectDir();
  });
  afterAll(() => {
    fs.rmSync(project, { recursive: true, force: true });
  });

  it("runs the command as an unprivileged user with the project writable and a scrubbed env", async () => {
    const r = await runIn({
      command: [
        node,
        "-e",
        "require('fs').writeFileSync('out.txt','hi'); console.log(JSON.stringify({uid: process.getuid(), cwd: process.cwd(), env: process.env}))",
      ],
      projectDir: project,
      env: { GIVEN: "yes" },
      hostEnv: { PATH: process.env["PATH"], SECRET_TOKEN: "not-for-the-agent" },
      probe: false,
    });
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as { uid: number; cwd: string; env: Record<string, string> };
    expect(out.uid).not.toBe(0);
    expect(out.cwd).toBe(project);
    expect(out.env["GIVEN"]).toBe("yes");
    expect(out.env["SECRET_TOKEN"]).toBeUndefined();
    expect(fs.readFileSync(path.join(project, "out.txt"), "utf8")).toBe("hi");
  });

  it("returns the agent's own exit code", async () => {
    const r = await runIn({
      command: ["/bin/sh", "-c", "exit 7"],
      projectDir: project,
      probe: false,
    });
    expect(r.code).toBe(7);
  });

  it("kills the whole tree at once", async () => {
    const sb = startSandbox(
      { command: ["/bin/sh", "-c", "sleep 100 & sleep 100"], projectDir: project, probe: false },
      { stdio: "pipe" },
    );
    // Wait until both sleeps exist in the tree.
    for (let i = 0; i < 200 && sb.pids().length < 6; i++)
      await new Promise((r) => setTimeout(r, 25));
    const pids = sb.pids();
    expect(pids.length).toBeGreaterThanOrEqual(6);
    const exit = await sb.kill();
    expect(exit.signal).toBe("SIGKILL");
    for (let i = 0; i < 200 && pids.some(alive); i++) await new Promise((r) => setTimeout(r, 25));
    expect(pids.filter(alive)).toEqual([]);
  });

  it("stops and continues the tree with signalTree", async () => {
    const sb = startSandbox(
      { command: ["/bin/sh", "-c", "sleep 100"], projectDir: project, probe: false },
      { stdio: "pipe" },
    );
    for (let i = 0; i < 200 && !sb.pids().some((p) => comm(p) === "sleep"); i++)
      await new Promise((r) => setTimeout(r, 25));
    const sleeper = sb.pids().find((p) => comm(p) === "sleep") as number;
    expect(sleeper).toBeGreaterThan(0);
    expect(sb.signalTree("SIGSTOP")).toBeGreaterThan(0);
    for (let i = 0; i < 200 && state(sleeper) !== "T"; i++)
      await new Promise((r) => setTimeout(r, 10));
    expect(state(sleeper)).toBe("T");
    sb.signalTree("SIGCONT");
    await sb.kill();
  });
});

describe.each(LAUNCHERS)("startup probe (stage 1 under %s)", (launcher) => {
  const host = launcherHost(launcher);
  const startSandbox = (spec: SandboxSpec, options: StartOptions = {}) =>
    start(spec, { host, ...options });
  const runIn = (spec: SandboxSpec, options: StartOptions = {}) =>
    runWith(spec, { host, ...options });
  let project: string;
  beforeAll(() => {
    project = projectDir();
  });
  afterAll(() => {
    fs.rmSync(project, { recursive: true, force: true });
  });

  it("passes every check, then starts the agent", async () => {
    const proxy = await proxySocket(403);
    try {
      const sb = startSandbox(
        {
          command: ["/bin/sh", "-c", "echo started > marker"],
          projectDir: project,
          proxy: { socketPath: proxy.socketPath },
        },
        {
          stdio: "pipe",
          checkEnv: () => ({ ok: true, detail: "clean" }),
          probeUndeclaredHost: "undeclared.example",
        },
      );
      const report = await sb.probe;
      const exit = await sb.exited;
      expect(report.checks.filter((c) => !c.ok)).toEqual([]);
      expect(report.checks.map((c) => c.name)).toEqual(
        expect.arrayContaining([
          "not root, no capabilities",
          "socket(AF_UNIX) refused",
          "direct TCP fails",
          "DNS fails",
          "writes outside the writable paths fail",
          "proxy answers",
          "proxy refuses an undeclared host",
          "no credential in the environment",
        ]),
      );
      expect(proxy.requests).toEqual(["CONNECT undeclared.example:443 HTTP/1.1"]);
      expect(exit.code).toBe(0);
      expect(fs.readFileSync(path.join(project, "marker"), "utf8")).toBe("started\n");
    } finally {
      proxy.close();
      fs.rmSync(path.join(project, "marker"), { force: true });
    }
  });

  it("aborts with exit 3 before the agent starts when the env holds a credential", async () => {
    const proxy = await proxySocket(403);
    try {
      const r = await runIn(
        {
          command: ["/bin/sh", "-c", "echo started > marker"],
          projectDir: project,
          proxy: { socketPath: proxy.socketPath },
          env: { LEAK: "sk-real-value" },
        },
        {
          checkEnv: (env) => ({
            ok: !Object.values(env).includes("sk-real-value"),
            detail: "LEAK holds a host credential",
          }),
        },
      );
      expect(r.code).toBe(3);
      expect(r.probeOk).toBe(false);
      expect(fs.existsSync(path.join(project, "marker"))).toBe(false);
    } finally {
      proxy.close();
    }
  });

  it("aborts with exit 3 when the proxy lets an undeclared host through", async () => {
    const proxy = await proxySocket(200);
    try {
      const r = await runIn({
        command: ["/bin/sh", "-c", "echo started > marker"],
        projectDir: project,
        proxy: { socketPath: proxy.socketPath },
      });
      expect(r.code).toBe(3);
      expect(fs.existsSync(path.join(project, "marker"))).toBe(false);
    } finally {
      proxy.close();
    }
  });
});

function alive(pid: number): boolean {
  try {
    const s = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    return !/\) Z /.test(s);
  } catch {
    return false;
  }
}

function comm(pid: number): string {
  try {
    return fs.readFileSync(`/proc/${pid}/comm`, "utf8").trim();
  } catch {
    return "";
  }
}

function state(pid: number): string {
  try {
    const s = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    return s.slice(s.lastIndexOf(")") + 2, s.lastIndexOf(")") + 3);
  } catch {
    return "";
  }
}

describe("devices", () => {
  it("the agent can write /dev/null and read /dev/urandom", async () => {
    const project = projectDir();
    try {
      const r = await runIn({
        command: ["/bin/sh", "-c", "echo x > /dev/null && head -c 4 /dev/urandom | wc -c"],
        projectDir: project,
        probe: false,
      });
      expect(r.stderr).toBe("");
      expect(r.stdout.trim()).toBe("4");
      expect(r.code).toBe(0);
    } finally {
      fs.rmSync(project, { recursive: true, force: true });
    }
  });
});
