/**
 * Loads the `bottle run` bundle (dist/bottle-run.cjs: the CLI and everything `run` composes in one
 * CommonJS file, see tsup.config.ts) with V8's code cache, so a run does not parse and compile the
 * same few MB of JavaScript again: after a run without a usable cache, the bytecode of every
 * function that run compiled is written to a cache file, and the next run hands it to V8.
 *
 * Node 22+ has `module.enableCompileCache`, but not Node 20, and it does not apply to a script
 * compiled through `node:vm`; this works the same on both.
 *
 * Trust: whoever can write the cache can run code as the user who runs `bottle` (root included),
 * so a cache file is used only when it is a regular file (not a symlink) owned by this user and
 * writable by nobody else, in a directory of mode 0700 owned by this user; it is written
 * atomically (0600 temporary file, then rename), and its header pins the bundle's size, mtime and
 * path, the Node version and the SHA-256 of the payload. The default directory is under the
 * user's home (`~/.cache/bottlekit/bottle`), which the sandbox replaces with an empty tmpfs, so a
 * bottled agent cannot reach it. `BOTTLEKIT_CODE_CACHE_DIR=off` disables it. Any failure is silent:
 * a cache can only save work.
 *
 * This module is built on its own as dist/code-cache.cjs for the bin; it imports nothing else.
 */
import { isAscii } from "node:buffer";
import { createHash, randomBytes } from "node:crypto";
import {
  closeSync,
  constants,
  fstatSync,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readSync,
  renameSync,
  statSync,
  unlinkSync,
  writeFileSync,
} from "node:fs";
import { createRequire } from "node:module";
import { basename, dirname, isAbsolute, join, resolve } from "node:path";
import { Script, constants as vmConstants } from "node:vm";

/** Environment variable naming the cache directory; `off` or empty disables the cache. */
export const CODE_CACHE_ENV = "BOTTLEKIT_CODE_CACHE_DIR";

const MAGIC = "bottlekit-bottle-code-cache/1\n";
/** Cache files larger than this are not read. */
const MAX_CACHE_BYTES = 128 * 1024 * 1024;
/** Cache files kept per directory (one per bundle file and Node version); older ones are removed. */
const MAX_CACHE_FILES = 8;

/**
 * The cache directory: `$BOTTLEKIT_CODE_CACHE_DIR` (`off` or empty: none), else
 * `$XDG_CACHE_HOME/bottlekit/bottle` when absolute, else `$HOME/.cache/bottlekit/bottle`.
 */
export function codeCacheDir(env: NodeJS.ProcessEnv, cwd = process.cwd()): string | undefined {
  const override = env[CODE_CACHE_ENV];
  if (override !== undefined) {
    return override === "" || override === "off" ? undefined : resolve(cwd, override);
  }
  const xdg = env["XDG_CACHE_HOME"];
  if (xdg && isAbsolute(xdg)) return join(xdg, "bottlekit", "bottle");
  const home = env["HOME"];
  return home && isAbsolute(home) ? join(home, ".cache", "bottlekit", "bottle") : undefined;
}

const myUid = typeof process.getuid === "function" ? process.getuid() : undefined;

function privateToMe(st: { uid: number; mode: number }): boolean {
  return (myUid === undefined || st.uid === myUid) && (st.mode & 0o022) === 0;
}

/** The cache file name of `bundle` under the running Node. */
export function codeCacheFileName(bundle: string): string {
  const id = createHash("sha256")
    .update(`${bundle}\0${process.version}\0${process.versions.v8}\0${process.arch}`)
    .digest("hex")
    .slice(0, 24);
  return `code-${basename(bundle).replace(/[^A-Za-z0-9.-]/g, "_")}-${id}.v8cache`;
}

interface Header {
  bundle: string;
  size: number;
  mtimeMs: number;
  node: string;
  sha256: string;
  /** The bundle was all ASCII when the cache was written (its size and mtime are pinned above). */
  ascii?: boolean;
}

const sha256 = (data: Uint8Array) => createHash("sha256").update(data).digest("hex");

/**
 * The payload of a trusted cache file that matches `expected` and its header, else undefined. The
 * payload is in the cache read buffer: valid until the next cache is read.
 */
