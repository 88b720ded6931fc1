import { randomBytes } from "node:crypto";
import { constants as fsConstants } from "node:fs";
import { chmod, link, lstat, mkdir, open, readFile, rename, stat, unlink } from "node:fs/promises";
import { hostname } from "node:os";
import { dirname, join } from "node:path";
import { type Env, resolveBottlekitHome } from "./env.ts";
import { LocalAgentWarningError } from "./errors.ts";
import {
  configFingerprint,
  type LocalAgentSettings,
  SETTING_KEYS,
  UNSET_SETTINGS,
} from "./fingerprint.ts";
import { canonicalInterface } from "./registry.ts";

/** What was acknowledged for one interface, and when. */
export interface AckRecord {
  /** UTC ISO-8601 time of the acknowledgement, to the second. */
  acknowledgedAt: string;
  /** The binary as configured when acknowledged (bare name or path); null if unknown. */
  binary: string | null;
  /** The absolute path the binary resolved to when acknowledged; null if it was not found. */
  binaryPath: string | null;
  /** The permission mode the agent was going to run with. */
  permissionMode: string;
  /**
   * Tools, working directory, HOME and run-as account acknowledged. A record written before
   * these were recorded reads as all unset: it covers only a configuration that sets none.
   */
  settings: LocalAgentSettings;
  /** Fingerprint of the whole acknowledged configuration (see `configFingerprint`). */
  fingerprint: string;
}

/** Acknowledged interfaces keyed by canonical interface id. */
export type AckState = Map<string, AckRecord>;

/** One interface to acknowledge (the time is added by `writeAck`). */
export interface AckInput {
  interface: string;
  binary: string | null;
  binaryPath: string | null;
  permissionMode: string;
  /** The settings that will run; omitted = none set. */
  settings?: LocalAgentSettings;
}

export interface AckLocation {
  /** `$BOTTLEKIT_HOME`; defaults to `env.BOTTLEKIT_HOME`, then `~/.bottlekit`. */
  home?: string;
  /** Used only to find the home when `home` is not given. */
  env?: Env;
}

export interface WriteAckOptions extends AckLocation {
  /** Clock, for tests. */
  now?: () => Date;
  /** How long to wait for another process holding the ack lock, in ms (default 5000). */
  lockTimeoutMs?: number;
}

// Version 2 added `settings` and `fingerprint` per interface; version-1 records are still read.
const FILE_VERSION = 2;
const STALE_LOCK_MS = 10_000;

/** `<home>/state/local_agent_ack.json`. */
export function ackFilePath(location: AckLocation = {}): string {
  const home = location.home ?? resolveBottlekitHome(location.env ?? process.env);
  return join(home, "state", "local_agent_ack.json");
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function stringOrNull(value: unknown): string | null | undefined {
  if (value === null) return null;
  if (typeof value === "string") return value;
  return undefined;
}

/**
 * The settings of a record: all unset for a record written before settings existed (neither
 * `settings` nor `fingerprint`); undefined (the record is dropped) when they are malformed.
 */
function parseSettings(raw: Record<string, unknown>): LocalAgentSettings | undefined {
  const settings = raw["settings"];
  if (settings === undefined && raw["fingerprint"] === undefined) return { ...UNSET_SETTINGS };
  if (!isRecord(settings)) return undefined;
  const out: Partial<LocalAgentSettings> = {};
  for (const key of SETTING_KEYS) {
    const value = stringOrNull(settings[key]);
    if (value === undefined || value === "") return undefined;
    out[key] = value;
  }
  return out as LocalAgentSettings;
}

/**
 * Parses ack-file text. Anything that is not the expected shape yields no acknowledgement:
 * bad JSON, a non-object top level, a non-object `interfaces`. Individual entries that are
 * malformed are dropped; well-formed ones are kept. Keys are lowercased. A record whose
 * `fingerprint` does not match its own fields (edited, or written by a version that
 * fingerprints more) is dropped: it covers nothing. A record from before settings were recorded
 * reads with every setting unset.
 */
export function parseAck(text: string): AckState {
  const state: AckState = new Map();
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    return state;
  }
  if (!isRecord(doc)) return state;
  const interfaces = doc["interfaces"];
  if (!isRecord(interfaces)) return state;
  for (const [key, raw] of Object.entries(interfaces)) {
    if (!isRecord(raw)) continue;
    const iface = key.trim().toLowerCase();
    if (iface === "") continue;
    const acknowledgedAt = raw["acknowledgedAt"];
    const binary = stringOrNull(raw["binary"]);
    const binaryPath = stringOrNull(raw["binaryPath"]);
    const permissionMode = raw["permissionMode"];
    if (typeof acknowledgedAt !== "string" || Number.isNaN(Date.parse(acknowledgedAt))) continue;
    if (binary === undefined || binaryPath === undefined) continue;
    if (typeof permissionMode !== "string") continue;
    const settings = parseSettings(raw);
    if (settings === undefined) continue;
    const fingerprint = configFingerprint({
      interface: iface,
      binary,
      binaryPath,
      permissionMode,
      settings,
    });
    const stored = raw["fingerprint"];
    if (stored !== undefined && stored !== fingerprint) continue;
    state.set(iface, { acknowledgedAt, binary, binaryPath, permissionMode, settings, fingerprint });
  }
  return state;
}

