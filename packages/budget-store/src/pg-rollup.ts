/**
 * Postgres report rollups that cost the metering path nothing but a column default.
 *
 * Every event row carries the id of the transaction that inserted it (`xid xid8 DEFAULT
 * pg_current_xact_id()`: the top-level id, also inside a subtransaction or a plpgsql exception
 * block; 64 bits with the epoch, so it never wraps). Three rollup tables (per hour, per day, all
 * time × bottle, parents, agent, provider, model) hold the sums of exactly the events whose xid
 * is below a stored watermark W. A report reads the rollups plus, live, the events with xid >= W
 * (the "tail", through the xid index), in one statement, so one snapshot: it sees either a fold
 * and its watermark or neither.
 *
 * The fold (bk_rollup_fold) moves W to the xmin of its own statement's snapshot: every
 * transaction with an xid below it has ended (committed or aborted), so no event with such an xid
 * can appear later, and the same snapshot sees all those that committed. It adds the events with
 * W <= xid < xmin to the rollups and stores the new W, in that one statement, under a
 * transaction-level advisory lock (a second fold at the same time skips). It commits
 * asynchronously: a crash can lose a fold, but never half of one (the rollups and W are one
 * transaction), and a lost fold is redone by the next.
 *
 * A watermark above the server's next xid means the database was restored into another cluster
 * (pg_dump/pg_restore: the rows keep their old xids, the new cluster counts from its own): the
 * rollups are then ignored (reports read every event) and the next fold rebuilds them from zero.
 *
 * The migration adds the column with the constant xid 0 for the rows already there (no table
 * rewrite) and then the per-transaction default; ALTER TABLE holds the table's exclusive lock, so
 * no other transaction has an insert in flight, and the fold it ends with rolls every old row up.
 */

/** The advisory lock key of the fold (any fixed 64-bit number, distinct from the others). */
export const PG_ROLLUP_LOCK = 7_262_001_022;

const FIGURES_DDL = `events BIGINT NOT NULL,
  input_tokens BIGINT NOT NULL,
  output_tokens BIGINT NOT NULL,
  cache_read_tokens BIGINT NOT NULL,
  cache_write_tokens BIGINT NOT NULL,
  reasoning_tokens BIGINT NOT NULL,
  tokens BIGINT NOT NULL,
  cost_usd DOUBLE PRECISION NOT NULL,
  unpriced BIGINT NOT NULL,
  usage_missing BIGINT NOT NULL`;

const FIGURES = [
  "events",
  "input_tokens",
  "output_tokens",
  "cache_read_tokens",
  "cache_write_tokens",
  "reasoning_tokens",
  "tokens",
  "cost_usd",
  "unpriced",
  "usage_missing",
] as const;

/** One rollup's upsert from the folded tail `t` (grouped per hour). */
function upsert(table: string, unit: string | null): string {
  const key = `${unit === null ? "" : `${unit}, `}bottle, parents, agent, provider, model`;
  const unitExpr = unit === null ? "" : unit === "hour" ? "hour, " : "hour / 24, ";
  const sums = FIGURES.map((f) => `sum(${f})`).join(", ");
  const set = FIGURES.map((f) => `${f} = ${table}.${f} + excluded.${f}`).join(", ");
  return `INSERT INTO ${table} (${key}, ${FIGURES.join(", ")})
    SELECT ${unitExpr}bottle, parents, agent, provider, model, ${sums} FROM t
    GROUP BY ${unit === null ? "1, 2, 3, 4, 5" : "1, 2, 3, 4, 5, 6"}
    ON CONFLICT (${key}) DO UPDATE SET ${set}`;
}

