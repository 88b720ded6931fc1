/**
 * Copy a SQLite store into an empty Postgres store (`bottle-gateway store migrate`): budgets, the
 * default policy, gateway keys (their hashes: the keys keep working), the ledger with its
 * counters, cutoffs and the audit trail, in one Postgres transaction, then verified by totals.
 * Reservations are not copied: stop the gateways first; calls in flight do not move.
 */
import type postgres from "postgres";
import { openConnection } from "./connection.ts";
import { BudgetStoreError } from "./errors.ts";
import { openStore, parseStoreUrl, redactStoreUrl } from "./open.ts";

export interface CopyTotals {
  budgets: number;
  gatewayKeys: number;
  events: number;
  tokens: number;
  costUsd: number;
  counters: number;
  counterTokens: number;
  cutoffs: number;
  actions: number;
}

export interface CopyResult {
  from: CopyTotals;
  to: CopyTotals;
}

const TABLES = [
  "budgets",
  "gateway_keys",
  "usage_events",
  "usage_buckets",
  "cutoffs",
  "enforcement_actions",
] as const;

const CHUNK = 2_000;

/** Copy `from` (sqlite:…) into `to` (postgres://…, empty). Throws E_STORE_COPY on mismatch. */
export async function copyStore(
  from: string,
  to: string,
  onProgress: (table: string, rows: number) => void = () => {},
): Promise<CopyResult> {
  const src = parseStoreUrl(from);
  const dst = parseStoreUrl(to);
  if (src.backend !== "sqlite" || src.path === ":memory:") {
    throw new BudgetStoreError("E_INVALID_INPUT", "--from must be a sqlite:<path> store", {
      hint: "e.g. --from sqlite:$HOME/.bottlekit/bottlekit.db",
    });
  }
  if (dst.backend !== "postgres") {
    throw new BudgetStoreError("E_INVALID_INPUT", "--to must be a postgres:// store", {
      hint: "e.g. --to postgres://bottlekit@db.internal:5432/bottlekit",
    });
  }
  // Bring both to the current schema (and register nothing that lingers: no reclaim).
  const a = await openStore(from, { reclaimOnOpen: false });
  await a.close();
  const b = await openStore(to, { reclaimOnOpen: false });
  await b.close();
  const lite = openConnection(src.path, { readonly: true });
  // Loaded only here: a SQLite-only process never pays for the Postgres driver.
  const { default: postgres } = await import("postgres");
  const sql = postgres(dst.url, { max: 1, onnotice: () => {} });
  try {
    const from_ = sqliteTotals(lite);
    await sql.begin(async (tx) => {
      const [busy] =
        await tx`SELECT (SELECT count(*) FROM usage_events) + (SELECT count(*) FROM budgets)
        + (SELECT count(*) FROM gateway_keys) + (SELECT count(*) FROM enforcement_actions) AS n`;
      if (Number(busy?.["n"]) > 0) {
        throw new BudgetStoreError(
          "E_STORE_COPY",
          `the target store ${redactStoreUrl(to)} is not empty`,
          {
            hint: "migrate into a new, empty Postgres database",
          },
        );
      }
      for (const table of TABLES) {
        let copied = 0;
        let last = Number.MIN_SAFE_INTEGER;
        const keyed = table === "usage_events" || table === "enforcement_actions";
        for (let offset = 0; ; offset += CHUNK) {
          const rows = (
            keyed
              ? lite
                  .prepare(`SELECT * FROM ${table} WHERE id > ? ORDER BY id LIMIT ${CHUNK}`)
                  .all(last)
              : lite.prepare(`SELECT * FROM ${table} LIMIT ${CHUNK} OFFSET ?`).all(offset)
          ) as Array<Record<string, unknown>>;
          if (rows.length === 0) break;
          for (const r of rows) {
            if ("parents" in r) r["parents"] = JSON.parse(String(r["parents"]));
            if (table === "usage_events") r["usage_missing"] = r["usage_missing"] === 1;
          }
          if (keyed) last = Number(rows[rows.length - 1]?.["id"]);
          await tx`INSERT INTO ${tx(table)} ${tx(rows as Array<Record<string, postgres.ParameterOrJSON<never>>>)}`;
          copied += rows.length;
          onProgress(table, copied);
        }
      }
      for (const table of ["usage_events", "enforcement_actions"]) {
        await tx.unsafe(
          `SELECT setval(pg_get_serial_sequence('${table}', 'id'), coalesce((SELECT max(id) FROM ${table}), 0) + 1, false)`,
        );
      }
      const policy = lite.prepare("SELECT value FROM meta WHERE key = 'default_policy'").get() as
        | { value: string }
        | undefined;
      if (policy !== undefined) {
        await tx`INSERT INTO meta (key, value) VALUES ('default_policy', ${policy.value})
          ON CONFLICT (key) DO UPDATE SET value = excluded.value`;
      }
      await tx`INSERT INTO meta (key, value) VALUES ('budgets_version', '1')
        ON CONFLICT (key) DO UPDATE SET value = (meta.value::bigint + 1)::text`;
      const to_ = await pgTotals(tx);
      for (const k of Object.keys(from_) as Array<keyof CopyTotals>) {
        const same = k === "costUsd" ? Math.abs(from_[k] - to_[k]) < 1e-6 : from_[k] === to_[k];
        if (!same) {
          throw new BudgetStoreError(
            "E_STORE_COPY",
            `verification failed: ${k} is ${from_[k]} in the SQLite store but ${to_[k]} after the copy; nothing was written`,
            { hint: "retry; if it persists, report it as a bug" },
          );
        }
      }
    });
    return { from: from_, to: await pgTotals(sql) };
  } finally {
    lite.close();
    await sql.end({ timeout: 5 });
  }
}

