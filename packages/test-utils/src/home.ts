import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";

/** A throw-away `$BOTTLEKIT_HOME` with the standard layout. */
export interface TempHome {
  /** Absolute path of the home directory. */
  readonly dir: string;
  /** An environment with `BOTTLEKIT_HOME` pointing at `dir` (merge it into a child's env). */
  readonly env: { BOTTLEKIT_HOME: string };
  /** Writes `content` to `relPath` inside the home, creating directories; returns the path. */
  write(relPath: string, content: string): Promise<string>;
  /** Removes the directory and everything in it. */
  cleanup(): Promise<void>;
}

/** Creates a temp home with `bottles/`, `agents/` and `state/` (like `~/.bottlekit`). */
export async function createTempHome(prefix = "bottlekit-home-"): Promise<TempHome> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  await Promise.all(["bottles", "agents", "state"].map((d) => mkdir(join(dir, d))));
  return {
    dir,
    env: { BOTTLEKIT_HOME: dir },
    async write(relPath, content) {
      const path = join(dir, relPath);
      await mkdir(dirname(path), { recursive: true });
      await writeFile(path, content);
      return path;
    },
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
}

/** Runs `fn` with a temp home and removes it afterwards, even when `fn` throws. */
export async function withTempHome<T>(fn: (home: TempHome) => Promise<T>): Promise<T> {
  const home = await createTempHome();
  try {
    return await fn(home);
  } finally {
    await home.cleanup();
  }
}
