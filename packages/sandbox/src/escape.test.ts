import { execFileSync, spawn } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { hostDir, projectDir, proxySocket, runIn } from "../test/helpers.ts";
import { which } from "./index.ts";

/**
 * Escape attempts from inside the sandbox. Each one must fail; each test also checks that the
 * target exists and is reachable from the host, so a passing test means the wall held.
 */
const node = process.execPath;
const SECRET = `bottle-test-secret-${process.pid}-${Date.now()}`;

/** Runs a Node snippet inside the sandbox and returns what it printed as JSON. */
async function inside(
  project: string,
  code: string,
  extra: { hostEnv?: Record<string, string | undefined> } = {},
): Promise<Record<string, unknown>> {
  const r = await runIn({
    command: [node, "-e", code],
    projectDir: project,
    probe: false,
    hostEnv: extra.hostEnv ?? { PATH: process.env["PATH"] },
  });
  expect(r.stderr).toBe("");
  return JSON.parse(r.stdout) as Record<string, unknown>;
}

const CONNECT = `
const net = require("net");
const tryConnect = (o) => new Promise((r) => { const s = net.connect(o); s.on("connect", () => { s.destroy(); r("connected"); }); s.on("error", (e) => r(e.code)); setTimeout(() => r("timeout"), 3000); });
`;

