import type { Connection } from "./connection.ts";
import { BudgetStoreError } from "./errors.ts";

/**
 * Forward-only migrations. Each runs once, inside the same IMMEDIATE transaction that records
 * it in `schema_version`, so two processes opening a fresh database at once cannot both apply it.
 * Never edit a shipped migration: append a new one.
 */
/**
 * The trigger (schema v6) that adds each new usage event to one report rollup, in the statement
 * that writes the event: `table` keyed by `keyColumn` = `keyExpr` (an hour or a day), or by the
 * grouping columns alone for the all-time rollup.
 */
function rollupTrigger(table: string, keyColumn?: string, keyExpr?: string): string {
  const key = keyColumn === undefined ? "" : `${keyColumn}, `;
  const keyValue = keyExpr === undefined ? "" : `${keyExpr}, `;
  return `CREATE TRIGGER ${table}_on_event AFTER INSERT ON usage_events BEGIN
  INSERT INTO ${table} (${key}bottle, parents, agent, provider, model, events, input_tokens, output_tokens,
    cache_read_tokens, cache_write_tokens, reasoning_tokens, tokens, cost_usd, unpriced, usage_missing)
  VALUES (${keyValue}NEW.bottle, NEW.parents, NEW.agent, NEW.provider, coalesce(NEW.model, ''), 1,
    NEW.input_tokens, NEW.output_tokens, NEW.cache_read_tokens, NEW.cache_write_tokens, NEW.reasoning_tokens,
    NEW.tokens, coalesce(NEW.cost_usd, 0), NEW.cost_usd IS NULL, NEW.usage_missing)
  ON CONFLICT DO UPDATE SET
    events = events + 1, input_tokens = input_tokens + excluded.input_tokens,
    output_tokens = output_tokens + excluded.output_tokens,
    cache_read_tokens = cache_read_tokens + excluded.cache_read_tokens,
    cache_write_tokens = cache_write_tokens + excluded.cache_write_tokens,
    reasoning_tokens = reasoning_tokens + excluded.reasoning_tokens,
    tokens = tokens + excluded.tokens, cost_usd = cost_usd + excluded.cost_usd,
    unpriced = unpriced + excluded.unpriced, usage_missing = usage_missing + excluded.usage_missing;
END;`;
}

