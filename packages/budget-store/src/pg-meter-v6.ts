/**
 * Postgres metering functions, fewer statements per call (a schema migration; pg-schema.ts).
 *
 * Same answers and the same rows as version 4's bk_reserve_op() and bk_settle_op(); only the
 * server's work per call shrinks:
 * - the sums are read inline, one statement, instead of through bk_sums(), a second plpgsql
 *   function whose result a SQL statement had to collect row by row;
 * - a settle reads only the used sums (it never looked at the reserved ones: bk_sums() was
 *   called with no time and skipped them at run time);
 * - a settle claims its hold and writes its event in one statement (the DELETE's RETURNING
 *   feeds the INSERT), so an unknown or already settled reservation still writes nothing.
 * bk_sums() stays for a process of an older version still running during an upgrade.
 */
export const PG_METER_V6_SQL = `
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
    -- used (counters from each window's start day) and reserved (live holds) per budget
    SELECT array_agg(su.t ORDER BY a.i), array_agg(su.u ORDER BY a.i),
           array_agg(sr.t ORDER BY a.i), array_agg(sr.u ORDER BY a.i)
      INTO ut, uu, rt, ru
    FROM unnest(op.scopes, op.keys, op.days) WITH ORDINALITY AS a(bs, bk, d, i)
    CROSS JOIN LATERAL (
      SELECT coalesce(sum(b.tokens), 0)::float8 AS t, coalesce(sum(b.usd), 0)::float8 AS u
      FROM usage_buckets b
      WHERE b.scope = a.bs AND b.key = a.bk AND b.provider = op.provider AND b.day >= a.d
    ) su
    CROSS JOIN LATERAL (
      SELECT coalesce(sum(x.tokens), 0)::float8 AS t, coalesce(sum(x.usd), 0)::float8 AS u
      FROM reservations x WHERE x.provider = op.provider AND x.expires_at > op.now
        AND (a.bs = 'global' OR (a.bs = 'agent' AND x.agent = a.bk)
             OR (a.bs = 'bottle' AND (x.bottle = a.bk OR x.parents ? a.bk)))
    ) sr;
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
  i int;
BEGIN
  IF coalesce(cardinality(op.scopes), 0) > 0 THEN
    -- used before this charge; every applicable counter gets the whole charge (its day is in
    -- every window), so used after = used before + charge
    SELECT array_agg(su.t ORDER BY a.i), array_agg(su.u ORDER BY a.i) INTO ut, uu
    FROM unnest(op.scopes, op.keys, op.days) WITH ORDINALITY AS a(bs, bk, d, i)
    CROSS JOIN LATERAL (
      SELECT coalesce(sum(b.tokens), 0)::float8 AS t, coalesce(sum(b.usd), 0)::float8 AS u
      FROM usage_buckets b
      WHERE b.scope = a.bs AND b.key = a.bk AND b.provider = op.provider AND b.day >= a.d
    ) su;
    FOR i IN 1 .. coalesce(cardinality(op.tok), 0) LOOP
      IF (op.tok[i] IS NOT NULL AND ut[i] + op.tokens >= op.tok[i])
         OR (op.usd[i] IS NOT NULL AND uu[i] + op.charged_usd >= op.usd[i]) THEN
        -- this charge spends a budget: nothing written; the caller's full transaction records
        -- the charge and the cutoff together
        RETURN jsonb_build_object('s', 'crossing');
      END IF;
    END LOOP;
  END IF;
  -- claim the hold and write the event in one statement: no hold (settled, released or
  -- reclaimed already), no event
  WITH held AS (DELETE FROM reservations WHERE id = op.id RETURNING id)
  INSERT INTO usage_events (at, request_id, reservation_id, bottle, parents, agent, provider, model,
      input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, reasoning_tokens, tokens,
      cost_usd, usage_missing)
    SELECT op.now, op.req, held.id, op.bottle, op.parents, op.agent, op.provider, op.model,
      op.input, op.output, op.cache_read, op.cache_write, op.reasoning, op.tokens, op.cost,
      op.missing
    FROM held
    RETURNING id INTO v_event;
  IF v_event IS NULL THEN
    RETURN jsonb_build_object('s', 'unknown');
  END IF;
  INSERT INTO usage_buckets (scope, key, provider, day, tokens, usd)
    SELECT c.s, c.k, op.provider, op.day, op.tokens, op.charged_usd
    FROM unnest(op.counter_scopes, op.counter_keys) WITH ORDINALITY AS c(s, k, o) ORDER BY c.o
    ON CONFLICT (scope, key, provider, day) DO UPDATE SET tokens = usage_buckets.tokens + excluded.tokens,
      usd = usage_buckets.usd + excluded.usd;
  RETURN jsonb_build_object('s', 'settled', 'e', v_event, 'ut', to_jsonb(ut), 'uu', to_jsonb(uu));
END $f$;
`;