describe("escape attempts from inside the sandbox", () => {
  let project: string;
  let outside: string;
  beforeAll(() => {
    project = projectDir();
    outside = hostDir("outside");
    fs.chmodSync(outside, 0o777);
  });
  afterAll(() => {
    fs.rmSync(project, { recursive: true, force: true });
    fs.rmSync(outside, { recursive: true, force: true });
  });

  it("cannot open a direct TCP connection (to a host listener on loopback or a public address)", async () => {
    const server = net.createServer((c) => c.end("hello")).listen(0, "127.0.0.1");
    await new Promise((r) => server.on("listening", r));
    const port = (server.address() as net.AddressInfo).port;
    try {
      // The host can reach it.
      const fromHost = await new Promise<string>((r) =>
        net
          .connect(port, "127.0.0.1")
          .on("connect", () => r("connected"))
          .on("error", (e: NodeJS.ErrnoException) => r(String(e.code))),
      );
      expect(fromHost).toBe("connected");
      const out = await inside(
        project,
        `${CONNECT} (async () => console.log(JSON.stringify({ loop: await tryConnect({ host: "127.0.0.1", port: ${port} }), pub: await tryConnect({ host: "1.1.1.1", port: 443 }) })))();`,
      );
      expect(out["loop"]).toBe("ECONNREFUSED");
      expect(out["pub"]).not.toBe("connected");
    } finally {
      server.close();
    }
  });

  it("cannot resolve names", async () => {
    const out = await inside(
      project,
      `require("dns").promises.lookup("example.com").then((a) => console.log(JSON.stringify({ r: a.address })), (e) => console.log(JSON.stringify({ r: e.code })));`,
    );
    expect(out["r"]).toMatch(/^E[A-Z_]+$/);
  });

  it("cannot write outside the project, even where the host permissions would allow it", async () => {
    const out = await inside(
      project,
      `
      const fs = require("fs"); const r = {};
      for (const p of [${JSON.stringify(path.join(outside, "x"))}, "/etc/bottle-escape", "/usr/bottle-escape", ${JSON.stringify(path.join(path.dirname(project), "bottle-escape"))}]) {
        try { fs.writeFileSync(p, "x"); r[p] = "written"; } catch (e) { r[p] = e.code; }
      }
      console.log(JSON.stringify(r));`,
    );
    for (const [p, v] of Object.entries(out)) expect(`${p}: ${v}`).toMatch(/: E(ROFS|ACCES|PERM)$/);
    expect(fs.existsSync(path.join(outside, "x"))).toBe(false);
  });

  it("cannot connect to a host unix socket (the controller's), even one open to everyone", async () => {
    const sock = path.join(outside, "control.sock");
    const server = net.createServer((c) => c.end("ok")).listen(sock);
    await new Promise((r) => server.on("listening", r));
    fs.chmodSync(sock, 0o777);
    try {
      const out = await inside(
        project,
        `${CONNECT} tryConnect({ path: ${JSON.stringify(sock)} }).then((r) => console.log(JSON.stringify({ r })));`,
      );
      expect(out["r"]).toBe("EPERM");
    } finally {
      server.close();
    }
  });

  it("cannot reach the proxy socket itself except through the bridge", async () => {
    const proxy = await proxySocket(403);
    try {
      const r = await runIn({
        command: [
          node,
          "-e",
          `${CONNECT} tryConnect({ path: "/run/bottle-proxy.sock" }).then((r) => console.log(JSON.stringify({ r })));`,
        ],
        projectDir: project,
        probe: false,
        proxy: { socketPath: proxy.socketPath },
      });
      expect(JSON.parse(r.stdout)).toEqual({ r: "EPERM" });
    } finally {
      proxy.close();
    }
  });

  it("cannot drive a host tmux server through its socket", async () => {
    const tmux = which("tmux");
    expect(tmux, "tmux is needed for this test (apt-get install tmux)").toBeDefined();
    const sock = path.join(outside, "tmux.sock");
    const marker = path.join(outside, "tmux-escape");
    execFileSync(tmux as string, ["-S", sock, "new-session", "-d", "-s", "bottletest", "sleep 60"]);
    fs.chmodSync(sock, 0o777);
    try {
      execFileSync(tmux as string, ["-S", sock, "has-session", "-t", "bottletest"]);
      const r = await runIn({
        command: ["/bin/sh", "-c", `${tmux} -S ${sock} run-shell 'touch ${marker}'; echo "rc=$?"`],
        projectDir: project,
        probe: false,
      });
      expect(r.stdout.trim()).not.toBe("rc=0");
      expect(fs.existsSync(marker)).toBe(false);
    } finally {
      try {
        execFileSync(tmux as string, ["-S", sock, "kill-server"]);
      } catch {}
    }
  });

  it("cannot read another user's files", async () => {
    const privateFile = path.join(outside, "private");
    fs.writeFileSync(privateFile, SECRET, { mode: 0o600 });
    const owner = fs.statSync(privateFile).uid;
    const out = await inside(
      project,
      `
      const fs = require("fs"); const r = {};
      for (const p of [${JSON.stringify(privateFile)}, "/etc/shadow"]) { try { fs.readFileSync(p); r[p] = "read"; } catch (e) { r[p] = e.code; } }
      r.uid = process.getuid();
      console.log(JSON.stringify(r));`,
    );
    expect(out["uid"]).not.toBe(owner);
    expect(out[privateFile]).toBe("EACCES");
    expect(out["/etc/shadow"]).toBe("EACCES");
  });

  it("cannot ptrace a host process", async () => {
    const victim = spawn("sleep", ["60"], { stdio: "ignore" });
    const strace = which("strace");
    expect(strace, "strace is needed for this test (apt-get install strace)").toBeDefined();
    try {
      const r = await runIn({
        command: [
          "/bin/sh",
          "-c",
          `timeout 5 ${strace} -p ${victim.pid} -e trace=none 2>&1; echo "rc=$?"`,
        ],
        projectDir: project,
        probe: false,
      });
      expect(r.stdout).toMatch(/No such process|Operation not permitted/);
      expect(r.stdout).toMatch(/rc=1\n$/);
      // The host's pid is another process inside the sandbox's pid namespace, or none at all.
      expect(fs.readFileSync(`/proc/${victim.pid}/status`, "utf8")).not.toMatch(
        /TracerPid:\s*[1-9]/,
      );
    } finally {
      victim.kill("SIGKILL");
    }
  });

  it("cannot find a host credential in /proc/*/environ or /proc/*/cmdline", async () => {
    process.env["BOTTLE_TEST_SECRET"] = SECRET;
    try {
      const out = await inside(
        project,
        `
        const fs = require("fs"); const hits = []; let seen = 0;
        const secret = ${JSON.stringify([...SECRET].reverse().join(""))}.split("").reverse().join("");
        for (const pid of fs.readdirSync("/proc").filter((n) => /^\\d+$/.test(n))) {
          for (const f of ["environ", "cmdline"]) {
            try { const t = fs.readFileSync("/proc/" + pid + "/" + f, "latin1"); seen++; if (t.includes(secret)) hits.push(pid + "/" + f); } catch {}
          }
        }
        console.log(JSON.stringify({ hits, seen, self: process.env.BOTTLE_TEST_SECRET ?? null }));`,
        { hostEnv: process.env },
      );
      expect(out["seen"]).toBeGreaterThan(0);
      expect(out["hits"]).toEqual([]);
      expect(out["self"]).toBeNull();
    } finally {
      delete process.env["BOTTLE_TEST_SECRET"];
    }
  });

  it("does not inherit stray descriptors of the host process", async () => {
    const file = path.join(outside, "stray");
    fs.writeFileSync(file, "x");
    const fd = fs.openSync(file, "r");
    try {
      const r = await runIn({
        command: ["/bin/sh", "-c", "ls /proc/self/fd"],
        projectDir: project,
        probe: false,
      });
      const fds = r.stdout.trim().split(/\s+/).map(Number);
      expect(fds.filter((n) => n > 3)).toEqual([]);
    } finally {
      fs.closeSync(fd);
    }
  });
});