/** Serialises acknowledgements: keys sorted, two-space indent, trailing newline. */
export function serializeAck(state: AckState): string {
  const interfaces: Record<string, AckRecord> = {};
  for (const key of [...state.keys()].sort()) {
    const r = state.get(key)!;
    const settings = {
      tools: r.settings.tools,
      cwd: r.settings.cwd,
      home: r.settings.home,
      runAs: r.settings.runAs,
    };
    interfaces[key] = {
      acknowledgedAt: r.acknowledgedAt,
      binary: r.binary,
      binaryPath: r.binaryPath,
      permissionMode: r.permissionMode,
      settings,
      // Recomputed, never copied: what is written always matches the fields beside it.
      fingerprint: configFingerprint({
        interface: key,
        binary: r.binary,
        binaryPath: r.binaryPath,
        permissionMode: r.permissionMode,
        settings,
      }),
    };
  }
  return `${JSON.stringify({ interfaces, version: FILE_VERSION }, null, 2)}\n`;
}

/**
 * Reads the ack file. A missing, unreadable or corrupt file counts as no acknowledgement and
 * never throws. So does a file that other users could have written (not a regular file, group-
 * or world-writable, or owned by someone else): an ack anyone else can forge is no ack.
 */
export async function readAck(location: AckLocation = {}): Promise<AckState> {
  const path = ackFilePath(location);
  try {
    const info = await lstat(path);
    if (!info.isFile()) return new Map();
    if (process.platform !== "win32") {
      if ((info.mode & 0o022) !== 0) return new Map();
      const uid = process.getuid?.();
      if (uid !== undefined && info.uid !== uid) return new Map();
    }
    return parseAck(await readFile(path, "utf8"));
  } catch {
    return new Map();
  }
}

function utcSeconds(date: Date): string {
  return date.toISOString().replace(/\.\d{3}Z$/, "Z");
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function errnoCode(error: unknown): string | undefined {
  return isRecord(error) && typeof error["code"] === "string" ? error["code"] : undefined;
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return errnoCode(error) === "EPERM";
  }
}

/**
 * Breaks a lock left behind by a dead process on this host, or older than STALE_LOCK_MS. The
 * lock is first moved aside and compared with what was judged stale, so a fresh lock that
 * another process took in the meantime is put back instead of deleted.
 */
async function breakIfStale(lockPath: string): Promise<void> {
  let text: string;
  let mtimeMs: number;
  try {
    const [info, content] = await Promise.all([stat(lockPath), readFile(lockPath, "utf8")]);
    text = content;
    mtimeMs = info.mtimeMs;
  } catch {
    return; // gone already: try again on the next round
  }
  const [pidText, , host] = text.trim().split(" ");
  const pid = Number.parseInt(pidText ?? "", 10);
  const sameHost = host === undefined || host === hostname();
  const dead = sameHost && Number.isInteger(pid) && pid > 0 && !pidAlive(pid);
  const old = Date.now() - mtimeMs > STALE_LOCK_MS;
  if (!dead && !old) return;
  const aside = `${lockPath}.${process.pid}.${randomBytes(4).toString("hex")}.stale`;
  try {
    await rename(lockPath, aside);
  } catch {
    return;
  }
  try {
    if ((await readFile(aside, "utf8")) !== text) {
      await link(aside, lockPath).catch(() => undefined);
    }
  } finally {
    await unlink(aside).catch(() => undefined);
  }
}

/**
 * Runs `fn` while holding `<ack file>.lock`, an O_EXCL lock file, so concurrent
 * read-merge-write cycles from several processes serialise and none is lost.
 */
async function withLock<T>(path: string, timeoutMs: number, fn: () => Promise<T>): Promise<T> {
  const lockPath = `${path}.lock`;
  const token = `${process.pid} ${Date.now()} ${hostname()} ${randomBytes(8).toString("hex")}\n`;
  const deadline = Date.now() + timeoutMs;
  let delay = 2;
  for (;;) {
    try {
      const handle = await open(
        lockPath,
        fsConstants.O_CREAT | fsConstants.O_EXCL | fsConstants.O_WRONLY,
        0o600,
      );
      try {
        await handle.writeFile(token);
      } finally {
        await handle.close();
      }
      break;
    } catch (error) {
      if (errnoCode(error) !== "EEXIST") {
        throw new LocalAgentWarningError(
          "E_ACK_WRITE",
          `cannot create the ack lock ${lockPath}: ${errnoCode(error) ?? String(error)}`,
          {
            cause: error,
            hint: "make $BOTTLEKIT_HOME/state writable by you, or set BOTTLEKIT_HOME",
          },
        );
      }
      if (Date.now() >= deadline) {
        throw new LocalAgentWarningError(
          "E_ACK_LOCKED",
          `the ack file ${path} stayed locked for ${timeoutMs} ms`,
          {
            hint: `another bottlekit process is writing it; retry, or remove ${lockPath} if none is`,
          },
        );
      }
      await breakIfStale(lockPath);
      await sleep(delay + Math.random() * delay);
      delay = Math.min(delay * 2, 50);
    }
  }
  try {
    return await fn();
  } finally {
    // Release only our own lock: if it was judged stale and taken over, leave the new one be.
    const current = await readFile(lockPath, "utf8").catch(() => undefined);
    if (current === token) await unlink(lockPath).catch(() => undefined);
  }
}

