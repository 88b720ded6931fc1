/**
 * Content-addressed cache of compiled policy files, so a CLI run whose files have not changed never
 * loads zod or yaml (~90 ms of CPU for a YAML file) and never re-runs a large Starlark file.
 *
 * - Key: SHA-256 of a prefix naming this package's version, the normalised-format version and the
 *   file's format (Codex `.rules` or native), then the file's bytes. Any change to the file, to execpolicy or to the format gives another key, so
 *   an entry is never trusted across content changes.
 * - Value: `{ format, key, policy }`, where `policy` is the validated, normalised policy
 *   (`NormalizedNativePolicy`). Examples are still checked on every load.
 * - Entries are written atomically (temporary file, mode 0600, then rename) into a directory of
 *   mode 0700. An entry is used only when it is a regular file (not a symlink) owned by the current
 *   user, not writable by group or others, records the key it is stored under, and has exactly the
 *   expected shape. Anything else is ignored and rebuilt from the file: the cache can only skip
 *   work, never change a decision.
 * - Cache failures (read-only home, full disk) are silent: the policy is then built from source.
 */
import { createHash, randomBytes } from "node:crypto";
import { constants } from "node:fs";
import { lstat, mkdir, open, readdir, rename, stat, unlink, writeFile } from "node:fs/promises";
import { isAbsolute, join, resolve } from "node:path";
import pkg from "../package.json" with { type: "json" };
import {
  isNormalizedNativePolicy,
  NORMALIZED_FORMAT_VERSION,
  type NormalizedNativePolicy,
} from "./native-build.ts";

const FORMAT = "bottlekit-execpolicy-native-cache";
/** Entries above this size are not read (a policy this large is not worth the risk). */
const MAX_ENTRY_BYTES = 32 * 1024 * 1024;
/** After a write, the oldest entries beyond this count are removed. */
export const MAX_CACHE_ENTRIES = 256;

/** Environment variable naming the cache directory; `off` (or empty) disables the cache. */
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

/** The cache key of a policy file's bytes (hex SHA-256); the same bytes differ as `.rules` and `.yaml`. */
export function cacheKey(bytes: Uint8Array | string, format: "codex" | "native"): string {
  return createHash("sha256")
    .update(
      `${FORMAT}\0execpolicy@${pkg.version}\0format@${NORMALIZED_FORMAT_VERSION}\0${format}\0`,
    )
    .update(bytes)
    .digest("hex");
}

const uid = typeof process.getuid === "function" ? process.getuid() : undefined;

/** True for a file or directory that only the current user may have written. */
function ownedAndPrivate(st: { uid: number; mode: number }): boolean {
  return (uid === undefined || st.uid === uid) && (st.mode & 0o022) === 0;
}

const entryPath = (dir: string, key: string) => join(dir, `${key}.json`);

/** The cached normalised policy for `key`, or undefined (missing, foreign, corrupt: rebuild). */
export async function readCachedPolicy(
  dir: string,
  key: string,
): Promise<NormalizedNativePolicy | undefined> {
  let handle: Awaited<ReturnType<typeof open>> | undefined;
  try {
    handle = await open(entryPath(dir, key), constants.O_RDONLY | (constants.O_NOFOLLOW ?? 0));
    const st = await handle.stat();
    if (!st.isFile() || !ownedAndPrivate(st) || st.size > MAX_ENTRY_BYTES) return undefined;
    const doc: unknown = JSON.parse(await handle.readFile("utf8"));
    if (typeof doc !== "object" || doc === null) return undefined;
    const entry = doc as { format?: unknown; key?: unknown; policy?: unknown };
    if (entry.format !== FORMAT || entry.key !== key) return undefined;
    return isNormalizedNativePolicy(entry.policy) ? entry.policy : undefined;
  } catch {
    return undefined;
  } finally {
    await handle?.close().catch(() => undefined);
  }
}

/** Stores `policy` under `key`, atomically. Returns false (and leaves no partial entry) on any failure. */
export async function writeCachedPolicy(
  dir: string,
  key: string,
  policy: NormalizedNativePolicy,
): Promise<boolean> {
  let tmp: string | undefined;
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const st = await lstat(dir);
    if (!st.isDirectory() || !ownedAndPrivate(st)) return false;
    tmp = join(dir, `.${key}.${process.pid}.${randomBytes(6).toString("hex")}.tmp`);
    await writeFile(tmp, JSON.stringify({ format: FORMAT, key, policy }), {
      mode: 0o600,
      flag: "wx",
    });
    await rename(tmp, entryPath(dir, key));
    tmp = undefined;
    await prune(dir);
    return true;
  } catch {
    if (tmp !== undefined) await unlink(tmp).catch(() => undefined);
    return false;
  }
}

/** Keeps the newest `MAX_CACHE_ENTRIES` entries. */
async function prune(dir: string): Promise<void> {
  const names = (await readdir(dir)).filter((n) => /^[0-9a-f]{64}\.json$/.test(n));
  if (names.length <= MAX_CACHE_ENTRIES) return;
  const dated = await Promise.all(
    names.map(async (n) => ({
      n,
      t: await stat(join(dir, n)).then(
        (s) => s.mtimeMs,
        () => 0,
      ),
    })),
  );
  dated.sort((a, b) => b.t - a.t);
  await Promise.all(
    dated.slice(MAX_CACHE_ENTRIES).map(({ n }) => unlink(join(dir, n)).catch(() => undefined)),
  );
}