const MIGRATIONS: ReadonlyArray<{ version: number; sql: string }> = [
  {
    version: 1,
    sql: `
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;

CREATE TABLE budgets (
  scope TEXT NOT NULL CHECK (scope IN ('agent','bottle','global','ceiling')),
  key TEXT NOT NULL,
  provider TEXT NOT NULL,
  source TEXT NOT NULL CHECK (source IN ('settings','manifest','flag')),
  tokens INTEGER CHECK (tokens IS NULL OR tokens >= 0),
  usd REAL CHECK (usd IS NULL OR usd >= 0),
  win TEXT NOT NULL,
  policy TEXT CHECK (policy IS NULL OR policy IN ('cutoff','freeze','kill')),
  updated_at INTEGER NOT NULL,
  CHECK (tokens IS NOT NULL OR usd IS NOT NULL),
  PRIMARY KEY (scope, key, provider, source)
) WITHOUT ROWID;

CREATE TABLE usage_events (
  id INTEGER PRIMARY KEY,
  at INTEGER NOT NULL,
  request_id TEXT,
  reservation_id TEXT,
  bottle TEXT NOT NULL,
  parents TEXT NOT NULL,
  agent TEXT NOT NULL,
  provider TEXT NOT NULL,
  model TEXT,
  input_tokens INTEGER NOT NULL,
  output_tokens INTEGER NOT NULL,
  cache_read_tokens INTEGER NOT NULL,
  cache_write_tokens INTEGER NOT NULL,
  reasoning_tokens INTEGER NOT NULL,
  tokens INTEGER NOT NULL,
  cost_usd REAL,
  usage_missing INTEGER NOT NULL
);
CREATE INDEX usage_events_at ON usage_events (at);
CREATE INDEX usage_events_bottle_at ON usage_events (bottle, at);

-- Per-scope daily counters, written in the same transaction as the event. Scopes: 'agent'
-- (key agent), 'bottle' (key bottle, also incremented for each parent), 'global' (key '*').
CREATE TABLE usage_buckets (
  scope TEXT NOT NULL,
  key TEXT NOT NULL,
  provider TEXT NOT NULL,
  day INTEGER NOT NULL,
  tokens INTEGER NOT NULL,
  usd REAL NOT NULL,
  PRIMARY KEY (scope, key, provider, day)
) WITHOUT ROWID;

CREATE TABLE reservations (
  id TEXT PRIMARY KEY,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  request_id TEXT,
  bottle TEXT NOT NULL,
  parents TEXT NOT NULL,
  agent TEXT NOT NULL,
  provider TEXT NOT NULL,
  tokens INTEGER NOT NULL,
  usd REAL NOT NULL
) WITHOUT ROWID;
CREATE INDEX reservations_provider ON reservations (provider, expires_at);
CREATE INDEX reservations_expires ON reservations (expires_at);

CREATE TABLE cutoffs (
  bottle TEXT PRIMARY KEY,
  policy TEXT NOT NULL,
  since INTEGER NOT NULL,
  until INTEGER,
  scope TEXT,
  scope_key TEXT,
  scope_provider TEXT,
  by TEXT NOT NULL,
  reason TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE enforcement_actions (
  id INTEGER PRIMARY KEY,
  at INTEGER NOT NULL,
  bottle TEXT NOT NULL,
  action TEXT NOT NULL,
  scope TEXT,
  scope_key TEXT,
  scope_provider TEXT,
  by TEXT NOT NULL,
  reason TEXT NOT NULL
);
CREATE INDEX enforcement_actions_bottle ON enforcement_actions (bottle, at);

CREATE TABLE gateway_keys (
  id TEXT PRIMARY KEY,
  hash TEXT NOT NULL UNIQUE,
  bottle TEXT NOT NULL,
  agent TEXT NOT NULL,
  label TEXT,
  created_at INTEGER NOT NULL,
  revoked_at INTEGER
) WITHOUT ROWID;
`,
  },
  {
    // Reservations live for one call: the table holds only what is in flight, and every query on
    // it reads all live rows anyway (sums over a provider; parents are matched in JSON). Its two
    // indexes only made each reserve and settle write two more B-tree pages (measured: about 12%
    // of the store's CPU per reserve + settle pair).
    version: 2,
    sql: `
DROP INDEX IF EXISTS reservations_provider;
DROP INDEX IF EXISTS reservations_expires;
`,
  },
  {
    // Reservation owners and leases. Every store instance (a gateway process) registers itself as
    // an owner and renews its lease while it lives; its reservations carry its id. When an owner
    // is gone (lease expired, process dead on this host, or declared dead by its successor), any
    // live store reclaims its reservations at once: charged as usage-missing events, audited.
    // Rows written before this version have no owner and only expire by their TTL.
    version: 3,
    sql: `
ALTER TABLE reservations ADD COLUMN owner TEXT;
CREATE TABLE owners (
  id TEXT PRIMARY KEY,
  host TEXT NOT NULL,
  pidns TEXT NOT NULL,
  pid INTEGER NOT NULL,
  started_at INTEGER NOT NULL,
  lease_until INTEGER NOT NULL
) WITHOUT ROWID;
`,
  },
  {
    // Budget sources: the gateway config ("config") and the operator ("operator", e.g.
    // `bottle budget set`) get their own sources next to settings, manifest and a run's
    // `--budget` ("flag"). Until now the gateway config was stored as "flag": never removed when
    // the config dropped a budget, and governing ahead of nearer scopes like a run's flag.
    // Existing "flag" rows become "config" (in every released version only the gateway config
    // wrote lasting "flag" rows; a run removes its own when it ends), so the gateway's next
    // replaceBudgets("config", ...) brings them in line with its file. Every other row is kept.
    version: 4,
    sql: `
CREATE TABLE budgets_v4 (
  scope TEXT NOT NULL CHECK (scope IN ('agent','bottle','global','ceiling')),
  key TEXT NOT NULL,
  provider TEXT NOT NULL,
  source TEXT NOT NULL CHECK (source IN ('settings','config','manifest','operator','flag')),
  tokens INTEGER CHECK (tokens IS NULL OR tokens >= 0),
  usd REAL CHECK (usd IS NULL OR usd >= 0),
  win TEXT NOT NULL,
  policy TEXT CHECK (policy IS NULL OR policy IN ('cutoff','freeze','kill')),
  updated_at INTEGER NOT NULL,
  CHECK (tokens IS NOT NULL OR usd IS NOT NULL),
  PRIMARY KEY (scope, key, provider, source)
) WITHOUT ROWID;
INSERT INTO budgets_v4 (scope, key, provider, source, tokens, usd, win, policy, updated_at)
  SELECT scope, key, provider, CASE source WHEN 'flag' THEN 'config' ELSE source END,
         tokens, usd, win, policy, updated_at
  FROM budgets WHERE true
  ON CONFLICT (scope, key, provider, source) DO NOTHING;
DROP TABLE budgets;
ALTER TABLE budgets_v4 RENAME TO budgets;
INSERT INTO meta (key, value) VALUES ('budgets_version', '1')
  ON CONFLICT(key) DO UPDATE SET value = CAST(value AS INTEGER) + 1;
`,
  },
  {
    // Report rollups: usage per UTC hour and per UTC day and (bottle, parents, agent, provider,
    // model), so a usage report over a big ledger reads whole days and hours from these and only
    // the partial hours at its edges from usage_events. They are folded in lazily, by event id,
    // before each report (the metering path writes nothing more). An index on the audit trail's
    // time for the dashboard's "latest actions".
    version: 5,
    sql: `
CREATE TABLE usage_hourly (
  hour INTEGER NOT NULL,
  bottle TEXT NOT NULL,
  parents TEXT NOT NULL,
  agent TEXT NOT NULL,
  provider TEXT NOT NULL,
  model TEXT NOT NULL,
  events INTEGER NOT NULL,
  input_tokens INTEGER NOT NULL,
  output_tokens INTEGER NOT NULL,
  cache_read_tokens INTEGER NOT NULL,
  cache_write_tokens INTEGER NOT NULL,
  reasoning_tokens INTEGER NOT NULL,
  tokens INTEGER NOT NULL,
  cost_usd REAL NOT NULL,
  unpriced INTEGER NOT NULL,
  usage_missing INTEGER NOT NULL,
  PRIMARY KEY (hour, bottle, agent, provider, model, parents)
) WITHOUT ROWID;
CREATE TABLE usage_daily (
  day INTEGER NOT NULL,
  bottle TEXT NOT NULL,
  parents TEXT NOT NULL,
  agent TEXT NOT NULL,
  provider TEXT NOT NULL,
  model TEXT NOT NULL,
  events INTEGER NOT NULL,
  input_tokens INTEGER NOT NULL,
  output_tokens INTEGER NOT NULL,
  cache_read_tokens INTEGER NOT NULL,
  cache_write_tokens INTEGER NOT NULL,
  reasoning_tokens INTEGER NOT NULL,
  tokens INTEGER NOT NULL,
  cost_usd REAL NOT NULL,
  unpriced INTEGER NOT NULL,
  usage_missing INTEGER NOT NULL,
  PRIMARY KEY (day, bottle, agent, provider, model, parents)
) WITHOUT ROWID;
INSERT INTO usage_hourly SELECT at / 3600000 - (at % 3600000 < 0), bottle, parents, agent, provider, coalesce(model, ''),
  count(*), sum(input_tokens), sum(output_tokens), sum(cache_read_tokens), sum(cache_write_tokens),
  sum(reasoning_tokens), sum(tokens), coalesce(sum(cost_usd), 0), sum(cost_usd IS NULL), sum(usage_missing)
  FROM usage_events GROUP BY 1, 2, 3, 4, 5, 6;
INSERT INTO usage_daily SELECT hour / 24 - (hour % 24 < 0), bottle, parents, agent, provider, model,
  sum(events), sum(input_tokens), sum(output_tokens), sum(cache_read_tokens), sum(cache_write_tokens),
  sum(reasoning_tokens), sum(tokens), sum(cost_usd), sum(unpriced), sum(usage_missing)
  FROM usage_hourly GROUP BY 1, 2, 3, 4, 5, 6;
INSERT INTO meta (key, value) VALUES ('rollup_watermark', (SELECT coalesce(max(id), 0) FROM usage_events))
  ON CONFLICT(key) DO UPDATE SET value = excluded.value;
CREATE INDEX enforcement_actions_at ON enforcement_actions (at);
`,
  },
  {
    // The report rollups are kept by triggers from now on: every event adds itself to usage_hourly,
    // usage_daily and the new usage_total (no time column: an all-time report reads one row per
    // bottle, agent, provider and model) inside the statement that inserts it, so they are exact
    // with any number of writing processes (SQLite has one writer at a time), whatever inserts
    // the event (also one a still-running v5 process inserts), and a report never has a backlog
    // to fold. This first folds the events a v5 store had not folded yet (after its watermark),
    // moves the watermark past every id (so a v5 process never folds again), then back-fills
    // usage_total from the daily rollup.
    version: 6,
    sql: `
INSERT INTO usage_hourly SELECT CAST(at / 3600000 AS INTEGER), bottle, parents, agent, provider, coalesce(model, ''),
  count(*), sum(input_tokens), sum(output_tokens), sum(cache_read_tokens), sum(cache_write_tokens),
  sum(reasoning_tokens), sum(tokens), coalesce(sum(cost_usd), 0), sum(cost_usd IS NULL), sum(usage_missing)
  FROM usage_events
  WHERE id > coalesce((SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'rollup_watermark'), 0)
  GROUP BY 1, 2, 3, 4, 5, 6
  ON CONFLICT(hour, bottle, agent, provider, model, parents) DO UPDATE SET
    events = events + excluded.events, input_tokens = input_tokens + excluded.input_tokens,
    output_tokens = output_tokens + excluded.output_tokens,
    cache_read_tokens = cache_read_tokens + excluded.cache_read_tokens,
    cache_write_tokens = cache_write_tokens + excluded.cache_write_tokens,
    reasoning_tokens = reasoning_tokens + excluded.reasoning_tokens,
    tokens = tokens + excluded.tokens, cost_usd = cost_usd + excluded.cost_usd,
    unpriced = unpriced + excluded.unpriced, usage_missing = usage_missing + excluded.usage_missing;
INSERT INTO usage_daily SELECT CAST(at / 86400000 AS INTEGER), bottle, parents, agent, provider, coalesce(model, ''),
  count(*), sum(input_tokens), sum(output_tokens), sum(cache_read_tokens), sum(cache_write_tokens),
  sum(reasoning_tokens), sum(tokens), coalesce(sum(cost_usd), 0), sum(cost_usd IS NULL), sum(usage_missing)
  FROM usage_events
  WHERE id > coalesce((SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'rollup_watermark'), 0)
  GROUP BY 1, 2, 3, 4, 5, 6
  ON CONFLICT(day, bottle, agent, provider, model, parents) DO UPDATE SET
    events = events + excluded.events, input_tokens = input_tokens + excluded.input_tokens,
    output_tokens = output_tokens + excluded.output_tokens,
    cache_read_tokens = cache_read_tokens + excluded.cache_read_tokens,
    cache_write_tokens = cache_write_tokens + excluded.cache_write_tokens,
    reasoning_tokens = reasoning_tokens + excluded.reasoning_tokens,
    tokens = tokens + excluded.tokens, cost_usd = cost_usd + excluded.cost_usd,
    unpriced = unpriced + excluded.unpriced, usage_missing = usage_missing + excluded.usage_missing;
-- A v5 process still running folds events above this watermark before each report: past every
-- id, it never folds again (the triggers keep the rollups now; a second fold would count twice).
INSERT INTO meta (key, value) VALUES ('rollup_watermark', '9007199254740991')
  ON CONFLICT(key) DO UPDATE SET value = excluded.value;
CREATE TABLE usage_total (
  bottle TEXT NOT NULL,
  parents TEXT NOT NULL,
  agent TEXT NOT NULL,
  provider TEXT NOT NULL,
  model TEXT NOT NULL,
  events INTEGER NOT NULL,
  input_tokens INTEGER NOT NULL,
  output_tokens INTEGER NOT NULL,
  cache_read_tokens INTEGER NOT NULL,
  cache_write_tokens INTEGER NOT NULL,
  reasoning_tokens INTEGER NOT NULL,
  tokens INTEGER NOT NULL,
  cost_usd REAL NOT NULL,
  unpriced INTEGER NOT NULL,
  usage_missing INTEGER NOT NULL,
  PRIMARY KEY (bottle, agent, provider, model, parents)
) WITHOUT ROWID;
INSERT INTO usage_total SELECT bottle, parents, agent, provider, model,
  sum(events), sum(input_tokens), sum(output_tokens), sum(cache_read_tokens), sum(cache_write_tokens),
  sum(reasoning_tokens), sum(tokens), sum(cost_usd), sum(unpriced), sum(usage_missing)
  FROM usage_daily GROUP BY 1, 2, 3, 4, 5;
${rollupTrigger("usage_hourly", "hour", "CAST(NEW.at / 3600000 AS INTEGER)")}
${rollupTrigger("usage_daily", "day", "CAST(NEW.at / 86400000 AS INTEGER)")}
${rollupTrigger("usage_total")}
`,
  },
];

