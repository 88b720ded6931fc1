import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { projectWriter, restoreSnapshot, snapshotProject } from "./snapshot.ts";
import { agentProject } from "./test-helpers.ts";

let project: string;
let archives: string;
beforeEach(() => {
  // Owned by the agent's account when the tests run as root (as in CI), else by the test user.
  project = agentProject();
  archives = fs.mkdtempSync(path.join(os.tmpdir(), "bottle-snapshot-test-"));
});
afterEach(() => {
  fs.rmSync(project, { recursive: true, force: true });
  fs.rmSync(archives, { recursive: true, force: true });
});

function git(...args: string[]): string {
  return execFileSync("git", ["-c", "safe.directory=*", "-C", project, ...args], {
    encoding: "utf8",
  }).trim();
}

function owners(dir: string): Map<string, number> {
  const out = new Map<string, number>();
  const walk = (p: string) => {
    const st = fs.lstatSync(p);
    out.set(path.relative(project, p) || ".", st.uid);
    if (st.isDirectory()) for (const n of fs.readdirSync(p)) walk(path.join(p, n));
  };
  walk(dir);
  return out;
}

function chownProject(): void {
  const st = fs.statSync(project);
  execFileSync("chown", ["-R", "-h", `${st.uid}:${st.gid}`, project]);
}

describe("freeze snapshots are written as the project's owner", () => {
  it("a git snapshot adds objects and a ref owned by the project's owner; resume restores files as it", () => {
    git("init", "-q");
    fs.writeFileSync(path.join(project, "tracked.txt"), "v1\n");
    git("add", "tracked.txt");
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "init");
    chownProject();
    const owner = fs.statSync(project).uid;
    fs.writeFileSync(path.join(project, "tracked.txt"), "v2\n");
    fs.writeFileSync(path.join(project, "new.txt"), "new\n");
    chownProject();
    const before = new Set(owners(path.join(project, ".git")).keys());

    const snap = snapshotProject(project, "s1", archives);
    expect(snap.kind).toBe("git");
    expect(git("show", "refs/bottlekit/freeze/s1:new.txt")).toBe("new");
    expect(git("show", "refs/bottlekit/freeze/s1:tracked.txt")).toBe("v2");
    const after = owners(path.join(project, ".git"));
    const added = [...after.keys()].filter((p) => !before.has(p));
    expect(added.length).toBeGreaterThan(0);
    expect([...after].filter(([, uid]) => uid !== owner)).toEqual([]);
    // The project's index and work tree are untouched.
    expect(git("status", "--porcelain")).toContain("?? new.txt");

    fs.rmSync(path.join(project, "new.txt"));
    fs.writeFileSync(path.join(project, "tracked.txt"), "v3\n");
    chownProject();
    restoreSnapshot(project, snap);
    expect(fs.readFileSync(path.join(project, "new.txt"), "utf8")).toBe("new\n");
    expect(fs.readFileSync(path.join(project, "tracked.txt"), "utf8")).toBe("v2\n");
    expect([...owners(project)].filter(([, uid]) => uid !== owner)).toEqual([]);
  });

  it("an archive snapshot restores files owned by the project's owner", () => {
    fs.mkdirSync(path.join(project, "src"));
    fs.writeFileSync(path.join(project, "src", "a.txt"), "a\n");
    chownProject();
    const owner = fs.statSync(project).uid;
    const snap = snapshotProject(project, "s2", archives);
    expect(snap.kind).toBe("archive");
    fs.rmSync(path.join(project, "src"), { recursive: true });
    restoreSnapshot(project, snap);
    expect(fs.readFileSync(path.join(project, "src", "a.txt"), "utf8")).toBe("a\n");
    expect([...owners(project)].filter(([, uid]) => uid !== owner)).toEqual([]);
  });

  it("as root, the writer is the project's owner; a root-owned project or another caller is written as is", () => {
    const uid = typeof process.getuid === "function" ? process.getuid() : -1;
    const st = fs.statSync(project);
    const writer = projectWriter(project);
    if (uid === 0 && st.uid !== 0) expect(writer).toEqual({ uid: st.uid, gid: st.gid });
    else expect(writer).toBeUndefined();
    expect(projectWriter("/")).toBeUndefined();
  });
});
