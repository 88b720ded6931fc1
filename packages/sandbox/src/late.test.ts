import fs from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { hostDir, projectDir, proxySocket } from "../test/helpers.ts";
import { type LateSetup, startSandbox } from "./index.ts";
import { LAUNCHER_CHECKS, LAUNCHER_PROXY_CHECKS } from "./scripts.ts";

/**
 * A sandbox started before its controller is ready (`late`): the agent's side starts only once
 * the proxy socket, CA and remaining variables arrive; the probe then checks them as usual.
 */
describe("late setup", () => {
  let project: string;
  let caDir: string;
  let caCertPath: string;
  beforeAll(() => {
    project = projectDir();
    caDir = hostDir("ca");
    caCertPath = path.join(caDir, "ca.pem");
    fs.writeFileSync(
      caCertPath,
      "-----BEGIN CERTIFICATE-----\nbottle-test-ca\n-----END CERTIFICATE-----\n",
    );
  });
  afterAll(() => {
    fs.rmSync(project, { recursive: true, force: true });
    fs.rmSync(caDir, { recursive: true, force: true });
  });

  function deferred() {
    let resolve!: (s: LateSetup) => void;
    let reject!: (e: Error) => void;
    const promise = new Promise<LateSetup>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    return { promise, resolve, reject };
  }

  it("waits for the setup, then runs the agent with its variables, CA and proxy; the probe passes", async () => {
    const proxy = await proxySocket(403);
    const late = deferred();
    try {
      const sb = startSandbox(
        {
          command: [
            "/bin/sh",
            "-c",
            'printf "%s|%s|%s|" "$EARLY" "$PLACEHOLDER" "$NODE_EXTRA_CA_CERTS" > marker; cat "$CURL_CA_BUNDLE" | grep -c bottle-test-ca >> marker',
          ],
          projectDir: project,
          env: { EARLY: "from-spec" },
        },
        {
          stdio: "pipe",
          late: late.promise,
          checkEnv: () => ({ ok: true, detail: "clean" }),
          probeUndeclaredHost: "undeclared.example",
        },
      );
      // Nothing of the agent's side runs before the setup.
      await new Promise((r) => setTimeout(r, 300));
      expect(fs.existsSync(path.join(project, "marker"))).toBe(false);
      expect(proxy.requests).toEqual([]);
      late.resolve({
        proxySocketPath: proxy.socketPath,
        caCertPath,
        env: { PLACEHOLDER: "bottlekit:resolve:env:KEY" },
      });
      let stderr = "";
      sb.stderr?.on("data", (d: Buffer) => {
        stderr += d.toString("utf8");
      });
      const report = await sb.probe;
      const exit = await sb.exited;
      expect(report.checks.filter((c) => !c.ok)).toEqual([]);
      // The wall checks ran while the setup was awaited; the rest once stage 2 started.
      expect(report.checks.map((c) => c.name).sort()).toEqual(
        [...LAUNCHER_CHECKS, ...LAUNCHER_PROXY_CHECKS, "no credential in the environment"].sort(),
      );
      // The launcher started before the CA existed and said nothing about it.
      expect(stderr).toBe("");
      expect(proxy.requests).toEqual(["CONNECT undeclared.example:443 HTTP/1.1"]);
      expect(exit.code).toBe(0);
      expect(fs.readFileSync(path.join(project, "marker"), "utf8")).toBe(
        "from-spec|bottlekit:resolve:env:KEY|/run/bottle/ca.pem|1\n",
      );
    } finally {
      late.resolve({ proxySocketPath: proxy.socketPath, caCertPath });
      proxy.close();
      fs.rmSync(path.join(project, "marker"), { force: true });
    }
  });

  it("the probe still refuses a credential that came with the setup (exit 3, agent never runs)", async () => {
    const proxy = await proxySocket(403);
    try {
      const sb = startSandbox(
        { command: ["/bin/sh", "-c", "echo started > marker"], projectDir: project },
        {
          stdio: "pipe",
          late: Promise.resolve({
            proxySocketPath: proxy.socketPath,
            caCertPath,
            env: { LEAK: "sk-real-value" },
          }),
          checkEnv: (env) => ({
            ok: !Object.values(env).includes("sk-real-value"),
            detail: "LEAK holds a host credential",
          }),
        },
      );
      const report = await sb.probe;
      const exit = await sb.exited;
      expect(report.ok).toBe(false);
      expect(exit.code).toBe(3);
      expect(fs.existsSync(path.join(project, "marker"))).toBe(false);
    } finally {
      proxy.close();
    }
  });

  it("beforeAgent: a passing probe waits for it; a rejection stops the agent (exit 3, a failed check)", async () => {
    const proxy = await proxySocket(403);
    try {
      // Rejected: the report carries the reason, the agent never runs.
      const refused = startSandbox(
        { command: ["/bin/sh", "-c", "echo started > marker"], projectDir: project },
        {
          stdio: "pipe",
          late: Promise.resolve({ proxySocketPath: proxy.socketPath, caCertPath }),
          beforeAgent: Promise.reject(new Error("the approvals service did not start")),
          checkEnv: () => ({ ok: true, detail: "clean" }),
        },
      );
      const [report, exit] = await Promise.all([refused.probe, refused.exited]);
      expect(report.ok).toBe(false);
      expect(report.checks.filter((c) => !c.ok)).toEqual([
        { name: "controller ready", ok: false, detail: "the approvals service did not start" },
      ]);
      expect(exit.code).toBe(3);
      expect(fs.existsSync(path.join(project, "marker"))).toBe(false);

      // Settled after the probe passed: the agent runs then, and only then.
      let settle!: () => void;
      let settled = false;
      const beforeAgent = new Promise<void>((r) => {
        settle = r;
      });
      const sb = startSandbox(
        {
          command: ["/bin/sh", "-c", "echo started > marker"],
          projectDir: project,
        },
        {
          stdio: "pipe",
          late: Promise.resolve({ proxySocketPath: proxy.socketPath, caCertPath }),
          beforeAgent: beforeAgent.then(() => {
            settled = true;
          }),
          checkEnv: () => {
            // The report is in: release the agent's side on a later turn.
            setTimeout(settle, 50);
            return { ok: true, detail: "clean" };
          },
        },
      );
      const passed = await sb.probe;
      expect(settled).toBe(true);
      expect(passed.ok).toBe(true);
      // A setup there at once: the wall checks ran after stage 2 started, and none is missing.
      expect(passed.checks.map((c) => c.name).sort()).toEqual(
        [...LAUNCHER_CHECKS, ...LAUNCHER_PROXY_CHECKS, "no credential in the environment"].sort(),
      );
      expect((await sb.exited).code).toBe(0);
      expect(fs.readFileSync(path.join(project, "marker"), "utf8")).toBe("started\n");
    } finally {
      proxy.close();
      fs.rmSync(path.join(project, "marker"), { force: true });
    }
  });

  it("beforeAgent without the probe needs a late setup (nothing else would hold the agent back)", () => {
    expect(() =>
      startSandbox(
        { command: ["/bin/true"], projectDir: project, probe: false },
        { beforeAgent: Promise.resolve() },
      ),
    ).toThrow(/beforeAgent needs the probe or a late setup/);
  });

  it("a rejected setup, or one whose socket is not a socket, kills the sandbox before the agent", async () => {
    for (const late of [
      Promise.reject(new Error("the controller did not start")),
      Promise.resolve({ proxySocketPath: caCertPath, caCertPath }),
    ]) {
      const sb = startSandbox(
        { command: ["/bin/sh", "-c", "echo started > marker"], projectDir: project },
        { stdio: "pipe", late },
      );
      const [report, exit] = await Promise.all([sb.probe, sb.exited]);
      expect(report.ok).toBe(false);
      expect(exit.code).not.toBe(0);
      expect(fs.existsSync(path.join(project, "marker"))).toBe(false);
    }
  });
});