/** Writes `state` to `path` atomically (temp file, fsync, rename), mode 0600. */
async function writeAtomic(path: string, state: AckState): Promise<void> {
  const tmp = `${path}.${process.pid}.${randomBytes(6).toString("hex")}.tmp`;
  try {
    const handle = await open(tmp, "wx", 0o600);
    try {
      await handle.writeFile(serializeAck(state));
      await handle.sync();
    } finally {
      await handle.close();
    }
    await chmod(tmp, 0o600);
    await rename(tmp, path);
  } catch (error) {
    await unlink(tmp).catch(() => undefined);
    throw new LocalAgentWarningError(
      "E_ACK_WRITE",
      `cannot write the ack file ${path}: ${errnoCode(error) ?? String(error)}`,
      { cause: error, hint: "make $BOTTLEKIT_HOME/state writable by you, or set BOTTLEKIT_HOME" },
    );
  }
}

async function ensureStateDir(path: string): Promise<void> {
  try {
    await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  } catch (error) {
    throw new LocalAgentWarningError(
      "E_ACK_WRITE",
      `cannot create ${dirname(path)}: ${errnoCode(error) ?? String(error)}`,
      { cause: error, hint: "make $BOTTLEKIT_HOME writable by you, or set BOTTLEKIT_HOME" },
    );
  }
}

/**
 * Records acknowledgements for `inputs` (interface names canonicalised through the provider
 * registry), merged with what is on disk: other interfaces are kept,
 * the given ones are replaced (time refreshed). Safe when several processes ack at once: the
 * read-merge-write runs under a lock file and the write is an atomic rename. The file is mode
 * 0600 and its directory is created (0700) if missing. Returns the state now on disk.
 * Throws LocalAgentWarningError (E_ACK_WRITE, E_ACK_LOCKED) when it cannot record.
 */
export async function writeAck(
  inputs: readonly AckInput[],
  options: WriteAckOptions = {},
): Promise<AckState> {
  const path = ackFilePath(options);
  const at = utcSeconds((options.now ?? (() => new Date()))());
  await ensureStateDir(path);
  return withLock(path, options.lockTimeoutMs ?? 5000, async () => {
    const state = await readAck(options);
    for (const input of inputs) {
      const iface = canonicalInterface(input.interface);
      if (iface === "") continue;
      const settings = { ...(input.settings ?? UNSET_SETTINGS) };
      state.set(iface, {
        acknowledgedAt: at,
        binary: input.binary,
        binaryPath: input.binaryPath,
        permissionMode: input.permissionMode,
        settings,
        fingerprint: configFingerprint({
          interface: iface,
          binary: input.binary,
          binaryPath: input.binaryPath,
          permissionMode: input.permissionMode,
          settings,
        }),
      });
    }
    await writeAtomic(path, state);
    return state;
  });
}

export interface RevokeAckOptions extends AckLocation {
  lockTimeoutMs?: number;
}

/**
 * Revokes acknowledgements. With no interfaces (or undefined) the whole ack file is removed, so
 * every local-agent provider warns again; otherwise only the named interfaces (ids or aliases,
 * any case) are removed, and the file is removed when nothing is left. Returns the interfaces
 * that were acknowledged and no longer are.
 */
export async function revokeAck(
  interfaces?: readonly string[],
  options: RevokeAckOptions = {},
): Promise<string[]> {
  const path = ackFilePath(options);
  const parentExists = await stat(dirname(path)).then(
    () => true,
    () => false,
  );
  if (!parentExists) return [];
  return withLock(path, options.lockTimeoutMs ?? 5000, async () => {
    const state = await readAck(options);
    const all = interfaces === undefined || interfaces.length === 0;
    const wanted = new Set(
      (interfaces ?? []).flatMap((i) => [i.trim().toLowerCase(), canonicalInterface(i)]),
    );
    const revoked = [...state.keys()].filter((k) => all || wanted.has(k)).sort();
    for (const key of revoked) state.delete(key);
    if (state.size === 0) {
      try {
        await unlink(path);
      } catch (error) {
        if (errnoCode(error) !== "ENOENT") {
          throw new LocalAgentWarningError(
            "E_ACK_WRITE",
            `cannot remove the ack file ${path}: ${errnoCode(error) ?? String(error)}`,
            { cause: error, hint: "check the permissions of $BOTTLEKIT_HOME/state" },
          );
        }
      }
    } else {
      await writeAtomic(path, state);
    }
    return revoked;
  });
}
