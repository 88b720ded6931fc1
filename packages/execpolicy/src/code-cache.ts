/**
 * Runs the CLI bundle (one CommonJS file) with V8's code cache, so a CLI run does not compile the
 * same ~800 KB of JavaScript (commander, yaml, zod, web-tree-sitter and execpolicy) again: the
 * bytecode of every function a run used is stored after it and handed to V8 on the next run.
 * Measured on a 2-core machine: about 25 ms less per `check` on Node 20 (startup is ~60 ms).
 *
 * - The cache lives in the execpolicy cache directory (see `cache-dir.ts`; `off` disables it), one
 *   file per bundle path, Node version and architecture. Its header records the bundle's size and
 *   mtime, the SHA-256 of the payload and the features whose code it holds; a file whose header,
 *   checksum or owner does not match is ignored (and V8 rejects data built for another V8 or other
 *   flags). A miss only costs the compile the run would have done anyway.
 * - A run that used a feature the cache lacks (a YAML policy, the bash parser, another command)
 *   writes the cache again after it finished, now with that feature's code as well, so the cache
 *   converges after a few distinct runs and is then only read.
 *
 * The library never uses this: it is for the `execpolicy` bin only.
 */
import { createHash } from "node:crypto";
import { readdirSync, readFileSync, statSync, unlinkSync } from "node:fs";
import { createRequire } from "node:module";
import { basename, dirname, join } from "node:path";
import { Script } from "node:vm";
import { readPrivateFileSync, writePrivateFileAtomic } from "./cache-dir.ts";

const MAGIC = "bottlekit-execpolicy-code-cache/1\n";
/** Cache files above this size are not read. */
const MAX_CACHE_BYTES = 64 * 1024 * 1024;

interface Header {
  size: number;
  mtimeMs: number;
  sha256: string;
  features: string[];
}

export interface CodeCachedModule<T> {
  /** `module.exports` of the bundle. */
  readonly exports: T;
  /** True when V8 accepted the cached code for this run. */
  readonly cacheHit: boolean;
  /** The cache file, or undefined when caching is off. */
  readonly cacheFile: string | undefined;
  /**
   * After the run: stores the code compiled so far when there was no usable cache or when
   * `features` names code the cache does not hold yet. Resolves to true when a file was written.
   */
  save(features: readonly string[]): Promise<boolean>;
}

/** The cache file name for `bundle` under the running Node. */
export function codeCacheName(bundle: string): string {
  const id = createHash("sha256")
    .update(`${bundle}\0${process.version}\0${process.versions.v8}\0${process.arch}`)
    .digest("hex")
    .slice(0, 24);
  return `code-${basename(bundle).replace(/[^A-Za-z0-9.-]/g, "_")}-${id}.v8cache`;
}

function sha256(data: Uint8Array): string {
  return createHash("sha256").update(data).digest("hex");
}

/** The payload of a valid cache file for `bundle` (of `size` bytes, modified at `mtimeMs`). */
function readCache(
  file: string,
  size: number,
  mtimeMs: number,
): { data: Buffer; features: string[] } | undefined {
  const raw = readPrivateFileSync(file, MAX_CACHE_BYTES);
  if (raw === undefined || raw.toString("latin1", 0, MAGIC.length) !== MAGIC) return undefined;
  const eol = raw.indexOf(10, MAGIC.length);
  if (eol < 0) return undefined;
  let header: Partial<Header>;
  try {
    header = JSON.parse(raw.toString("utf8", MAGIC.length, eol)) as Partial<Header>;
  } catch {
    return undefined;
  }
  const data = raw.subarray(eol + 1);
  if (
    header.size !== size ||
    header.mtimeMs !== mtimeMs ||
    !Array.isArray(header.features) ||
    !header.features.every((f) => typeof f === "string") ||
    header.sha256 !== sha256(data)
  ) {
    return undefined;
  }
  return { data, features: header.features };
}

type Wrapper = (
  exports: unknown,
  require: NodeJS.Require,
  module: { exports: unknown },
  filename: string,
  dirname: string,
) => void;

/**
 * Loads and runs the CommonJS file `bundle` as `require` would, compiling it with the cached
 * code from `cacheDir` when there is a valid entry. `cacheDir` undefined: no cache at all.
 */
export function requireWithCodeCache<T>(
  bundle: string,
  cacheDir: string | undefined,
): CodeCachedModule<T> {
  const source = readFileSync(bundle, "utf8");
  const st = statSync(bundle);
  const name = cacheDir === undefined ? undefined : codeCacheName(bundle);
  const cacheFile = name === undefined ? undefined : join(cacheDir as string, name);
  const cached = cacheFile === undefined ? undefined : readCache(cacheFile, st.size, st.mtimeMs);
  // The wrapper keeps the bundle's first line on line 1, so stack traces keep their positions.
  const script = new Script(
    `(function (exports, require, module, __filename, __dirname) { ${source}\n})`,
    { filename: bundle, cachedData: cached?.data },
  );
  const cacheHit = cached !== undefined && !script.cachedDataRejected;
  const module = { exports: {} as unknown };
  (script.runInThisContext() as Wrapper).call(
    module.exports,
    module.exports,
    createRequire(bundle),
    module,
    bundle,
    dirname(bundle),
  );
  const known = cacheHit ? (cached?.features ?? []) : [];
  return {
    exports: module.exports as T,
    cacheHit,
    cacheFile,
    async save(features) {
      if (cacheDir === undefined || name === undefined) return false;
      if (cacheHit && features.every((f) => known.includes(f))) return false;
      const data = script.createCachedData();
      const header: Header = {
        size: st.size,
        mtimeMs: st.mtimeMs,
        sha256: sha256(data),
        features: [...new Set([...known, ...features])].sort(),
      };
      const written = await writePrivateFileAtomic(
        cacheDir,
        name,
        Buffer.concat([Buffer.from(`${MAGIC}${JSON.stringify(header)}\n`), data]),
      );
      if (written) pruneCodeCaches(cacheDir, name);
      return written;
    },
  };
}

/**
 * Code caches kept per directory. Each install path and Node version gets its own file (npx gives
 * every version a new path), so old ones are removed, oldest first, when a new one is written.
 */
export const MAX_CODE_CACHES = 8;

function pruneCodeCaches(dir: string, keep: string): void {
  try {
    const dated = readdirSync(dir)
      .filter((n) => n.startsWith("code-") && n.endsWith(".v8cache") && n !== keep)
      .map((n) => {
        try {
          return { n, t: statSync(join(dir, n)).mtimeMs };
        } catch {
          return { n, t: 0 };
        }
      })
      .sort((a, b) => b.t - a.t);
    for (const { n } of dated.slice(MAX_CODE_CACHES - 1)) {
      try {
        unlinkSync(join(dir, n));
      } catch {
        // removed by another process meanwhile
      }
    }
  } catch {
    // housekeeping only
  }
}

export { cacheDirFromEnv } from "./cache-dir.ts";
