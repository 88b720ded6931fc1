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

/** Parse a store URL into a SQLite path (`:memory:` for `sqlite::memory:`). */
export function parseStoreUrl(url: string): { backend: "sqlite"; path: string } {
  if (typeof url !== "string" || url.length === 0) {
    throw new BudgetStoreError("E_STORE_URL", "store URL is empty", {
      hint: "use sqlite:<path> or sqlite::memory:",
    });
  }
  if (/^postgres(ql)?:/i.test(url)) {
    throw new BudgetStoreError(
      "E_STORE_URL",
      "the Postgres backend is not available in this version",
      {
        hint: "use sqlite:<path> for now; Postgres arrives behind the same Store interface",
      },
    );
  }
  if (!url.startsWith("sqlite:")) {
    throw new BudgetStoreError(
      "E_STORE_URL",
      `unsupported store URL scheme in ${JSON.stringify(url.split(":")[0])}`,
      {
        hint: "use sqlite:<path> or sqlite::memory:",
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
 * Open the budget store at `url` (default `sqlite:$BOTTLEKIT_HOME/bottlekit.db`), creating the
 * file and running forward migrations as needed.
 */
export async function openStore(url?: string, options: OpenStoreOptions = {}): Promise<Store> {
  const target = url ?? defaultStoreUrl(options.home ?? bottlekitHome());
  const { path } = parseStoreUrl(target);
  if (path !== ":memory:") mkdirSync(dirname(path), { recursive: true });
  return openSqlite(path, {
    clock: options.clock ?? Date.now,
    reservationTtlMs: options.reservationTtlMs ?? DEFAULT_TTL_MS,
    busyTimeoutMs: options.busyTimeoutMs ?? DEFAULT_BUSY_MS,
    settleGraceMs: options.settleGraceMs ?? 60 * 60_000,
    groupCommitMs: options.groupCommitMs ?? DEFAULT_GROUP_COMMIT_MS,
    walAutocheckpointPages: options.walAutocheckpointPages ?? 1000,
    owner: options.owner === undefined ? newOwnerId() : name(options.owner, "options.owner"),
    leaseMs:
      options.leaseMs === undefined ? DEFAULT_LEASE_MS : count(options.leaseMs, "options.leaseMs"),
    reclaimOnOpen: options.reclaimOnOpen !== false,
  });
}
