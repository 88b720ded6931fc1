import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { openStore } from "@bottlekit/budget-store";
import type { TempHome } from "@bottlekit/test-utils";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { bottle, homeWith, md } from "../../test/helpers.ts";
import { listSessions, readAudit, readFrozen } from "../run/sessions.ts";
import {
  agentProject,
  collect,
  runBottle as runBottleOnce,
  spawnBottle,
  waitFor,
} from "../run/test-helpers.ts";
import { operatorName } from "../store.ts";
import { localRuns, storeActions } from "./dashboard.ts";

let home: TempHome;
let project: string;
beforeEach(async () => {
  home = await homeWith({
    "bottles/dev.md": md(
      "agent_provider:\n  command: [/bin/sh, -c]\ncutoff: kill\negress:\n  routes:\n    - host: declared.test",
    ),
    "agents/coder.md": md("bottle: dev"),
  });
  project = agentProject();
});
afterEach(async () => {
  await home.cleanup();
  fs.rmSync(project, { recursive: true, force: true });
});

/** The store's audit trail for the home: [action, by, reason]. */
async function auditTrail(dir: string): Promise<string[][]> {
  const store = await openStore(undefined, { home: dir });
  try {
    return (await store.actions()).map((a) => [a.action, a.by, a.reason]);
  } finally {
    await store.close();
  }
}

function treeAlive(pid: number): boolean {
  try {
    return !/\) Z /.test(fs.readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return false;
  }
}

