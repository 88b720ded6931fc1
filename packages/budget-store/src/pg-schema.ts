import { PG_METER_V6_SQL } from "./pg-meter-v6.ts";
import { PG_ROLLUP_MIGRATION_SQL } from "./pg-rollup.ts";

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
  {
    // Group commit in one round trip: the reserves and settles a store has queued go
    // to the server as one statement, bk_meter(), which is one transaction: it checks the budgets
    // version the caller resolved against, takes the advisory locks of every call in sorted
    // order, and runs the calls in order (each sees the ones before it). The functions hold no
    // budget semantics of their own: the caller passes the budgets it resolved with the brain
    // (lock keys, limits, window start days) and decides every refusal and crossing from the
    // sums they return. What they enforce is the brain's grant rule (used < limit and used +
    // reserved + estimate <= limit on every entry), checked again by the caller on each result;
    // anything else (a cutoff to lift, a settle that spends a budget) they hand back untouched
    // for the caller's full transaction.
    version: 2,
    sql: `
-- One call of a bk_meter() batch, as the caller sends it (JSON object keys = these names): a
-- reserve (k = 'r') or a settle (k = 's'). JSON arrays become SQL arrays in one parse.
CREATE TYPE bk_op AS (
  k text, id text, now bigint, req text, bottle text, parents jsonb, agent text, provider text,
  chain text[], est bigint, est_usd float8, expires bigint,
  model text, input bigint, output bigint, cache_read bigint, cache_write bigint, reasoning bigint,
  tokens bigint, cost float8, missing boolean, charged_usd float8, counter_scopes text[],
  counter_keys text[], day int,
  scopes text[], keys text[], days int[], tok float8[], usd float8[]
);

-- plpgsql, not sql: its statement's plan is prepared once per connection and reused
CREATE FUNCTION bk_sums(p_provider text, p_scopes text[], p_keys text[], p_days int[], p_now bigint,
  OUT ut float8[], OUT uu float8[], OUT rt float8[], OUT ru float8[])
LANGUAGE plpgsql STABLE AS $f$
BEGIN
  IF cardinality(p_scopes) = 0 THEN
    ut := '{}'; uu := '{}'; rt := '{}'; ru := '{}';
    RETURN;
  END IF;
  SELECT coalesce(array_agg(su.t ORDER BY a.i), '{}'), coalesce(array_agg(su.u ORDER BY a.i), '{}'),
         coalesce(array_agg(sr.t ORDER BY a.i), '{}'), coalesce(array_agg(sr.u ORDER BY a.i), '{}')
    INTO ut, uu, rt, ru
  FROM unnest(p_scopes, p_keys, p_days) WITH ORDINALITY AS a(bs, bk, d, i)
  CROSS JOIN LATERAL (
    SELECT coalesce(sum(b.tokens), 0)::float8 AS t, coalesce(sum(b.usd), 0)::float8 AS u
    FROM usage_buckets b WHERE b.scope = a.bs AND b.key = a.bk AND b.provider = p_provider AND b.day >= a.d
  ) su
  CROSS JOIN LATERAL (
    SELECT coalesce(sum(x.tokens), 0)::float8 AS t, coalesce(sum(x.usd), 0)::float8 AS u
    FROM reservations x WHERE p_now IS NOT NULL AND x.provider = p_provider AND x.expires_at > p_now
      AND (a.bs = 'global' OR (a.bs = 'agent' AND x.agent = a.bk)
           OR (a.bs = 'bottle' AND (x.bottle = a.bk OR x.parents ? a.bk)))
  ) sr;
END $f$;

CREATE FUNCTION bk_reserve_op(op bk_op, p_owner text) RETURNS jsonb LANGUAGE plpgsql AS $f$
DECLARE
  v_cut text[];
  v_lifts boolean;
  s record;
  i int;
BEGIN
  SELECT coalesce(array_agg(c.bottle) FILTER (WHERE c.until IS NULL OR c.until > op.now), '{}'),
         coalesce(bool_or(c.until IS NOT NULL AND c.until <= op.now), false)
    INTO v_cut, v_lifts FROM cutoffs c WHERE c.bottle = ANY(op.chain);
  IF v_lifts THEN
    RETURN jsonb_build_object('s', 'lift');
  END IF;
  IF cardinality(v_cut) > 0 THEN
    RETURN jsonb_build_object('s', 'refused', 'cut', to_jsonb(v_cut));
  END IF;
  SELECT * INTO s FROM bk_sums(op.provider, op.scopes, op.keys, op.days, op.now);
  FOR i IN 1 .. coalesce(cardinality(op.tok), 0) LOOP
    IF (op.tok[i] IS NOT NULL AND (s.ut[i] >= op.tok[i] OR s.ut[i] + s.rt[i] + op.est > op.tok[i]))
       OR (op.usd[i] IS NOT NULL AND (s.uu[i] >= op.usd[i] OR s.uu[i] + s.ru[i] + op.est_usd > op.usd[i])) THEN
      RETURN jsonb_build_object('s', 'refused', 'ut', to_jsonb(s.ut), 'uu', to_jsonb(s.uu),
        'rt', to_jsonb(s.rt), 'ru', to_jsonb(s.ru));
    END IF;
  END LOOP;
  INSERT INTO reservations (id, created_at, expires_at, request_id, bottle, parents, agent, provider, tokens, usd, owner)
    VALUES (op.id, op.now, op.expires, op.req, op.bottle, op.parents, op.agent, op.provider, op.est,
            op.est_usd, p_owner);
  RETURN jsonb_build_object('s', 'granted', 'ut', to_jsonb(s.ut), 'uu', to_jsonb(s.uu),
    'rt', to_jsonb(s.rt), 'ru', to_jsonb(s.ru));
END $f$;

CREATE FUNCTION bk_settle_op(op bk_op) RETURNS jsonb LANGUAGE plpgsql AS $f$
DECLARE
  v_event bigint;
  s record;
  i int;
BEGIN
  -- used before this charge; every applicable counter gets the whole charge (its day is in
  -- every window), so used after = used before + charge
  SELECT * INTO s FROM bk_sums(op.provider, op.scopes, op.keys, op.days, NULL);
  FOR i IN 1 .. coalesce(cardinality(op.tok), 0) LOOP
    IF (op.tok[i] IS NOT NULL AND s.ut[i] + op.tokens >= op.tok[i])
       OR (op.usd[i] IS NOT NULL AND s.uu[i] + op.charged_usd >= op.usd[i]) THEN
      -- this charge spends a budget: nothing written; the caller's full transaction records
      -- the charge and the cutoff together
      RETURN jsonb_build_object('s', 'crossing');
    END IF;
  END LOOP;
  DELETE FROM reservations WHERE id = op.id;
  IF NOT FOUND THEN
    RETURN jsonb_build_object('s', 'unknown');
  END IF;
  INSERT INTO usage_events (at, request_id, reservation_id, bottle, parents, agent, provider, model,
      input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, reasoning_tokens, tokens,
      cost_usd, usage_missing)
    VALUES (op.now, op.req, op.id, op.bottle, op.parents, op.agent, op.provider, op.model, op.input,
      op.output, op.cache_read, op.cache_write, op.reasoning, op.tokens, op.cost, op.missing)
    RETURNING id INTO v_event;
  INSERT INTO usage_buckets (scope, key, provider, day, tokens, usd)
    SELECT c.s, c.k, op.provider, op.day, op.tokens, op.charged_usd
    FROM unnest(op.counter_scopes, op.counter_keys) WITH ORDINALITY AS c(s, k, o) ORDER BY c.o
    ON CONFLICT (scope, key, provider, day) DO UPDATE SET tokens = usage_buckets.tokens + excluded.tokens,
      usd = usage_buckets.usd + excluded.usd;
  RETURN jsonb_build_object('s', 'settled', 'e', v_event, 'ut', to_jsonb(s.ut), 'uu', to_jsonb(s.uu));
END $f$;

CREATE FUNCTION bk_meter(p_version text, p_owner text, p_locks text[], p_ops jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $f$
DECLARE
  k text;
  c record;
  pass int;
  results jsonb[] := array_fill(NULL::jsonb, ARRAY[jsonb_array_length(p_ops)]);
BEGIN
  IF coalesce((SELECT value FROM meta WHERE key = 'budgets_version'), '0') <> p_version THEN
    RETURN NULL; -- the caller resolved with older budgets: it reloads them and sends again
  END IF;
  -- Pass 1 runs the calls no budget governs (no locks, no sums), pass 2 takes the locks and
  -- runs the others, so other stores wait for these locks only as long as budgeted calls take.
  -- Their order does not matter: a call no budget governs writes no counter and no hold that a
  -- budgeted call of the batch reads (its provider has no budget on any scope of its chain,
  -- global and ceiling included), and a batch writes no cutoff.
  FOR pass IN 1 .. 2 LOOP
    IF pass = 2 THEN
      -- sorted by the caller: every transaction locks in the same order, never a deadlock
      FOREACH k IN ARRAY p_locks LOOP
        PERFORM pg_advisory_xact_lock(hashtextextended(k, 0));
      END LOOP;
    END IF;
    -- (LATERAL, not (f(x)).*, which would call f once per column)
    FOR c IN SELECT t.o, r AS op FROM jsonb_array_elements(p_ops) WITH ORDINALITY AS t(x, o)
        CROSS JOIN LATERAL jsonb_populate_record(NULL::bk_op, t.x) AS r ORDER BY t.o LOOP
      CONTINUE WHEN (coalesce(cardinality((c.op).scopes), 0) = 0) <> (pass = 1);
      IF (c.op).k = 'r' THEN
        results[c.o] := bk_reserve_op(c.op, p_owner);
      ELSIF (c.op).k = 's' THEN
        results[c.o] := bk_settle_op(c.op);
      ELSE
        RAISE EXCEPTION 'bk_meter: unknown operation kind %', (c.op).k;
      END IF;
    END LOOP;
  END LOOP;
  RETURN to_jsonb(results);
END $f$;
`,
  },
  {
    // bk_meter() without holding its locks through the disk flush. A batch serializes on its
    // budgets' advisory locks, and a synchronous commit keeps those locks until its WAL is on
    // disk (an fdatasync: 1.7-3 ms on this kind of machine), so every store waited for every
    // other's flush, one after another. bk_meter_call() commits the batch asynchronously (locks
    // released as soon as the commit record is written), then, before it returns, commits a
    // second transaction synchronously whose only WAL record is a logical message written after
    // that commit record: the CALL answers only once the disk holds the batch. What a caller is
    // told is as durable as with synchronous commit. What another batch read before the flush
    // (a hold, a charge) is older in the WAL than that batch's own barrier, so it is on disk
    // before that batch answers too; a crash before the flush loses both batches, and neither
    // was answered. Flushes of concurrent batches share one fdatasync (the server's group commit).
    version: 3,
    sql: `
CREATE PROCEDURE bk_meter_call(p_version text, p_owner text, p_locks text[], p_ops jsonb,
  INOUT r jsonb)
LANGUAGE plpgsql AS $f$
BEGIN
  PERFORM set_config('synchronous_commit', 'off', true);
  r := bk_meter(p_version, p_owner, p_locks, p_ops);
  COMMIT;
  -- the barrier: a transaction with WAL of its own commits with the session's synchronous_commit,
  -- flushing everything before it, the batch above included
  PERFORM pg_logical_emit_message(true, 'bottlekit', 'meter');
END $f$;
`,
  },
  {
    // Less server work per call, same answers: the statements of a batch run generic plans
    // (below: no planning per call), bk_meter reads each call's JSON once (version 2 read every
    // call in both passes), calls no budget governs skip bk_sums (nothing to sum), and
    // reservations lose their owner index (only reclaim and listOwners look owners up, off the
    // metering path; a hold table is as small as the calls in flight).
    version: 4,
    sql: `
DROP INDEX reservations_owner;

CREATE OR REPLACE FUNCTION bk_reserve_op(op bk_op, p_owner text) RETURNS jsonb LANGUAGE plpgsql AS $f$
DECLARE
  v_cut text[];
  v_lifts boolean;
  ut float8[] := '{}';
  uu float8[] := '{}';
  rt float8[] := '{}';
  ru float8[] := '{}';
  i int;
BEGIN
  SELECT coalesce(array_agg(c.bottle) FILTER (WHERE c.until IS NULL OR c.until > op.now), '{}'),
         coalesce(bool_or(c.until IS NOT NULL AND c.until <= op.now), false)
    INTO v_cut, v_lifts FROM cutoffs c WHERE c.bottle = ANY(op.chain);
  IF v_lifts THEN
    RETURN jsonb_build_object('s', 'lift');
  END IF;
  IF cardinality(v_cut) > 0 THEN
    RETURN jsonb_build_object('s', 'refused', 'cut', to_jsonb(v_cut));
  END IF;
  IF coalesce(cardinality(op.scopes), 0) > 0 THEN
    SELECT * INTO ut, uu, rt, ru FROM bk_sums(op.provider, op.scopes, op.keys, op.days, op.now);
    FOR i IN 1 .. coalesce(cardinality(op.tok), 0) LOOP
      IF (op.tok[i] IS NOT NULL AND (ut[i] >= op.tok[i] OR ut[i] + rt[i] + op.est > op.tok[i]))
         OR (op.usd[i] IS NOT NULL AND (uu[i] >= op.usd[i] OR uu[i] + ru[i] + op.est_usd > op.usd[i])) THEN
        RETURN jsonb_build_object('s', 'refused', 'ut', to_jsonb(ut), 'uu', to_jsonb(uu),
          'rt', to_jsonb(rt), 'ru', to_jsonb(ru));
      END IF;
    END LOOP;
  END IF;
  INSERT INTO reservations (id, created_at, expires_at, request_id, bottle, parents, agent, provider, tokens, usd, owner)
    VALUES (op.id, op.now, op.expires, op.req, op.bottle, op.parents, op.agent, op.provider, op.est,
            op.est_usd, p_owner);
  RETURN jsonb_build_object('s', 'granted', 'ut', to_jsonb(ut), 'uu', to_jsonb(uu),
    'rt', to_jsonb(rt), 'ru', to_jsonb(ru));
END $f$;

CREATE OR REPLACE FUNCTION bk_settle_op(op bk_op) RETURNS jsonb LANGUAGE plpgsql AS $f$
DECLARE
  v_event bigint;
  ut float8[] := '{}';
  uu float8[] := '{}';
  rt float8[];
  ru float8[];
  i int;
BEGIN
  IF coalesce(cardinality(op.scopes), 0) > 0 THEN
    -- used before this charge; every applicable counter gets the whole charge (its day is in
    -- every window), so used after = used before + charge
    SELECT * INTO ut, uu, rt, ru FROM bk_sums(op.provider, op.scopes, op.keys, op.days, NULL);
    FOR i IN 1 .. coalesce(cardinality(op.tok), 0) LOOP
      IF (op.tok[i] IS NOT NULL AND ut[i] + op.tokens >= op.tok[i])
         OR (op.usd[i] IS NOT NULL AND uu[i] + op.charged_usd >= op.usd[i]) THEN
        -- this charge spends a budget: nothing written; the caller's full transaction records
        -- the charge and the cutoff together
        RETURN jsonb_build_object('s', 'crossing');
      END IF;
    END LOOP;
  END IF;
  DELETE FROM reservations WHERE id = op.id;
  IF NOT FOUND THEN
    RETURN jsonb_build_object('s', 'unknown');
  END IF;
  INSERT INTO usage_events (at, request_id, reservation_id, bottle, parents, agent, provider, model,
      input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, reasoning_tokens, tokens,
      cost_usd, usage_missing)
    VALUES (op.now, op.req, op.id, op.bottle, op.parents, op.agent, op.provider, op.model, op.input,
      op.output, op.cache_read, op.cache_write, op.reasoning, op.tokens, op.cost, op.missing)
    RETURNING id INTO v_event;
  INSERT INTO usage_buckets (scope, key, provider, day, tokens, usd)
    SELECT c.s, c.k, op.provider, op.day, op.tokens, op.charged_usd
    FROM unnest(op.counter_scopes, op.counter_keys) WITH ORDINALITY AS c(s, k, o) ORDER BY c.o
    ON CONFLICT (scope, key, provider, day) DO UPDATE SET tokens = usage_buckets.tokens + excluded.tokens,
      usd = usage_buckets.usd + excluded.usd;
  RETURN jsonb_build_object('s', 'settled', 'e', v_event, 'ut', to_jsonb(ut), 'uu', to_jsonb(uu));
END $f$;

-- Generic plans for every statement of a batch: plpgsql plans each statement with the call's
-- values for its first five runs and keeps a generic plan only if it looks no costlier than
-- those; bk_sums's unnest of parameter arrays never does (a generic plan guesses 10 elements),
-- so it was planned again on every call (planning took longer than running it). Measured on a
-- loaded 2-core machine, server CPU per reserve+settle pair: 1.09-1.35 ms before, 0.63-0.78
-- after, same batches interleaved. The generic plans are the index scans a custom plan picks.
CREATE OR REPLACE FUNCTION bk_meter(p_version text, p_owner text, p_locks text[], p_ops jsonb) RETURNS jsonb
LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan AS $f$
DECLARE
  k text;
  ops bk_op[];
  op bk_op;
  n int;
  i int;
  pass int;
  results jsonb[];
BEGIN
  IF coalesce((SELECT value FROM meta WHERE key = 'budgets_version'), '0') <> p_version THEN
    RETURN NULL; -- the caller resolved with older budgets: it reloads them and sends again
  END IF;
  -- each call's JSON read once, in call order (LATERAL, not (f(x)).*, which would call f once
  -- per column)
  ops := ARRAY(SELECT r FROM jsonb_array_elements(p_ops) WITH ORDINALITY AS t(x, o)
    CROSS JOIN LATERAL jsonb_populate_record(NULL::bk_op, t.x) AS r ORDER BY t.o);
  n := coalesce(cardinality(ops), 0);
  results := array_fill(NULL::jsonb, ARRAY[n]);
  -- Pass 1 runs the calls no budget governs (no locks, no sums), pass 2 takes the locks and
  -- runs the others, so other stores wait for these locks only as long as budgeted calls take.
  -- Their order does not matter: a call no budget governs writes no counter and no hold that a
  -- budgeted call of the batch reads (its provider has no budget on any scope of its chain,
  -- global and ceiling included), and a batch writes no cutoff.
  FOR pass IN 1 .. 2 LOOP
    IF pass = 2 THEN
      -- sorted by the caller: every transaction locks in the same order, never a deadlock
      FOREACH k IN ARRAY p_locks LOOP
        PERFORM pg_advisory_xact_lock(hashtextextended(k, 0));
      END LOOP;
    END IF;
    FOR i IN 1 .. n LOOP
      op := ops[i];
      CONTINUE WHEN (coalesce(cardinality(op.scopes), 0) = 0) <> (pass = 1);
      IF op.k = 'r' THEN
        results[i] := bk_reserve_op(op, p_owner);
      ELSIF op.k = 's' THEN
        results[i] := bk_settle_op(op);
      ELSE
        RAISE EXCEPTION 'bk_meter: unknown operation kind %', op.k;
      END IF;
    END LOOP;
  END LOOP;
  RETURN to_jsonb(results);
END $f$;
`,
  },
  {
    // Report rollups that cost the metering path only a column default: each event carries its
    // inserting transaction's id, rollups hold the events below a watermark, reports add the
    // rest live (pg-rollup.ts). Existing events are rolled up here.
    version: 5,
    sql: PG_ROLLUP_MIGRATION_SQL,
  },
  {
    // Fewer statements per metering call, same answers and rows: sums read inline instead of
    // through bk_sums(), a settle reads only used sums and claims its hold and writes its event
    // in one statement (pg-meter-v6.ts).
    version: 6,
    sql: PG_METER_V6_SQL,
  },
];

export const PG_LATEST_VERSION = PG_MIGRATIONS[PG_MIGRATIONS.length - 1]?.version ?? 0;

/** The advisory lock key that serializes migrations (any fixed 64-bit number). */
export const PG_MIGRATION_LOCK = 7_262_001_021;