function readCache(
  file: string,
  expected: Omit<Header, "sha256" | "ascii">,
): { data: Buffer; header: Header } | undefined {
  let fd: number | undefined;
  let raw: Buffer;
  try {
    fd = openSync(file, constants.O_RDONLY | (constants.O_NOFOLLOW ?? 0));
    const st = fstatSync(fd);
    if (!st.isFile() || !privateToMe(st) || st.size > MAX_CACHE_BYTES) return undefined;
    const dir = lstatSync(dirname(file));
    if (!dir.isDirectory() || !privateToMe(dir)) return undefined;
    raw = readWhole(fd, st.size, "cache");
  } catch {
    return undefined;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
  if (raw.toString("latin1", 0, MAGIC.length) !== MAGIC) return undefined;
  const eol = raw.indexOf(10, MAGIC.length);
  if (eol < 0) return undefined;
  let header: Partial<Header>;
  try {
    header = JSON.parse(raw.toString("utf8", MAGIC.length, eol)) as Partial<Header>;
  } catch {
    return undefined;
  }
  const data = raw.subarray(eol + 1);
  const same =
    header.bundle === expected.bundle &&
    header.size === expected.size &&
    header.mtimeMs === expected.mtimeMs &&
    header.node === expected.node &&
    header.sha256 === sha256(data);
  return same ? { data, header: header as Header } : undefined;
}

/** Writes `data` atomically into `dir` (0700, owned by this user); false on any failure. */
function writePrivate(dir: string, name: string, data: Uint8Array): boolean {
  let tmp: string | undefined;
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const st = lstatSync(dir);
    if (!st.isDirectory() || !privateToMe(st)) return false;
    tmp = join(dir, `.${name}.${process.pid}.${randomBytes(6).toString("hex")}.tmp`);
    writeFileSync(tmp, data, { mode: 0o600, flag: "wx" });
    renameSync(tmp, join(dir, name));
    tmp = undefined;
    prune(dir, name);
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

function prune(dir: string, keep: string): void {
  try {
    const old = readdirSync(dir)
      .filter((n) => n.startsWith("code-") && n.endsWith(".v8cache") && n !== keep)
      .map((n) => ({ n, t: statSync(join(dir, n)).mtimeMs }))
      .sort((a, b) => b.t - a.t)
      .slice(MAX_CACHE_FILES - 1);
    for (const { n } of old) unlinkSync(join(dir, n));
  } catch {
    // housekeeping only
  }
}

/**
 * The function a bundle runs in, as Node's CommonJS loader wraps a module. The build writes the
 * bundles already wrapped (tsup.config.ts): V8 then compiles the text as read, where joining a
 * head and a tail to it made one more copy of a few MB. Each fresh page of memory costs a page
 * fault, and on a virtual machine a fault can cost 15 µs: copying 2 MB cost about as much as
 * reading it. A file without the head (any other CommonJS file) is wrapped here.
 */
export const BUNDLE_HEAD = "(function (exports, require, module, __filename, __dirname) { ";
export const BUNDLE_TAIL = "\n})";

/**
 * Reusable read buffers, one for sources and one for caches: the files are read into memory
 * that earlier reads already touched, instead of fresh buffers (see BUNDLE_HEAD on the cost of
 * fresh memory). A read buffer is free again once its text is decoded (a string is a copy) or
 * V8 has taken the cached code (it copies what it keeps while compiling). Reserved large and
 * uninitialised: pages that are never touched cost nothing.
 */
const READ_BUFFER_BYTES = 8 * 1024 * 1024;
const readBuffers: { source?: Buffer; cache?: Buffer } = {};

/** The whole of the open file `fd` of `size` bytes, in the `kind` read buffer (valid until its next use). */
function readWhole(fd: number, size: number, kind: "source" | "cache"): Buffer {
  let buf = readBuffers[kind];
  if (buf === undefined || buf.length < size) {
    buf = Buffer.allocUnsafeSlow(Math.max(size, READ_BUFFER_BYTES));
    readBuffers[kind] = buf;
  }
  let got = 0;
  while (got < size) {
    const n = readSync(fd, buf, got, size - got, got);
    if (n === 0) break;
    got += n;
  }
  return buf.subarray(0, got);
}

/**
 * The bundle's text. The build keeps it ASCII (tsup.config.ts), and ASCII bytes decode as Latin-1
 * to the same string at a fraction of UTF-8's cost (and V8 keeps it one byte per character); a
 * file with any other byte is decoded as UTF-8. `knownAscii`: a valid cache entry, written for
 * this very file (size and mtime), recorded that it is ASCII, so the check (~2 ms a MB here) is
 * skipped.
 */
function readSource(file: string, knownAscii: boolean): { text: string; ascii: boolean } {
  const fd = openSync(file, constants.O_RDONLY);
  let bytes: Buffer;
  try {
    bytes = readWhole(fd, fstatSync(fd).size, "source");
  } finally {
    closeSync(fd);
  }
  const ascii = knownAscii || isAscii(bytes);
  return { text: ascii ? bytes.toString("latin1") : bytes.toString("utf8"), ascii };
}

export interface CodeCachedBundle<T> {
  /** `module.exports` of the bundle. */
  readonly exports: T;
  /** "hit": V8 took the cached code; "miss": no usable cache; "off": no cache directory. */
  readonly cache: "hit" | "miss" | "off";
  /** The cache file (undefined when off). */
  readonly cacheFile: string | undefined;
  /** After the run: stores what was compiled when the cache missed. True when a file was written. */
  save(): boolean;
}

type Wrapper = (
  exports: unknown,
  require: NodeJS.Require,
  module: { exports: unknown },
  filename: string,
  dirname: string,
) => void;

/** Every bundle loaded by this process, in order (`saveAll` stores their caches). */
const loaded: CodeCachedBundle<unknown>[] = [];

/** After the run: `save()` of every bundle loaded. The number of cache files written. */
export function saveAll(): number {
  let written = 0;
  for (const b of loaded) if (b.save()) written++;
  return written;
}

/**
 * Runs the CommonJS file `bundle` as `require` would, compiled with the cached code from
 * `cacheDir` when it holds a valid entry (`cacheDir` undefined: no cache). `provided` gives the
 * modules the bundle takes from another one already loaded (by specifier); every other
 * `require` of the bundle resolves from its own location.
 */
export function requireBundle<T>(
  bundle: string,
  cacheDir: string | undefined,
  provided?: Readonly<Record<string, unknown>>,
): CodeCachedBundle<T> {
  const st = statSync(bundle);
  const name = cacheDir === undefined ? undefined : codeCacheFileName(bundle);
  const cacheFile = name === undefined ? undefined : join(cacheDir as string, name);
  const expected = { bundle, size: st.size, mtimeMs: st.mtimeMs, node: process.version };
  const entry = cacheFile === undefined ? undefined : readCache(cacheFile, expected);
  const cached = entry?.data;
  const { text: source, ascii } = readSource(bundle, entry?.header.ascii === true);
  // Dynamic import() of a module left outside the bundle goes to Node's own loader (Node >= 20.12).
  const dynamicImport: typeof vmConstants.USE_MAIN_CONTEXT_DEFAULT_LOADER | undefined =
    vmConstants.USE_MAIN_CONTEXT_DEFAULT_LOADER;
  // The wrapper keeps the bundle's first line on line 1, so stack traces keep their positions.
  const script = new Script(
    source.startsWith(BUNDLE_HEAD) ? source : `${BUNDLE_HEAD}${source}${BUNDLE_TAIL}`,
    {
      filename: bundle,
      ...(cached === undefined ? {} : { cachedData: cached }),
      ...(dynamicImport === undefined ? {} : { importModuleDynamically: dynamicImport }),
    },
  );
  const hit = cached !== undefined && !script.cachedDataRejected;
  const mod = { exports: {} as unknown };
  const own = createRequire(bundle);
  const req =
    provided === undefined
      ? own
      : (Object.assign(
          (id: string) => (Object.hasOwn(provided, id) ? provided[id] : own(id)),
          own,
        ) as NodeJS.Require);
  (script.runInThisContext() as Wrapper).call(
    mod.exports,
    mod.exports,
    req,
    mod,
    bundle,
    dirname(bundle),
  );
  const result: CodeCachedBundle<T> = {
    exports: mod.exports as T,
    cache: cacheDir === undefined ? "off" : hit ? "hit" : "miss",
    cacheFile,
    save() {
      if (cacheDir === undefined || name === undefined || hit) return false;
      const data = script.createCachedData();
      const header: Header = { ...expected, sha256: sha256(data), ascii };
      return writePrivate(
        cacheDir,
        name,
        Buffer.concat([Buffer.from(`${MAGIC}${JSON.stringify(header)}\n`), data]),
      );
    },
  };
  loaded.push(result);
  return result;
}