function sqliteTotals(c: ReturnType<typeof openConnection>): CopyTotals {
  const one = (q: string) => Number((c.prepare(q).get() as { n: number | null }).n ?? 0);
  return {
    budgets: one("SELECT count(*) AS n FROM budgets"),
    gatewayKeys: one("SELECT count(*) AS n FROM gateway_keys"),
    events: one("SELECT count(*) AS n FROM usage_events"),
    tokens: one("SELECT coalesce(sum(tokens), 0) AS n FROM usage_events"),
    costUsd: one("SELECT coalesce(sum(cost_usd), 0) AS n FROM usage_events"),
    counters: one("SELECT count(*) AS n FROM usage_buckets"),
    counterTokens: one("SELECT coalesce(sum(tokens), 0) AS n FROM usage_buckets"),
    cutoffs: one("SELECT count(*) AS n FROM cutoffs"),
    actions: one("SELECT count(*) AS n FROM enforcement_actions"),
  };
}

async function pgTotals(
  q: postgres.Sql<Record<string, never>> | postgres.TransactionSql<Record<string, never>>,
): Promise<CopyTotals> {
  const [r] = await q`SELECT
    (SELECT count(*) FROM budgets)::float8 AS budgets,
    (SELECT count(*) FROM gateway_keys)::float8 AS "gatewayKeys",
    (SELECT count(*) FROM usage_events)::float8 AS events,
    (SELECT coalesce(sum(tokens), 0) FROM usage_events)::float8 AS tokens,
    (SELECT coalesce(sum(cost_usd), 0) FROM usage_events)::float8 AS "costUsd",
    (SELECT count(*) FROM usage_buckets)::float8 AS counters,
    (SELECT coalesce(sum(tokens), 0) FROM usage_buckets)::float8 AS "counterTokens",
    (SELECT count(*) FROM cutoffs)::float8 AS cutoffs,
    (SELECT count(*) FROM enforcement_actions)::float8 AS actions`;
  return r as unknown as CopyTotals;
}
