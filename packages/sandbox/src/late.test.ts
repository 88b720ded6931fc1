import fs from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { hostDir, LAUNCHERS, launcherHost, projectDir, proxySocket } from "../test/helpers.ts";
import {
  inspectHost,
  type LateSetup,
  planSandbox,
  type SandboxSpec,
  type StartOptions,
  startSandbox as start,
} from "./index.ts";
import { LAUNCHER_CHECKS, LAUNCHER_PROXY_CHECKS } from "./scripts.ts";

/**
 * A sandbox started before its controller is ready (`late`): the agent's side starts only once
 * the proxy socket, CA and remaining variables arrive; the probe then checks them as usual.
 */
describe.each(LAUNCHERS)("late setup (stage 1 under %s)", (launcher) => {
  const host = launcherHost(launcher);
  const startSandbox = (spec: SandboxSpec, options: StartOptions = {}) =>
    start(spec, { host, ...options });
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
            'printf "%s|%s|%s|" "$EARLY" "$PLACEHOLDER" "$NODE_EXTRA_CA_CERTS" > marker; cat "$CURL_CA_BUNDLE" | grep -c bottle-test-ca >> marker; cp "$CURL_CA_BUNDLE" bundle',
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
      // The system roots (written while the setup was awaited), then the bottle CA.
      const roots = inspectHost({}).systemCaBundle;
      const head = roots ? `${fs.readFileSync(roots, "utf8").trimEnd()}\n` : "\n";
      expect(fs.readFileSync(path.join(project, "bundle"), "utf8")).toBe(
        head + fs.readFileSync(caCertPath, "utf8"),
      );
    } finally {
      late.resolve({ proxySocketPath: proxy.socketPath, caCertPath });
      proxy.close();
      for (const f of ["marker", "bundle"]) fs.rmSync(path.join(project, f), { force: true });
    }
  });

  it("starts stage 2 before the setup settles: the gate's unix attempt and status are in by then", async () => {
    const proxy = await proxySocket(403);
    const late = deferred();
    // A logger first on the agent's PATH that counts its runs, then makes the real attempt.
    const bin = hostDir("bin");
    fs.chmodSync(bin, 0o755); // the agent's account runs it
    const real = (process.env["PATH"] ?? "")
      .split(":")
      .map((d) => `${d}/logger`)
      .find((f) => f.startsWith("/") && fs.existsSync(f));
    fs.writeFileSync(
      path.join(bin, "logger"),
      `#!/bin/sh\necho ran >> ${project}/gate-ran\n${real ? `exec ${real} "$@"` : "echo 'Operation not permitted'; exit 1"}\n`,
      { mode: 0o755 },
    );
    try {
      const sb = startSandbox(
        {
          command: ["/bin/sh", "-c", "echo started > marker"],
          projectDir: project,
          hostEnv: { PATH: `${bin}:${process.env["PATH"]}` },
        },
        { stdio: "pipe", late: late.promise, checkEnv: () => ({ ok: true, detail: "clean" }) },
      );
      // The gate runs (and has made its unix attempt) while the setup is still pending. The
      // logger's `>>` creates the file before it writes its line: wait for the line.
      const ran = () => {
        try {
          return fs.readFileSync(path.join(project, "gate-ran"), "utf8").endsWith("\n");
        } catch {
          return false;
        }
      };
      for (let i = 0; i < 400 && !ran(); i++) {
        await new Promise((r) => setTimeout(r, 50));
      }
      expect(fs.readFileSync(path.join(project, "gate-ran"), "utf8")).toBe("ran\n");
      expect(fs.existsSync(path.join(project, "marker"))).toBe(false);
      late.resolve({ proxySocketPath: proxy.socketPath, caCertPath });
      const [report, exit] = await Promise.all([sb.probe, sb.exited]);
      expect(report.checks.filter((c) => !c.ok)).toEqual([]);
      expect(exit.code).toBe(0);
      // Once: the environment did not start the gate again.
      expect(fs.readFileSync(path.join(project, "gate-ran"), "utf8")).toBe("ran\n");
      expect(fs.readFileSync(path.join(project, "marker"), "utf8")).toBe("started\n");
    } finally {
      late.resolve({ proxySocketPath: proxy.socketPath, caCertPath });
      proxy.close();
      fs.rmSync(bin, { recursive: true, force: true });
      for (const f of ["gate-ran", "marker"]) fs.rmSync(path.join(project, f), { force: true });
    }
  });

  it("the agent gets exactly the final environment: odd values byte for byte, a variable the late one lacks absent", async () => {
    const proxy = await proxySocket(403);
    const late = deferred();
    // The host's variables as the sandbox reads them, at start and again when the setup arrives.
    const hostEnv: Record<string, string> = {
      PATH: process.env["PATH"] ?? "/usr/bin:/bin",
      TZ: "Europe/Paris",
      LANG: "C.UTF-8",
    };
    const spec = {
      command: ["/usr/bin/env", "-0"],
      projectDir: project,
      hostEnv,
      // The gate's own variable names, set at start and again by the setup.
      env: { u: "from the spec", x: "from the spec", SPEC_ONLY: "kept" },
    };
    const lateEnv: Record<string, string> = {
      u: "from the setup",
      x: "from the setup",
      v: "not the verdict",
      b: "not base64",
      quote: "it's 'quoted' '\\''",
      dquote: 'say "hi" \\" \\',
      subst: "$(id) `id` ${HOME} $HOME $((1+1))",
      newlines: "line one\nline two\n\n",
      ifs_like: " \t\n",
      empty: "",
      utf8: "é € 𝄞 \u0081\u0088 \u00ff",
      IFS: "/:= x",
      CDPATH: "/",
      ENV: "/etc/passwd",
      PS4: "+ $(id) ",
    };
    try {
      const sb = startSandbox(spec, {
        stdio: "pipe",
        late: late.promise,
        checkEnv: () => ({ ok: true, detail: "clean" }),
      });
      let out = Buffer.alloc(0);
      sb.stdout?.on("data", (d: Buffer) => {
        out = Buffer.concat([out, d]);
      });
      await new Promise((r) => setTimeout(r, 200));
      delete hostEnv["TZ"]; // in the launcher's environment, not in the final one
      late.resolve({ proxySocketPath: proxy.socketPath, caCertPath, env: lateEnv });
      const [report, exit] = await Promise.all([sb.probe, sb.exited]);
      expect(report.checks.filter((c) => !c.ok)).toEqual([]);
      expect(exit.code).toBe(0);
      const got: Record<string, string> = {};
      for (const entry of out.toString("utf8").split("\0")) {
        const eq = entry.indexOf("=");
        if (eq > 0) got[entry.slice(0, eq)] = entry.slice(eq + 1);
      }
      const want = {
        ...planSandbox(
          {
            ...spec,
            env: { ...spec.env, ...lateEnv },
            proxy: { socketPath: proxy.socketPath },
            caCertPath,
          },
          inspectHost({}),
          "/unused",
        ).env,
        PWD: project, // the shell's own, as when the environment came from spawn
      };
      expect(got["TZ"]).toBeUndefined();
      expect(got).toEqual(want);
    } finally {
      late.resolve({ proxySocketPath: proxy.socketPath, caCertPath });
      proxy.close();
    }
  });

  it("a late setup that never comes (lateTimeoutMs) or names a bad variable: exit 3, the agent never runs", async () => {
    const proxy = await proxySocket(403);
    try {
      const never = startSandbox(
        { command: ["/bin/sh", "-c", "echo started > marker"], projectDir: project },
        { stdio: "pipe", late: new Promise<LateSetup>(() => {}), lateTimeoutMs: 300 },
      );
      const bad = startSandbox(
        { command: ["/bin/sh", "-c", "echo started > marker"], projectDir: project },
        {
          stdio: "pipe",
          late: Promise.resolve({
            proxySocketPath: proxy.socketPath,
            caCertPath,
            env: { "BAD-NAME": "x" },
          }),
        },
      );
      for (const sb of [never, bad]) {
        const [report, exit] = await Promise.all([sb.probe, sb.exited]);
        expect(report.ok).toBe(false);
        expect(exit.code).toBe(3);
      }
      expect(fs.existsSync(path.join(project, "marker"))).toBe(false);
    } finally {
      proxy.close();
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