export const LATEST_SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1]?.version ?? 0;

const VERSION_SQL = "SELECT max(version) AS v FROM schema_version";

let writes = 0;

/** How many times this process took the write lock to check or apply migrations (tests). */
export function migrationWrites(): number {
  return writes;
}

/**
 * Bring the database to the latest schema. Idempotent; safe to run from several processes.
 * Statements come from the connection's cache (see connection.ts for why).
 *
 * A store that is already current (every open after the first) costs one read of its version,
 * outside any explicit transaction: schema versions only grow, so a database at the latest
 * version stays there. Anything else (no version table yet, an older or newer version, a file
 * that cannot be read) takes the path below, under the write lock, which migrates or refuses it.
 */
export function migrate(
  conn: Connection,
  now: number,
  /** Stop at this version (tests build databases as older releases left them). */
  upTo: number = LATEST_SCHEMA_VERSION,
): number {
  if (upTo === LATEST_SCHEMA_VERSION && versionIfReadable(conn) === LATEST_SCHEMA_VERSION) {
    return LATEST_SCHEMA_VERSION;
  }
  writes++;
  conn.exec(
    "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)",
  );
  const current = (): number => (conn.prepare(VERSION_SQL).get() as { v: number | null }).v ?? 0;
  return conn.transaction("immediate", () => {
    const have = current();
    if (have > LATEST_SCHEMA_VERSION) {
      throw new BudgetStoreError(
        "E_SCHEMA_VERSION",
        `database schema version ${have} is newer than this @bottlekit/budget-store understands (${LATEST_SCHEMA_VERSION})`,
        {
          hint: "upgrade @bottlekit/budget-store (and the tools using it) to the version that wrote it",
        },
      );
    }
    for (const m of MIGRATIONS) {
      if (m.version <= have || m.version > upTo) continue;
      conn.exec(m.sql);
      conn
        .prepare("INSERT INTO schema_version (version, applied_at) VALUES (?, ?)")
        .run(m.version, now);
    }
    return current();
  });
}

/** The recorded schema version, or undefined when it cannot be read (no table yet, say). */
function versionIfReadable(conn: Connection): number | undefined {
  try {
    return (conn.prepare(VERSION_SQL).get() as { v: number | null }).v ?? 0;
  } catch {
    // The full path below reads it again and reports what is wrong, as it always did.
    return undefined;
  }
}
