/**
 * Postgres schema: versioned migrations, applied at open inside one transaction that first takes
 * a transaction-level advisory lock, so ten gateways starting together migrate once and the
 * others wait and find nothing to do. Never edit a shipped migration: append a new one.
 * Version 1 is the same logical schema as SQLite's v5 (owners, five budget sources).
 */
export const PG_MIGRATIONS: ReadonlyArray<{ version: number; sql: string }> = [
  {
    version: 1,
    sql: `
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE budgets (
  scope TEXT NOT NULL CHECK (scope IN ('agent','bottle','global','ceiling')),
  key TEXT NOT NULL,
  provider TEXT NOT NULL,
  source TEXT NOT NULL CHECK (source IN ('settings','config','manifest','operator','flag')),
  tokens BIGINT CHECK (tokens IS NULL OR tokens >= 0),
  usd DOUBLE PRECISION CHECK (usd IS NULL OR usd >= 0),
  win TEXT NOT NULL,
  policy TEXT CHECK (policy IS NULL OR policy IN ('cutoff','freeze','kill')),
  updated_at BIGINT NOT NULL,
  CHECK (tokens IS NOT NULL OR usd IS NOT NULL),
  PRIMARY KEY (scope, key, provider, source)
);
CREATE TABLE usage_events (
  id BIGSERIAL PRIMARY KEY,
  at BIGINT NOT NULL,
  request_id TEXT,
  reservation_id TEXT,
  bottle TEXT NOT NULL,
  parents JSONB NOT NULL,
  agent TEXT NOT NULL,
  provider TEXT NOT NULL,
  model TEXT,
  input_tokens BIGINT NOT NULL,
  output_tokens BIGINT NOT NULL,
  cache_read_tokens BIGINT NOT NULL,
  cache_write_tokens BIGINT NOT NULL,
  reasoning_tokens BIGINT NOT NULL,
  tokens BIGINT NOT NULL,
  cost_usd DOUBLE PRECISION,
  usage_missing BOOLEAN NOT NULL
);
CREATE INDEX usage_events_at ON usage_events (at);
CREATE INDEX usage_events_bottle_at ON usage_events (bottle, at);
CREATE TABLE usage_buckets (
  scope TEXT NOT NULL,
  key TEXT NOT NULL,
  provider TEXT NOT NULL,
  day INTEGER NOT NULL,
  tokens BIGINT NOT NULL,
  usd DOUBLE PRECISION NOT NULL,
  PRIMARY KEY (scope, key, provider, day)
);
CREATE TABLE reservations (
  id TEXT PRIMARY KEY,
  created_at BIGINT NOT NULL,
  expires_at BIGINT NOT NULL,
  request_id TEXT,
  bottle TEXT NOT NULL,
  parents JSONB NOT NULL,
  agent TEXT NOT NULL,
  provider TEXT NOT NULL,
  tokens BIGINT NOT NULL,
  usd DOUBLE PRECISION NOT NULL,
  owner TEXT
);
CREATE INDEX reservations_provider ON reservations (provider);
CREATE INDEX reservations_owner ON reservations (owner);
CREATE TABLE owners (
  id TEXT PRIMARY KEY,
  host TEXT NOT NULL,
  pidns TEXT NOT NULL,
  pid INTEGER NOT NULL,
  started_at BIGINT NOT NULL,
  lease_until BIGINT NOT NULL
);
CREATE TABLE cutoffs (
  bottle TEXT PRIMARY KEY,
  policy TEXT NOT NULL,
  since BIGINT NOT NULL,
  until BIGINT,
  scope TEXT,
  scope_key TEXT,
  scope_provider TEXT,
  by TEXT NOT NULL,
  reason TEXT NOT NULL
);
CREATE TABLE enforcement_actions (
  id BIGSERIAL PRIMARY KEY,
  at BIGINT NOT NULL,
  bottle TEXT NOT NULL,
  action TEXT NOT NULL,
  scope TEXT,
  scope_key TEXT,
  scope_provider TEXT,
  by TEXT NOT NULL,
  reason TEXT NOT NULL
);
CREATE INDEX enforcement_actions_bottle ON enforcement_actions (bottle, at);
CREATE INDEX enforcement_actions_at ON enforcement_actions (at);
CREATE TABLE gateway_keys (
  id TEXT PRIMARY KEY,
  hash TEXT NOT NULL UNIQUE,
  bottle TEXT NOT NULL,
  agent TEXT NOT NULL,
  label TEXT,
  created_at BIGINT NOT NULL,
  revoked_at BIGINT
);
`,
  },
];

export const PG_LATEST_VERSION = PG_MIGRATIONS[PG_MIGRATIONS.length - 1]?.version ?? 0;

/** The advisory lock key that serializes migrations (any fixed 64-bit number). */
export const PG_MIGRATION_LOCK = 7_262_001_021;