/** The migration: the xid column and its index, the rollups, the fold, and the first fold. */
export const PG_ROLLUP_MIGRATION_SQL = `
ALTER TABLE usage_events ADD COLUMN xid xid8 NOT NULL DEFAULT '0';
ALTER TABLE usage_events ALTER COLUMN xid SET DEFAULT pg_current_xact_id();
CREATE INDEX usage_events_xid ON usage_events (xid);

CREATE TABLE usage_hourly (
  hour BIGINT NOT NULL, bottle TEXT NOT NULL, parents JSONB NOT NULL, agent TEXT NOT NULL,
  provider TEXT NOT NULL, model TEXT NOT NULL,
  ${FIGURES_DDL},
  PRIMARY KEY (hour, bottle, parents, agent, provider, model)
);
CREATE TABLE usage_daily (
  day BIGINT NOT NULL, bottle TEXT NOT NULL, parents JSONB NOT NULL, agent TEXT NOT NULL,
  provider TEXT NOT NULL, model TEXT NOT NULL,
  ${FIGURES_DDL},
  PRIMARY KEY (day, bottle, parents, agent, provider, model)
);
CREATE TABLE usage_total (
  bottle TEXT NOT NULL, parents JSONB NOT NULL, agent TEXT NOT NULL,
  provider TEXT NOT NULL, model TEXT NOT NULL,
  ${FIGURES_DDL},
  PRIMARY KEY (bottle, parents, agent, provider, model)
);
-- One row: the rollups hold exactly the events with xid < watermark.
CREATE TABLE usage_rollup_state (
  one BOOLEAN PRIMARY KEY DEFAULT true CHECK (one),
  watermark xid8 NOT NULL
);
INSERT INTO usage_rollup_state (watermark) VALUES ('0');

-- The watermark a report may trust, read with the caller's snapshot (STABLE: the planner also
-- evaluates it to estimate how many tail rows the xid index returns). '0' (every event is tail)
-- when it is above the next xid of this server: a restore into another cluster.
CREATE FUNCTION bk_rollup_watermark() RETURNS xid8 LANGUAGE sql STABLE AS $f$
  SELECT CASE WHEN s.watermark <= pg_snapshot_xmax(pg_current_snapshot()) THEN s.watermark
    ELSE '0'::xid8 END
  FROM usage_rollup_state s
$f$;

-- Whether the rollups hold what the watermark says (false after a restore into another cluster).
CREATE FUNCTION bk_rollup_trusted() RETURNS boolean LANGUAGE sql STABLE AS $f$
  SELECT s.watermark <= pg_snapshot_xmax(pg_current_snapshot()) FROM usage_rollup_state s
$f$;

-- Fold the tail into the rollups. Returns the number of events folded, or -1 when another fold
-- holds the lock (its caller's report then reads a longer tail; exact either way).
CREATE FUNCTION bk_rollup_fold() RETURNS bigint LANGUAGE plpgsql AS $f$
DECLARE
  n bigint;
BEGIN
  IF NOT pg_try_advisory_xact_lock(${PG_ROLLUP_LOCK}) THEN
    RETURN -1;
  END IF;
  -- derived data: a crash may lose this commit, never half of it
  PERFORM set_config('synchronous_commit', 'off', true);
  IF (SELECT watermark > pg_snapshot_xmax(pg_current_snapshot()) FROM usage_rollup_state) THEN
    -- restored into another cluster: start again from zero
    TRUNCATE usage_hourly, usage_daily, usage_total;
    UPDATE usage_rollup_state SET watermark = '0';
  END IF;
  -- one statement, one snapshot: its xmin bounds the events it reads and is the new watermark
  WITH w AS (
    SELECT s.watermark AS lo, pg_snapshot_xmin(pg_current_snapshot()) AS hi FROM usage_rollup_state s
  ), t AS MATERIALIZED (
    SELECT e.at / 3600000 AS hour, e.bottle, e.parents, e.agent, e.provider,
      coalesce(e.model, '') AS model, count(*) AS events, sum(e.input_tokens) AS input_tokens,
      sum(e.output_tokens) AS output_tokens, sum(e.cache_read_tokens) AS cache_read_tokens,
      sum(e.cache_write_tokens) AS cache_write_tokens, sum(e.reasoning_tokens) AS reasoning_tokens,
      sum(e.tokens) AS tokens, coalesce(sum(e.cost_usd), 0) AS cost_usd,
      count(*) FILTER (WHERE e.cost_usd IS NULL) AS unpriced,
      count(*) FILTER (WHERE e.usage_missing) AS usage_missing
    FROM usage_events e, w WHERE e.xid >= w.lo AND e.xid < w.hi
    GROUP BY 1, 2, 3, 4, 5, 6
  ), h AS (
    ${upsert("usage_hourly", "hour")}
  ), d AS (
    ${upsert("usage_daily", "day")}
  ), a AS (
    ${upsert("usage_total", null)}
  ), m AS (
    UPDATE usage_rollup_state s SET watermark = w.hi FROM w WHERE w.hi > s.watermark
  )
  SELECT coalesce(sum(t.events), 0) INTO n FROM t;
  RETURN n;
END $f$;

SELECT bk_rollup_fold();
`;

