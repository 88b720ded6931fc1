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
import { createHash } from "node:crypto";
import { readdirSync, statSync, unlinkSync } from "node:fs";
import { join } from "node:path";
import pkg from "../package.json" with { type: "json" };
import { readPrivateFileSync, writePrivateFileAtomic } from "./cache-dir.ts";
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

/** The cache key of a policy file's bytes (hex SHA-256); the same bytes differ as `.rules` and `.yaml`. */
export function cacheKey(bytes: Uint8Array | string, format: "codex" | "native"): string {
  return createHash("sha256")
    .update(
      `${FORMAT}\0execpolicy@${pkg.version}\0format@${NORMALIZED_FORMAT_VERSION}\0${format}\0`,
    )
    .update(bytes)
    .digest("hex");
}

const entryPath = (dir: string, key: string) => join(dir, `${key}.json`);

/** The cached normalised policy for `key`, or undefined (missing, foreign, corrupt: rebuild). */
export async function readCachedPolicy(
  dir: string,
  key: string,
): Promise<NormalizedNativePolicy | undefined> {
  const bytes = readPrivateFileSync(entryPath(dir, key), MAX_ENTRY_BYTES);
  if (bytes === undefined) return undefined;
  try {
    const doc: unknown = JSON.parse(bytes.toString("utf8"));
    if (typeof doc !== "object" || doc === null) return undefined;
    const entry = doc as { format?: unknown; key?: unknown; policy?: unknown };
    if (entry.format !== FORMAT || entry.key !== key) return undefined;
    return isNormalizedNativePolicy(entry.policy) ? entry.policy : undefined;
  } catch {
    return undefined;
  }
}

/** Stores `policy` under `key`, atomically. Returns false (and leaves no partial entry) on any failure. */
export async function writeCachedPolicy(
  dir: string,
  key: string,
  policy: NormalizedNativePolicy,
): Promise<boolean> {
  const ok = await writePrivateFileAtomic(
    dir,
    `${key}.json`,
    JSON.stringify({ format: FORMAT, key, policy }),
  );
  if (ok) {
    try {
      prune(dir);
    } catch {
      // pruning is housekeeping: a failure leaves the entry written
    }
  }
  return ok;
}

/** Keeps the newest `MAX_CACHE_ENTRIES` entries (synchronous, as the write before it). */
function prune(dir: string): void {
  const names = readdirSync(dir).filter((n) => /^[0-9a-f]{64}\.json$/.test(n));
  if (names.length <= MAX_CACHE_ENTRIES) return;
  const mtime = (n: string): number => {
    try {
      return statSync(join(dir, n)).mtimeMs;
    } catch {
      return 0;
    }
  };
  const dated = names.map((n) => ({ n, t: mtime(n) }));
  dated.sort((a, b) => b.t - a.t);
  for (const { n } of dated.slice(MAX_CACHE_ENTRIES)) {
    try {
      unlinkSync(join(dir, n));
    } catch {
      // removed by another process meanwhile
    }
  }
}
