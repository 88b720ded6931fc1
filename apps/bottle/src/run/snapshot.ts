import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import type { FrozenRecord } from "./sessions.ts";

/**
 * Who writes into the project: its owner. `bottle run` (and so a freeze) may run as root while the
 * project belongs to a user or to the agent's account; git objects, refs and restored files
 * written as root would leave the project with files its owner cannot change or delete. Off root,
 * the process can only write as itself: undefined (no switch).
 */
export interface ProjectWriter {
  uid: number;
  gid: number;
}

export function projectWriter(projectDir: string): ProjectWriter | undefined {
  if (typeof process.getuid !== "function" || process.getuid() !== 0) return undefined;
  const st = fs.statSync(projectDir);
  if (st.uid === 0) return undefined;
  return { uid: st.uid, gid: st.gid };
}

interface Run {
  writer: ProjectWriter | undefined;
  /** A private directory the writer owns: HOME for git, the temporary index. */
  scratch: string;
}

function scratchFor(prefix: string, writer: ProjectWriter | undefined): Run {
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  if (writer) fs.chownSync(scratch, writer.uid, writer.gid);
  return { writer, scratch };
}

function git(cwd: string, run: Run, args: string[], env: NodeJS.ProcessEnv = {}): string {
  return execFileSync("git", ["-c", "safe.directory=*", ...args], {
    cwd,
    encoding: "utf8",
    // HOME is the scratch directory: the writer may not read root's ~/.gitconfig (git fails on an
    // unreadable one), and the project's snapshot must not depend on root's settings.
    env: {
      PATH: process.env["PATH"] ?? "/usr/bin:/bin",
      HOME: run.scratch,
      XDG_CONFIG_HOME: run.scratch,
      ...env,
      GIT_TERMINAL_PROMPT: "0",
    },
    stdio: ["ignore", "pipe", "pipe"],
    ...(run.writer ? { uid: run.writer.uid, gid: run.writer.gid } : {}),
  }).trim();
}

function isGitRepo(dir: string, run: Run): boolean {
  try {
    return (
      git(dir, run, ["rev-parse", "--is-inside-work-tree"]) === "true" &&
      git(dir, run, ["rev-parse", "--show-toplevel"]) === fs.realpathSync(dir)
    );
  } catch {
    return false;
  }
}

/**
 * Snapshots the writable state of `projectDir` without touching it: a commit (tracked and untracked
 * files, through a temporary index) under `refs/bottlekit/freeze/<session>` when the project is a
 * git repository, else a tar archive under `archiveDir`. Git objects and the ref are written as
 * the project's owner (see `projectWriter`); the archive lives in bottlekit's home, not the project.
 */
export function snapshotProject(
  projectDir: string,
  sessionId: string,
  archiveDir: string,
): FrozenRecord["snapshot"] {
  const run = scratchFor("bottle-freeze-", projectWriter(projectDir));
  try {
    if (isGitRepo(projectDir, run)) {
      const env = {
        GIT_INDEX_FILE: path.join(run.scratch, "index"),
        GIT_AUTHOR_NAME: "bottlekit",
        GIT_AUTHOR_EMAIL: "bottlekit@localhost",
        GIT_COMMITTER_NAME: "bottlekit",
        GIT_COMMITTER_EMAIL: "bottlekit@localhost",
      };
      git(projectDir, run, ["add", "-A", "."], env);
      const tree = git(projectDir, run, ["write-tree"], env);
      let parent: string[] = [];
      try {
        parent = ["-p", git(projectDir, run, ["rev-parse", "--verify", "HEAD"])];
      } catch {}
      const commit = git(
        projectDir,
        run,
        ["commit-tree", tree, ...parent, "-m", `bottle freeze ${sessionId}`],
        env,
      );
      const ref = `refs/bottlekit/freeze/${sessionId}`;
      git(projectDir, run, ["update-ref", ref, commit]);
      return { kind: "git", ref, commit };
    }
  } finally {
    fs.rmSync(run.scratch, { recursive: true, force: true });
  }
  fs.mkdirSync(archiveDir, { recursive: true, mode: 0o700 });
  const file = path.join(archiveDir, `${sessionId}.tar`);
  execFileSync("tar", ["-cf", file, "-C", projectDir, "."], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  return { kind: "archive", file };
}

/**
 * Writes the snapshot's files back into the project (files created after it stay), as the
 * project's owner: restored files belong to it, and a symlink planted in the project cannot make
 * the restore write where its owner could not.
 */
export function restoreSnapshot(projectDir: string, snapshot: FrozenRecord["snapshot"]): void {
  const run = scratchFor("bottle-resume-", projectWriter(projectDir));
  try {
    if (snapshot.kind === "git") {
      const env = { GIT_INDEX_FILE: path.join(run.scratch, "index") };
      git(projectDir, run, ["read-tree", snapshot.commit], env);
      git(projectDir, run, ["checkout-index", "-a", "-f"], env);
      return;
    }
    // The archive sits in bottlekit's private home: this process opens it, tar reads stdin.
    const fd = fs.openSync(snapshot.file, "r");
    try {
      execFileSync("tar", ["-xf", "-", "-C", projectDir], {
        stdio: [fd, "ignore", "pipe"],
        ...(run.writer ? { uid: run.writer.uid, gid: run.writer.gid } : {}),
      });
    } finally {
      fs.closeSync(fd);
    }
  } finally {
    fs.rmSync(run.scratch, { recursive: true, force: true });
  }
}