/**
 * The Postgres usage report for a set of group columns (in GROUP_COLUMNS order). Parameters:
 * $1 bottle, $2 include children, $3 agent, $4 provider, $5 model (null = any); `ranged` adds
 * $6..$17: whole days [$6, $7), whole hours [$8, $9) and [$10, $11) from the rollups, the tail
 * (xid >= watermark) of the whole-hour span [$12, $13), and the raw events of the partial hours
 * at the edges, [$14, $15) and [$16, $17). Unranged, it reads the all-time rollup and the whole
 * tail. Rollups count only while trusted (see bk_rollup_trusted).
 */
export function pgUsageSql(columns: readonly string[], ranged: boolean): string {
  const figures = FIGURES.join(", ");
  const cols = `bottle, parents, agent, provider, model, ${figures}`;
  const eventCols = `bottle, parents, agent, provider, coalesce(model, '') AS model, 1::bigint AS events,
      input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, reasoning_tokens, tokens,
      coalesce(cost_usd, 0) AS cost_usd, (cost_usd IS NULL)::int::bigint AS unpriced,
      usage_missing::int::bigint AS usage_missing`;
  const parts = ranged
    ? [
        `SELECT ${cols} FROM usage_daily WHERE day >= $6::bigint AND day < $7::bigint AND bk_rollup_trusted()`,
        `SELECT ${cols} FROM usage_hourly WHERE hour >= $8::bigint AND hour < $9::bigint AND bk_rollup_trusted()`,
        `SELECT ${cols} FROM usage_hourly WHERE hour >= $10::bigint AND hour < $11::bigint AND bk_rollup_trusted()`,
        `SELECT ${eventCols} FROM usage_events WHERE xid >= bk_rollup_watermark() AND at >= $12::bigint AND at < $13::bigint`,
        `SELECT ${eventCols} FROM usage_events WHERE at >= $14::bigint AND at < $15::bigint`,
        `SELECT ${eventCols} FROM usage_events WHERE at >= $16::bigint AND at < $17::bigint`,
      ]
    : [
        `SELECT ${cols} FROM usage_total WHERE bk_rollup_trusted()`,
        `SELECT ${eventCols} FROM usage_events WHERE xid >= bk_rollup_watermark()`,
      ];
  const g = columns.join(", ");
  return `SELECT ${g === "" ? "" : `${g}, `}sum(events)::float8 AS "events",
      sum(input_tokens)::float8 AS "inputTokens", sum(output_tokens)::float8 AS "outputTokens",
      sum(cache_read_tokens)::float8 AS "cacheReadTokens", sum(cache_write_tokens)::float8 AS "cacheWriteTokens",
      sum(reasoning_tokens)::float8 AS "reasoningTokens", sum(tokens)::float8 AS "tokens",
      sum(cost_usd)::float8 AS "costUsd", sum(unpriced)::float8 AS "unpricedEvents",
      sum(usage_missing)::float8 AS "usageMissingEvents"
    FROM (${parts.join("\n      UNION ALL ")}) x
    WHERE ($1::text IS NULL OR bottle = $1::text OR ($2::boolean AND parents ? $1::text))
      AND ($3::text IS NULL OR agent = $3::text) AND ($4::text IS NULL OR provider = $4::text)
      AND ($5::text IS NULL OR model = $5::text)${g === "" ? "" : `\n    GROUP BY ${g}`}`;
}
