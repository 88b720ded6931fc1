import { mkdirSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { BudgetStoreError } from "./errors.ts";
import { newOwnerId } from "./owner.ts";
import { openSqlite } from "./sqlite-store.ts";
import type { OpenStoreOptions, Store } from "./types.ts";
import { count, name } from "./validate.ts";

const DEFAULT_TTL_MS = 10 * 60_000;
const DEFAULT_BUSY_MS = 5_000;
const DEFAULT_GROUP_COMMIT_MS = 0;
const DEFAULT_LEASE_MS = 30_000;

/** `$BOTTLEKIT_HOME`, else `~/.bottlekit`. */
export function bottlekitHome(env: NodeJS.ProcessEnv = process.env): string {
  const h = env["BOTTLEKIT_HOME"];
  return h !== undefined && h !== "" ? h : join(homedir(), ".bottlekit");
}

/** The default store URL: `sqlite:<home>/bottlekit.db`. */
export function defaultStoreUrl(home: string = bottlekitHome()): string {
  return `sqlite:${join(home, "bottlekit.db")}`;
}

/** Where a store URL points. */
export type StoreTarget =
  | { backend: "sqlite"; path: string }
  | { backend: "postgres"; url: string };

/** The URL without its password, for messages (a URL is never printed with its secret). */
export function redactStoreUrl(url: string): string {
  return url.replace(/^(postgres(?:ql)?:\/\/[^:/@]*):[^@/]*@/i, "$1:***@");
}

/**
 * Parse a store URL: `sqlite:<path>`, `sqlite::memory:`, or `postgres://user:pass@host:port/db`
 * (also `postgresql://`; query parameters such as `sslmode` are passed to the client).
 */
export function parseStoreUrl(url: string): StoreTarget {
  if (typeof url !== "string" || url.length === 0) {
    throw new BudgetStoreError("E_STORE_URL", "store URL is empty", {
      hint: "use sqlite:<path>, sqlite::memory: or postgres://user@host:5432/db",
    });
  }
  if (/^postgres(ql)?:/i.test(url)) {
    if (!/^postgres(ql)?:\/\/[^/]/i.test(url)) {
      throw new BudgetStoreError(
        "E_STORE_URL",
        `store URL ${JSON.stringify(redactStoreUrl(url))} has no host`,
        {
          hint: "use postgres://user:password@host:5432/database",
        },
      );
    }
    return { backend: "postgres", url };
  }
  if (!url.startsWith("sqlite:")) {
    throw new BudgetStoreError(
      "E_STORE_URL",
      `unsupported store URL scheme in ${JSON.stringify(url.split(":")[0])}`,
      {
        hint: "use sqlite:<path>, sqlite::memory: or postgres://user@host:5432/db",
      },
    );
  }
  let rest = url.slice("sqlite:".length);
  if (rest === ":memory:") return { backend: "sqlite", path: ":memory:" };
  if (rest.startsWith("//")) rest = rest.slice(2);
  if (rest.length === 0) {
    throw new BudgetStoreError("E_STORE_URL", "sqlite: URL has no path", {
      hint: "use sqlite:/path/to/bottlekit.db or sqlite::memory:",
    });
  }
  return { backend: "sqlite", path: resolve(rest) };
}

/**
 * Open the budget store at `url`, else `$BOTTLEKIT_STORE`, else
 * `sqlite:$BOTTLEKIT_HOME/bottlekit.db`, creating the file or schema and running forward
 * migrations as needed.
 */
export async function openStore(url?: string, options: OpenStoreOptions = {}): Promise<Store> {
  const env = process.env["BOTTLEKIT_STORE"];
  const target =
    url ??
    (env !== undefined && env !== "" ? env : defaultStoreUrl(options.home ?? bottlekitHome()));
  const parsed = parseStoreUrl(target);
  const owner = options.owner === undefined ? newOwnerId() : name(options.owner, "options.owner");
  const leaseMs =
    options.leaseMs === undefined ? DEFAULT_LEASE_MS : count(options.leaseMs, "options.leaseMs");
  if (parsed.backend === "postgres") {
    // Loaded only for a postgres:// store: a SQLite-only process never pays for the driver.
    const { openPostgres } = await import("./pg-store.ts");
    return openPostgres(parsed.url, {
      clock: options.clock ?? Date.now,
      reservationTtlMs: options.reservationTtlMs ?? DEFAULT_TTL_MS,
      settleGraceMs: options.settleGraceMs ?? 60 * 60_000,
      owner,
      leaseMs,
      reclaimOnOpen: options.reclaimOnOpen !== false,
      ...(options.poolSize === undefined
        ? {}
        : { poolSize: count(options.poolSize, "options.poolSize") }),
      ...(options.ssl === undefined ? {} : { ssl: options.ssl }),
    });
  }
  const { path } = parsed;
  if (path !== ":memory:") mkdirSync(dirname(path), { recursive: true });
  return openSqlite(path, {
    clock: options.clock ?? Date.now,
    reservationTtlMs: options.reservationTtlMs ?? DEFAULT_TTL_MS,
    busyTimeoutMs: options.busyTimeoutMs ?? DEFAULT_BUSY_MS,
    settleGraceMs: options.settleGraceMs ?? 60 * 60_000,
    groupCommitMs: options.groupCommitMs ?? DEFAULT_GROUP_COMMIT_MS,
    walAutocheckpointPages: options.walAutocheckpointPages ?? 1000,
    owner,
    leaseMs,
    reclaimOnOpen: options.reclaimOnOpen !== false,
    ...(options.cutoffPollMs === undefined
      ? {}
      : { cutoffPollMs: Math.max(1, count(options.cutoffPollMs, "options.cutoffPollMs")) }),
  });
}
