import { statSync } from "node:fs";
import { homedir, userInfo } from "node:os";
import { dirname, isAbsolute, join, resolve } from "node:path";
import type { Store } from "@bottlekit/budget-store";
import { EXIT, renderCliError } from "@bottlekit/diagnostics";
import type { CliIo } from "./cli.ts";
import { BottleError, isBottleError } from "./errors.ts";

/** Flags of every command that reads or writes the budget store. */
export interface StoreFlags {
  /** `--store`: a SQLite path, `sqlite:<path>`, or `postgres://…`. */
  store?: string;
  /** Global `--home`: where the default store lives. */
  home?: string;
  json?: boolean;
}

/** Where the store URL came from, printed by `--json` and in errors. */
export type StoreUrlSource = "--store" | "BOTTLEKIT_STORE" | "default";

export interface ResolvedStoreUrl {
  /** What `openStore` receives: `sqlite:<absolute path>` or the postgres URL unchanged. */
  url: string;
  /** For messages: the SQLite file, or the postgres URL without its password. */
  display: string;
  source: StoreUrlSource;
}

const POSTGRES = /^postgres(ql)?:\/\//i;

/** `postgres://user:secret@host/db` → `postgres://user:***@host/db` (never print a password). */
export function redactUrl(url: string): string {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/[^:/@]*):[^@/]*@/i, "$1:***@");
}

/**
 * Resolves the store URL: `--store` > `$BOTTLEKIT_STORE` > `sqlite:$BOTTLEKIT_HOME/bottlekit.db`
 * (`--home` wins over `$BOTTLEKIT_HOME`). A plain path means a SQLite file.
 */
export function resolveStoreUrl(flags: StoreFlags, env: NodeJS.ProcessEnv): ResolvedStoreUrl {
  let raw: string;
  let source: StoreUrlSource;
  const fromEnv = env["BOTTLEKIT_STORE"];
  if (flags.store !== undefined) {
    raw = flags.store;
    source = "--store";
  } else if (fromEnv !== undefined && fromEnv !== "") {
    raw = fromEnv;
    source = "BOTTLEKIT_STORE";
  } else {
    const envHome = env["BOTTLEKIT_HOME"];
    const home =
      flags.home ??
      (envHome !== undefined && envHome !== "" ? envHome : join(homedir(), ".bottlekit"));
    raw = join(home, "bottlekit.db");
    source = "default";
  }
  const where = source === "default" ? "the default store" : source;
  if (raw.trim() === "") {
    throw new BottleError("E_USAGE", `${where} is empty`, {
      hint: "pass a SQLite file path, sqlite:<path>, or postgres://user@host/db",
    });
  }
  if (POSTGRES.test(raw)) return { url: raw, display: redactUrl(raw), source };
  let path = raw;
  if (/^sqlite:/i.test(path)) {
    path = path.slice("sqlite:".length);
    if (path.startsWith("//")) path = path.slice(2);
  } else if (/^[a-z][a-z0-9+.-]*:\/\//i.test(path)) {
    throw new BottleError(
      "E_USAGE",
      `${where}: unsupported store URL scheme "${path.split(":")[0]}" in ${redactUrl(path)}`,
      { hint: "use a SQLite file path, sqlite:<path>, or postgres://user@host/db" },
    );
  }
  if (path === "" || path === ":memory:") {
    throw new BottleError("E_USAGE", `${where}: "${raw}" names no database file`, {
      hint: "pass the path of the SQLite file the gateway uses, e.g. ~/.bottlekit/bottlekit.db",
    });
  }
  const abs = isAbsolute(path) ? path : resolve(path);
  return { url: `sqlite:${abs}`, display: abs, source };
}

/**
 * Fails when the SQLite file's directory does not exist: a mistyped `--store` or home must not
 * create an empty ledger somewhere else and report zero usage from it.
 */
