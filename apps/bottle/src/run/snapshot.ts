import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import type { FrozenRecord } from "./sessions.ts";

function git(cwd: string, args: string[], env: NodeJS.ProcessEnv = {}): string {
  return execFileSync("git", ["-c", "safe.directory=*", ...args], {
    cwd,
    encoding: "utf8",
    env: { ...process.env, ...env, GIT_TERMINAL_PROMPT: "0" },
    stdio: ["ignore", "pipe", "pipe"],
  }).trim();
}

function isGitRepo(dir: string): boolean {
  try {
    return (
      git(dir, ["rev-parse", "--is-inside-work-tree"]) === "true" &&
      git(dir, ["rev-parse", "--show-toplevel"]) === fs.realpathSync(dir)
    );
  } catch {
    return false;
  }
}

/**
 * Snapshots the writable state of `projectDir` without touching it: a commit (tracked and untracked
 * files, through a temporary index) under `refs/bottlekit/freeze/<session>` when the project is a
 * git repository, else a tar archive under `archiveDir`.
 */
export function snapshotProject(
  projectDir: string,
  sessionId: string,
  archiveDir: string,
): FrozenRecord["snapshot"] {
  if (isGitRepo(projectDir)) {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "bottle-freeze-"));
    try {
      const env = {
        GIT_INDEX_FILE: path.join(tmp, "index"),
        GIT_AUTHOR_NAME: "bottlekit",
        GIT_AUTHOR_EMAIL: "bottlekit@localhost",
        GIT_COMMITTER_NAME: "bottlekit",
        GIT_COMMITTER_EMAIL: "bottlekit@localhost",
      };
      git(projectDir, ["add", "-A", "."], env);
      const tree = git(projectDir, ["write-tree"], env);
      let parent: string[] = [];
      try {
        parent = ["-p", git(projectDir, ["rev-parse", "--verify", "HEAD"])];
      } catch {}
      const commit = git(
        projectDir,
        ["commit-tree", tree, ...parent, "-m", `bottle freeze ${sessionId}`],
        env,
      );
      const ref = `refs/bottlekit/freeze/${sessionId}`;
      git(projectDir, ["update-ref", ref, commit]);
      return { kind: "git", ref, commit };
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  }
  fs.mkdirSync(archiveDir, { recursive: true, mode: 0o700 });
  const file = path.join(archiveDir, `${sessionId}.tar`);
  execFileSync("tar", ["-cf", file, "-C", projectDir, "."], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  return { kind: "archive", file };
}

/** Writes the snapshot's files back into the project (files created after it stay). */
export function restoreSnapshot(projectDir: string, snapshot: FrozenRecord["snapshot"]): void {
  if (snapshot.kind === "git") {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "bottle-resume-"));
    try {
      const env = { GIT_INDEX_FILE: path.join(tmp, "index") };
      git(projectDir, ["read-tree", snapshot.commit], env);
      git(projectDir, ["checkout-index", "-a", "-f"], env);
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
    return;
  }
  execFileSync("tar", ["-xf", snapshot.file, "-C", projectDir], {
    stdio: ["ignore", "ignore", "pipe"],
  });
}