// Each test starts `bottle` from source (tsx) and a sandbox: generous bounds for loaded machines.
describe("live control of a bottled agent", { timeout: 120_000 }, () => {
  it("bottle ps lists the session; bottle stop stops the tree (exit 3, audited)", async () => {
    const child = collect(
      spawnBottle(["run", "--home", home.dir, "--cwd", project, "--", "/bin/sleep", "60"], {}),
    );
    const session = await waitFor("the session record", () => listSessions(home.dir)[0]);
    await waitFor(
      "the agent",
      () => fs.existsSync(`/proc/${session.sandboxPid}`) && child.err().includes("startup probe"),
    );
    const ps = await bottle(["ps", "--json", "--home", home.dir], {});
    expect(ps.code).toBe(0);
    expect(
      (JSON.parse(ps.out) as { sessions: { sessionId: string }[] }).sessions.map(
        (s) => s.sessionId,
      ),
    ).toEqual([session.sessionId]);
    const stop = await bottle(["stop", session.sessionId.slice(0, 8), "--home", home.dir], {});
    expect(stop.code).toBe(0);
    const done = await child.done;
    expect(done.code).toBe(3);
    expect(treeAlive(session.sandboxPid)).toBe(false);
    expect(readAudit(home.dir).map((a) => a.action)).toContain("stop");
    expect(listSessions(home.dir)).toEqual([]);
    // In the store's audit trail, under the operator's name (not the signal's): a kill of the
    // session, then a restore (a session stop does not keep the bottle cut off).
    const trail = await auditTrail(home.dir);
    expect(trail.map((a) => a[0])).toEqual(["kill", "restore"]);
    expect(trail[0]?.[1]).toBe(operatorName({}));
    expect(trail[0]?.[2]).toBe(`session ${session.sessionId}: bottle stop (SIGTERM)`);
  });

  it("a kill cutoff recorded in the store stops the agent (the bottle's policy)", async () => {
    const child = collect(
      spawnBottle(["run", "coder", "--home", home.dir, "--cwd", project, "--", "sleep 60"], {}),
    );
    const session = await waitFor("the session record", () => listSessions(home.dir)[0]);
    await waitFor("the probe", () => child.err().includes("startup probe"));
    const store = await openStore(undefined, { home: home.dir });
    try {
      await store.cutOff("dev", { policy: "kill", by: "test", reason: "budget spent" });
    } finally {
      await store.close();
    }
    const done = await child.done;
    expect(done.code).toBe(3);
    expect(treeAlive(session.sandboxPid)).toBe(false);
    const entry = readAudit(home.dir).find((a) => a.action === "kill");
    expect(entry?.reason).toBe("budget spent");
  });

  it("cutoff drops the session's routes while the agent keeps running", async () => {
    const agent = `
      const net = require("net"); const fs = require("fs");
      let last = "";
      const tick = () => {
        if (fs.existsSync("stop")) process.exit(0);
        const s = net.connect(3128, "127.0.0.1", () => s.write("CONNECT declared.test:443 HTTP/1.1\\r\\nHost: declared.test:443\\r\\n\\r\\n"));
        s.once("data", (d) => { const line = String(d).split("\\r\\n")[0]; if (line !== last) { last = line; console.log(line); } s.destroy(); setTimeout(tick, 100); });
        s.on("error", () => setTimeout(tick, 100));
      };
      tick();`;
    const child = collect(
      spawnBottle(
        [
          "run",
          "coder",
          "--home",
          home.dir,
          "--cwd",
          project,
          "--",
          `exec ${process.execPath} -e '${agent.replace(/'/g, "'\\''")}'`,
        ],
        {},
      ),
    );
    const session = await waitFor("the session record", () => listSessions(home.dir)[0]);
    await waitFor("a first answer", () => /^HTTP\/1\.1 /m.test(child.out()));
    const before = child.out().trim().split("\n")[0] ?? "";
    expect(before).not.toMatch(/ 403 /);
    const cut = await bottle(["stop", "--cutoff", session.sessionId, "--home", home.dir], {});
    expect(cut.code).toBe(0);
    await waitFor("a refusal", () => / 403 /.test(child.out()));
    expect(treeAlive(session.sandboxPid)).toBe(true);
    await waitFor("the session log", () => readAudit(home.dir).some((a) => a.action === "cutoff"));
    let trail: string[][] = [];
    for (let i = 0; i < 400 && trail.length < 2; i++) {
      trail = await auditTrail(home.dir);
      if (trail.length < 2) await new Promise((r) => setTimeout(r, 50));
    }
    expect(trail.map((a) => a[0])).toEqual(["cutoff", "restore"]);
    expect(trail[0]?.[2]).toBe(`session ${session.sessionId}: bottle stop --cutoff`);
    fs.writeFileSync(path.join(project, "stop"), "");
    const done = await child.done;
    expect(done.code).toBe(0);
  });

  it("freeze snapshots a git project under a ref and stops the tree; run --resume restores it", async () => {
    const git = (...args: string[]) =>
      execFileSync("git", ["-c", "safe.directory=*", "-C", project, ...args], {
        encoding: "utf8",
      }).trim();
    git("init", "-q");
    fs.writeFileSync(path.join(project, "tracked.txt"), "v1\n");
    git("add", "tracked.txt");
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "init");
    execFileSync("chown", [
      "-R",
      `${fs.statSync(project).uid}:${fs.statSync(project).gid}`,
      project,
    ]);
    const script = "test -f work.txt && exit 0; echo work-in-progress > work.txt; sleep 60";
    const child = collect(
      spawnBottle(["run", "--home", home.dir, "--cwd", project, "--", "/bin/sh", "-c", script], {}),
    );
    const session = await waitFor("the session record", () => listSessions(home.dir)[0]);
    await waitFor("the agent's work", () => fs.existsSync(path.join(project, "work.txt")));
    const freeze = await bottle(["freeze", session.sessionId, "--home", home.dir], {});
    expect(freeze.code).toBe(0);
    const done = await child.done;
    expect(done.code).toBe(3);
    expect(treeAlive(session.sandboxPid)).toBe(false);
    const frozen = readFrozen(home.dir, session.sessionId);
    expect(frozen?.snapshot.kind).toBe("git");
    expect(git("show", `refs/bottlekit/freeze/${session.sessionId}:work.txt`)).toBe(
      "work-in-progress",
    );
    fs.rmSync(path.join(project, "work.txt"));
    const resumed = collect(
      spawnBottle(["run", "--resume", session.sessionId, "--home", home.dir], {}),
    );
    const r = await resumed.done;
    expect(r.code).toBe(0);
    expect(fs.readFileSync(path.join(project, "work.txt"), "utf8")).toBe("work-in-progress\n");
    expect(readAudit(home.dir).map((a) => a.action)).toEqual(
      expect.arrayContaining(["freeze", "resume"]),
    );
    // The store: the bottle was frozen by the operator, and the resume lifted it.
    expect((await auditTrail(home.dir)).map((a) => [a[0], a[2]])).toEqual([
      ["freeze", `session ${session.sessionId}: bottle freeze`],
      ["restore", `session ${session.sessionId}: bottle run --resume`],
    ]);
  });

  it("a freeze cutoff recorded in the store archives a non-git project and stops the tree", async () => {
    const child = collect(
      spawnBottle(
        [
          "run",
          "coder",
          "--home",
          home.dir,
          "--cwd",
          project,
          "--",
          "echo state > state.txt; sleep 60",
        ],
        {},
      ),
    );
    const session = await waitFor("the session record", () => listSessions(home.dir)[0]);
    await waitFor("the agent's state", () => fs.existsSync(path.join(project, "state.txt")));
    const store = await openStore(undefined, { home: home.dir });
    try {
      await store.cutOff("dev", { policy: "freeze", by: "test", reason: "budget spent" });
    } finally {
      await store.close();
    }
    const done = await child.done;
    expect(done.code).toBe(3);
    expect(treeAlive(session.sandboxPid)).toBe(false);
    const frozen = readFrozen(home.dir, session.sessionId);
    expect(frozen?.snapshot.kind).toBe("archive");
    const file = frozen?.snapshot.kind === "archive" ? frozen.snapshot.file : "";
    expect(execFileSync("tar", ["-tf", file], { encoding: "utf8" })).toContain("./state.txt");
    // The bottle stays cut off: the next run is refused with 3 until an operator restores it.
    const again = await runBottleOnce(
      ["run", "coder", "--home", home.dir, "--cwd", project, "--", "true"],
      {},
    );
    expect(again.code).toBe(3);
    expect(again.err).toContain("is cut off");
  });

  it("the dashboard's k stops the bottle's live run (signalled, as bottle stop does) and the store records it once", async () => {
    const child = collect(
      spawnBottle(["run", "coder", "--home", home.dir, "--cwd", project, "--", "sleep 60"], {}),
    );
    const session = await waitFor("the session record", () => listSessions(home.dir)[0]);
    await waitFor("the probe", () => child.err().includes("startup probe"));
    const store = await openStore(undefined, { home: home.dir });
    try {
      const actions = storeActions(store, { USER: "ops" }, undefined, await localRuns(home.dir));
      expect(await actions.cutOff("dev", "kill")).toBe(
        "dev killed (kill) by ops; 1 run told to stop",
      );
    } finally {
      await store.close();
    }
    const done = await child.done;
    expect(done.code).toBe(3);
    expect(treeAlive(session.sandboxPid)).toBe(false);
    expect(await auditTrail(home.dir)).toEqual([["kill", "ops", "dashboard: kill"]]);
  });

  it("the dashboard's f freezes a live run it has no session record of (another home, the same store)", async () => {
    const other = await homeWith({});
    const storeFile = path.join(other.dir, "shared.db");
    try {
      const child = collect(
        spawnBottle(
          [
            "run",
            "coder",
            "--home",
            home.dir,
            "--cwd",
            project,
            "--",
            "echo state > state.txt; sleep 60",
          ],
          { BOTTLEKIT_STORE: storeFile },
        ),
      );
      const session = await waitFor("the session record", () => listSessions(home.dir)[0]);
      await waitFor("the agent's state", () => fs.existsSync(path.join(project, "state.txt")));
      const store = await openStore(`sqlite:${storeFile}`);
      try {
        const runs = await localRuns(other.dir);
        expect(runs.list()).toEqual([]);
        const actions = storeActions(store, { USER: "ops" }, undefined, runs);
        expect(await actions.cutOff("dev", "freeze")).toBe("dev frozen (freeze) by ops");
      } finally {
        await store.close();
      }
      const done = await child.done;
      expect(done.code).toBe(3);
      expect(done.err).toContain("frozen (dashboard: freeze)");
      expect(treeAlive(session.sandboxPid)).toBe(false);
      expect(readFrozen(home.dir, session.sessionId)?.snapshot.kind).toBe("archive");
    } finally {
      await other.cleanup();
    }
  });

  it("Ctrl-C (SIGINT) stops the tree and exits 130", async () => {
    const proc = spawnBottle(
      ["run", "--home", home.dir, "--cwd", project, "--", "/bin/sleep", "60"],
      {},
    );
    const child = collect(proc);
    const session = await waitFor("the session record", () => listSessions(home.dir)[0]);
    await waitFor("the probe", () => child.err().includes("startup probe"));
    proc.kill("SIGINT");
    const done = await child.done;
    expect(done.code).toBe(130);
    expect(treeAlive(session.sandboxPid)).toBe(false);
  });
});