export function checkStoreDirectory(resolved: ResolvedStoreUrl): void {
  if (!resolved.url.startsWith("sqlite:")) return;
  const dir = dirname(resolved.display);
  let isDir = false;
  try {
    isDir = statSync(dir).isDirectory();
  } catch {
    isDir = false;
  }
  if (!isDir) {
    throw new BottleError(
      "E_INVALID_INPUT",
      `store directory ${dir} does not exist (store from ${resolved.source}: ${resolved.display})`,
      {
        hint:
          resolved.source === "default"
            ? "start the gateway once (bottle-gateway up) or pass --store <path> / set BOTTLEKIT_STORE"
            : "check the path; the directory must exist (it is never created by a report command)",
      },
    );
  }
}

/** Opens the store named by the flags. Errors become BottleErrors with a hint. */
export async function openStoreFromFlags(
  flags: StoreFlags,
  env: NodeJS.ProcessEnv,
): Promise<{ store: Store; resolved: ResolvedStoreUrl }> {
  const resolved = resolveStoreUrl(flags, env);
  checkStoreDirectory(resolved);
  const { openStore } = await import("@bottlekit/budget-store");
  try {
    const store = await openStore(resolved.url);
    return { store, resolved };
  } catch (error) {
    throw asBottleError(error, `cannot open the budget store ${resolved.display}`);
  }
}

interface CodedLike {
  code: string;
  message: string;
  hint?: string | undefined;
}

function isCoded(error: unknown): error is Error & CodedLike {
  return error instanceof Error && typeof (error as { code?: unknown }).code === "string";
}

/** Maps a budget-store (or other coded) error to a BottleError: bad input → 2, the rest → 1. */
export function asBottleError(error: unknown, context?: string): BottleError {
  if (isBottleError(error)) return error;
  if (isCoded(error) && error.name === "BudgetStoreError") {
    const usage =
      error.code === "E_INVALID_INPUT" || error.code === "E_USAGE" || error.code === "E_STORE_URL";
    const message = redactUrl(context ? `${context}: ${error.message}` : error.message);
    return new BottleError(usage ? "E_INVALID_INPUT" : "E_INTERNAL", message, {
      cause: error,
      ...(error.hint !== undefined ? { hint: error.hint } : {}),
    });
  }
  const message = error instanceof Error ? error.message : String(error);
  return new BottleError("E_INTERNAL", redactUrl(context ? `${context}: ${message}` : message), {
    cause: error,
  });
}

/** Exit code of a BottleError: 2 for usage and invalid input, 1 otherwise. */
export function exitCodeOf(error: BottleError): number {
  return error.code === "E_USAGE" || error.code === "E_INVALID_INPUT" ? EXIT.usage : EXIT.failure;
}

/**
 * Runs `fn` with an open store and closes it after. Known errors are written here (message and
 * hint on stderr; with `--json` also `{ "error": … }` on stdout) and become the exit code; a bug
 * (a non-coded error) is rethrown for the CLI's bug report.
 */
export async function withStore(
  flags: StoreFlags,
  io: CliIo,
  fn: (store: Store, resolved: ResolvedStoreUrl) => Promise<number>,
): Promise<number> {
  let opened: { store: Store; resolved: ResolvedStoreUrl } | undefined;
  try {
    opened = await openStoreFromFlags(flags, io.env);
    return await fn(opened.store, opened.resolved);
  } catch (error) {
    if (!isBottleError(error) && !isCoded(error)) throw error;
    return reportError(asBottleError(error), io, flags.json === true);
  } finally {
    await opened?.store.close().catch(() => undefined);
  }
}

/** Writes a known error (through the shared renderer) and returns its exit code. */
export function reportError(error: BottleError, io: CliIo, json: boolean): number {
  return renderCliError(error, {
    program: "bottle",
    stderr: io.stderr,
    stdout: io.stdout,
    json,
    exitCodeOf: () => exitCodeOf(error),
  });
}

/** Who an operator action is recorded as: `$USER`, else the OS account, else "operator". */
export function operatorName(env: NodeJS.ProcessEnv): string {
  const fromEnv = env["USER"] ?? env["LOGNAME"];
  if (fromEnv !== undefined && /^[\w.@-]{1,64}$/.test(fromEnv)) return fromEnv;
  try {
    const name = userInfo().username;
    if (/^[\w.@-]{1,64}$/.test(name)) return name;
  } catch {
    // no passwd entry for this uid
  }
  return "operator";
}