describe("protected paths inside the project", () => {
  it("keeps .git/hooks read-only while the rest of the project is writable", async () => {
    const project = projectDir();
    try {
      fs.mkdirSync(path.join(project, ".git", "hooks"), { recursive: true });
      // Owned by the agent's account: only the read-only bind can stop the write.
      const { uid, gid } = fs.statSync(project);
      fs.chownSync(path.join(project, ".git"), uid, gid);
      fs.chownSync(path.join(project, ".git", "hooks"), uid, gid);
      const r = await runIn({
        command: [
          "/bin/sh",
          "-c",
          "echo x > .git/hooks/pre-commit; echo rc=$?; echo y > ok.txt; touch .git/other && echo git-writable",
        ],
        projectDir: project,
        protect: [path.join(project, ".git", "hooks"), path.join(project, ".git", "config")],
        probe: false,
      });
      expect(r.stdout).toMatch(/rc=[1-9]/);
      expect(fs.existsSync(path.join(project, ".git", "hooks", "pre-commit"))).toBe(false);
      expect(fs.readFileSync(path.join(project, "ok.txt"), "utf8")).toBe("y\n");
      expect(r.stdout).toContain("git-writable");
    } finally {
      fs.rmSync(project, { recursive: true, force: true });
    }
  });
});

describe("read-only mounts in the home", () => {
  it("an agent cannot replace, remove or edit a mounted settings file", async () => {
    const project = projectDir();
    const settings = path.join(hostDir("settings"), "settings.json");
    fs.writeFileSync(settings, '{"hooks":{}}\n', { mode: 0o644 });
    fs.chmodSync(path.dirname(settings), 0o755);
    try {
      const r = await runIn({
        command: [
          "/bin/sh",
          "-c",
          'cd "$HOME/.claude" && { echo "{}" > settings.json; echo "w=$?"; echo "{}" > new.json && mv -f new.json settings.json; echo "mv=$?"; rm -f settings.json; echo "rm=$?"; cat settings.json; }',
        ],
        projectDir: project,
        mounts: [{ source: settings, target: "/home/bottle/.claude/settings.json" }],
        probe: false,
      });
      expect(r.stdout).toMatch(/w=[1-9]/);
      expect(r.stdout).toMatch(/mv=[1-9]/);
      expect(r.stdout).toMatch(/rm=[1-9]/);
      expect(r.stdout).toContain('{"hooks":{}}');
    } finally {
      fs.rmSync(project, { recursive: true, force: true });
      fs.rmSync(path.dirname(settings), { recursive: true, force: true });
    }
  });
});
