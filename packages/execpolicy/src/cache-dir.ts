/**
 * The per-user cache directory shared by the compiled-policy cache and the CLI's code cache, and
 * the file rules both follow: a cache file is trusted only when it is a regular file (never a
 * symlink) owned by the current user and not writable by group or others; it is written atomically
 * (temporary file of mode 0600, then rename) into a directory of mode 0700. Any failure is silent
 * and leaves nothing behind: a cache can only skip work.
 *
 * Trust: whoever can write this directory can change what execpolicy computes, exactly as whoever
 * can write the policy files can. Keep it outside what a bottled agent may write (it lives beside
 * ~/.codex in the user's home, under ~/.cache), or set `BOTTLEKIT_EXECPOLICY_CACHE_DIR=off`.
 */
import { randomBytes } from "node:crypto";
import {
  closeSync,
  constants,
  fstatSync,
  lstatSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  unlinkSync,
  writeFileSync,
} from "node:fs";
import { isAbsolute, join, resolve } from "node:path";

/** Environment variable naming the cache directory; `off` (or empty) disables every cache. */
export const CACHE_DIR_ENV = "BOTTLEKIT_EXECPOLICY_CACHE_DIR";

/**
 * The cache directory: `$BOTTLEKIT_EXECPOLICY_CACHE_DIR` (`off` or empty disables), else
 * `$XDG_CACHE_HOME/bottlekit/execpolicy` (when absolute, as the XDG spec requires), else
 * `$HOME/.cache/bottlekit/execpolicy`; undefined when none applies.
 */
export function cacheDirFromEnv(env: NodeJS.ProcessEnv, cwd = process.cwd()): string | undefined {
  const override = env[CACHE_DIR_ENV];
  if (override !== undefined) {
    return override === "" || override === "off" ? undefined : resolve(cwd, override);
  }
  const xdg = env.XDG_CACHE_HOME;
  if (xdg && isAbsolute(xdg)) return join(xdg, "bottlekit", "execpolicy");
  const home = env.HOME;
  return home && isAbsolute(home) ? join(home, ".cache", "bottlekit", "execpolicy") : undefined;
}

const uid = typeof process.getuid === "function" ? process.getuid() : undefined;

/** True for a file or directory that only the current user may have written. */
export function ownedAndPrivate(st: { uid: number; mode: number }): boolean {
  return (uid === undefined || st.uid === uid) && (st.mode & 0o022) === 0;
}

/**
 * The bytes of a trusted cache file (see the module comment), or undefined when it is missing,
 * not a regular file, foreign, writable by others or larger than `maxBytes`. Synchronous: it is
 * read before anything else can run.
 */
export function readPrivateFileSync(path: string, maxBytes: number): Buffer | undefined {
  let fd: number | undefined;
  try {
    fd = openSync(path, constants.O_RDONLY | (constants.O_NOFOLLOW ?? 0));
    const st = fstatSync(fd);
    if (!st.isFile() || !ownedAndPrivate(st) || st.size > maxBytes) return undefined;
    return readFileSync(fd);
  } catch {
    return undefined;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/**
 * Writes `data` to `dir/name` atomically (mode 0600, in a directory of mode 0700 that must be
 * owned by the current user). Returns false, leaving no partial file, on any failure. The file
 * system calls are synchronous: a cache entry is small, and a CLI run that waits for it would
 * otherwise spend more time handing each call to the thread pool than doing it.
 */
export async function writePrivateFileAtomic(
  dir: string,
  name: string,
  data: string | Uint8Array,
): Promise<boolean> {
  let tmp: string | undefined;
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const st = lstatSync(dir);
    if (!st.isDirectory() || !ownedAndPrivate(st)) return false;
    tmp = join(dir, `.${name}.${process.pid}.${randomBytes(6).toString("hex")}.tmp`);
    writeFileSync(tmp, data, { mode: 0o600, flag: "wx" });
    renameSync(tmp, join(dir, name));
    tmp = undefined;
    return true;
  } catch {
    if (tmp !== undefined) {
      try {
        unlinkSync(tmp);
      } catch {
        // already gone
      }
    }
    return false;
  }
}
