/**
 * The Postgres backend: the same Store contract as SQLite, for many gateways on many hosts.
 * Decisions come from the shared brain (brain.ts); this file owns persistence, transactions and
 * locking only. Every metering call is one READ COMMITTED transaction that first takes
 * transaction-level advisory locks on the usage counters of the budgets that apply (governing
 * scope and ceiling), sorted, so decisions on one budget are serialized across processes and
 * hosts while different budgets proceed in parallel; it then reads used + reserved in one
 * statement (one snapshot) after the locks are held, which keeps limits exact.
 */
import { createHash, randomBytes, randomUUID } from "node:crypto";
import postgres from "postgres";
import {
  type Applicable,
  applicable,
  applicableOf,
  type BudgetMaps,
  budgetKey,
  budgetMaps,
  type CheckedSubject,
  type CheckedUsage,
  charge,
  checkBudget,
  checkReplace,
  checkSubject,
  checkUsage,
  crossings,
  cutOffRefusal,
  cutoffFor,
  entries,
  RECLAIM_USAGE,
  reclaimReason,
  remainingReport,
  reserveRefusal,
  type Sum,
} from "./brain.ts";
import { CutoffFeed } from "./cutoff-feed.ts";
import { BudgetStoreError, isBudgetStoreError } from "./errors.ts";
import { isLocalProcessGone, localIdentity } from "./owner.ts";
import { pgUsageSql } from "./pg-rollup.ts";
import { PG_LATEST_VERSION, PG_MIGRATION_LOCK, PG_MIGRATIONS } from "./pg-schema.ts";
import {
  bound,
  burnMinutes,
  burnSeries,
  GROUP_COLUMNS,
  groupColumns,
  MINUTE_MS,
  minuteGrid,
  reportFilter,
  rollupRanges,
  shapeReport,
} from "./reports.ts";
import type {
  ActionsQuery,
  Budget,
  BudgetFilter,
  BudgetInput,
  BudgetSource,
  BudgetStatus,
  BudgetWindow,
  BurnRate,
  BurnRateQuery,
  CreatedGatewayKey,
  Crossing,
  CutoffListener,
  CutoffPolicy,
  CutoffState,
  CutoffSubscription,
  EnforcementAction,
  GatewayKeyIdentity,
  GatewayKeyInfo,
  GatewayKeyInput,
  ManualCutoffInput,
  OwnerInfo,
  ReclaimCause,
  ReclaimedReservation,
  ReclaimInput,
  ReclaimResult,
  RemainingReport,
  ReserveInput,
  ReserveResult,
  ResolvedScope,
  RestoreInput,
  ScopeRef,
  SettleResult,
  SettleUsage,
  Store,
  Subject,
  UsageEvent,
  UsageQuery,
  UsageReport,
} from "./types.ts";
import * as v from "./validate.ts";
import { dayOf, windowStartDay } from "./window.ts";

export interface PgStoreOptions {
  clock: () => number;
  reservationTtlMs: number;
  settleGraceMs: number;
  owner: string;
  leaseMs: number;
  reclaimOnOpen: boolean;
  /** Pool size (default 10). */
  poolSize?: number;
  /** Passed to the client as is: false, a libpq sslmode, or node:tls connect options. */
  ssl?: PgSslOption;
  /** Internal, for tests that count round trips: called with the text of every statement sent. */
  onStatement?: (text: string) => void;
}

export type PgSslOption =
  | boolean
  | "require"
  | "allow"
  | "prefer"
  | "verify-full"
  | Record<string, unknown>;

type Sql = postgres.Sql<Record<string, never>>;
type Tx = postgres.TransactionSql<Record<string, never>>;
type Q = Sql | Tx;

const KEY_PREFIX = "bk_";
const NO_OWNERS: ReadonlySet<string> = new Set();

interface BudgetRow {
  scope: Budget["scope"];
  key: string;
  provider: string;
  source: BudgetSource;
  tokens: number | null;
  usd: number | null;
  win: string;
  policy: CutoffPolicy | null;
  updated_at: number;
}

interface ReservationRow {
  id: string;
  created_at: number;
  expires_at: number;
  request_id: string | null;
  bottle: string;
  parents: string[];
  agent: string;
  provider: string;
  tokens: number;
  usd: number;
  owner: string | null;
}

interface CutoffRow {
  bottle: string;
  policy: CutoffPolicy;
  since: number;
  until: number | null;
  scope: ResolvedScope | null;
  scope_key: string | null;
  scope_provider: string | null;
  by: string;
  reason: string;
}

function rowToBudget(r: BudgetRow): Budget {
  return {
    scope: r.scope,
    key: r.key,
    provider: r.provider,
    tokens: r.tokens ?? undefined,
    usd: r.usd ?? undefined,
    window: r.win as BudgetWindow,
    policy: r.policy ?? undefined,
    source: r.source,
    updatedAt: r.updated_at,
  };
}

function scopeRef(
  scope: ResolvedScope | null,
  key: string | null,
  provider: string | null,
): ScopeRef | undefined {
  return scope === null ? undefined : { scope, key: key ?? "", provider: provider ?? "" };
}

function toState(r: CutoffRow): CutoffState {
  return {
    bottle: r.bottle,
    policy: r.policy,
    since: r.since,
    until: r.until ?? undefined,
    scope: scopeRef(r.scope, r.scope_key, r.scope_provider),
    by: r.by,
    reason: r.reason,
  };
}

type ActionRow = CutoffRow & { id: number; at: number; action: EnforcementAction["action"] };

function toAction(r: ActionRow): EnforcementAction {
  return {
    id: Number(r.id),
    at: Number(r.at),
    bottle: r.bottle,
    action: r.action,
    scope: scopeRef(r.scope, r.scope_key, r.scope_provider),
    by: r.by,
    reason: r.reason,
  };
}

/** The NOTIFY channel of cutoffs and restores (payload: the audit row as JSON). */
const CUTOFF_CHANNEL = "bottlekit_cutoff";

function hashKey(plaintext: string): string {
  return createHash("sha256").update(plaintext, "utf8").digest("hex");
}

/** The advisory lock key of a usage counter (what a budget counts). */
function lockKey(a: Pick<Applicable, "bucketScope" | "bucketKey" | "ref">): string {
  return `${a.bucketScope}\u001f${a.bucketKey}\u001f${a.ref.provider}`;
}

/** The advisory lock keys of the usage counters the applicable budgets count, sorted. */
function lockKeys(apps: readonly Applicable[]): string[] {
  return [...new Set(apps.map(lockKey))].sort();
}

/** The usage counter rows a settle adds to, in one global order (no waits in a cycle). */
function counterRows(s: CheckedSubject): Array<[string, string]> {
  const counters: Array<[string, string]> = [
    ["agent", s.agent],
    ["bottle", s.bottle],
    ...s.parents.map((p): [string, string] => ["bottle", p]),
    ["global", "*"],
  ];
  return counters.sort((a, b) => {
    const x = `${a[0]}\u0000${a[1]}`;
    const y = `${b[0]}\u0000${b[1]}`;
    return x < y ? -1 : x > y ? 1 : 0;
  });
}

/** What bk_sums() needs per applicable budget: counter, window start day, limits. */
function sumParams(apps: readonly Applicable[], now: number) {
  return {
    scopes: apps.map((a) => a.bucketScope),
    keys: apps.map((a) => a.bucketKey),
    days: apps.map((a) => Math.max(windowStartDay(a.budget.window, now), -2_147_483_648)),
    tok: apps.map((a) => a.budget.tokens ?? null),
    usd: apps.map((a) => a.budget.usd ?? null),
  };
}

/** Sums returned as two parallel arrays. */
function sums(t: readonly number[] | undefined, u: readonly number[] | undefined): Sum[] {
  return (t ?? []).map((x, i) => ({ t: x, u: u?.[i] ?? 0 }));
}

/** Calls per bk_meter() statement at most. */
const MAX_BATCH = 64;

/** One reserve ("r") or settle ("s") of a bk_meter() batch, as the functions read it. */
type MeterOp = { k: "r" | "s" } & Record<
  string,
  string | number | boolean | null | string[] | Array<number | null>
>;

/** What bk_meter() returns per call. */
interface MeterResult {
  s: "granted" | "refused" | "lift" | "settled" | "unknown" | "crossing";
  cut?: string[];
  ut?: number[];
  uu?: number[];
  rt?: number[];
  ru?: number[];
  e?: number;
}

interface Queued {
  version: string;
  locks: readonly string[];
  op: MeterOp;
  resolve: (r: MeterResult | undefined) => void;
  reject: (err: unknown) => void;
}

interface CheckedReserve {
  s: CheckedSubject;
  estimate: number;
  estimateUsd: number;
  ttl: number;
  requestId: string | null;
}

/** A reservation this store granted: enough to settle it in one round trip. */
interface MyReservation {
  subject: CheckedSubject;
  tokens: number;
  usd: number;
  requestId: string | null;
  expiresAt: number;
}

interface CachedState {
  version: string;
  maps: BudgetMaps;
  defaultPolicy: CutoffPolicy;
}

export class PgStore implements Store {
  readonly backend = "postgres";
  readonly owner: string;
  readonly #sql: Sql;
  readonly #opts: PgStoreOptions;
  #cache: CachedState | undefined;
  /** Reservations granted here and not yet settled or released (pruned after their grace). */
  readonly #mine = new Map<string, MyReservation>();
  readonly #feed = new CutoffFeed({ start: () => this.#listen(), stop: () => this.#unlisten() });
  #listening: postgres.ListenMeta | undefined;
  #queue: Queued[] = [];
  /** Metering calls made and not yet answered (close() waits for them). */
  #active = 0;
  #closing = false;
  #flushing = false;
  #scheduled = false;
  #closed = false;
  #heartbeat: NodeJS.Timeout | undefined;
  /** Batches commit asynchronously, then flush with a barrier (see #meterThenFlush). */
  #flushBarrier = false;

  constructor(sql: Sql, opts: PgStoreOptions) {
    this.#sql = sql;
    this.#opts = opts;
    this.owner = opts.owner;
  }

  #now(): number {
    return this.#opts.clock();
  }

  #open(closing = false): void {
    if (this.#closed || closing) {
      throw new BudgetStoreError("E_CLOSED", "the budget store is closed", {
        hint: "open a new store with openStore()",
      });
    }
  }

  /** Run `fn` in a transaction; driver errors become E_STORE_BUSY / E_INTERNAL with a hint. */
  async #tx<T>(fn: (tx: Tx) => Promise<T>): Promise<T> {
    this.#open();
    try {
      return (await this.#sql.begin((tx) => fn(tx))) as T;
    } catch (err) {
      throw wrap(err);
    }
  }

  async #q<T>(fn: (sql: Sql) => Promise<T>): Promise<T> {
    this.#open();
    try {
      return await fn(this.#sql);
    } catch (err) {
      throw wrap(err);
    }
  }

  // ---------------------------------------------------------------------------------------------
  // budgets

  async #bump(tx: Q): Promise<void> {
    await tx`INSERT INTO meta (key, value) VALUES ('budgets_version', '1')
      ON CONFLICT (key) DO UPDATE SET value = (meta.value::bigint + 1)::text`;
  }

  async #upsert(tx: Q, b: ReturnType<typeof checkBudget>, now: number): Promise<Budget> {
    await tx`INSERT INTO budgets (scope, key, provider, source, tokens, usd, win, policy, updated_at)
      VALUES (${b.scope}, ${b.key}, ${b.provider}, ${b.source}, ${b.tokens ?? null}, ${b.usd ?? null},
              ${b.window}, ${b.policy ?? null}, ${now})
      ON CONFLICT (scope, key, provider, source) DO UPDATE SET tokens = excluded.tokens,
        usd = excluded.usd, win = excluded.win, policy = excluded.policy, updated_at = excluded.updated_at`;
    return {
      scope: b.scope,
      key: b.key,
      provider: b.provider,
      tokens: b.tokens,
      usd: b.usd,
      window: b.window,
      policy: b.policy,
      source: b.source,
      updatedAt: now,
    };
  }

  async defineBudget(input: BudgetInput): Promise<Budget> {
    const b = checkBudget(input, "budget");
    return this.#tx(async (tx) => {
      const out = await this.#upsert(tx, b, this.#now());
      await this.#bump(tx);
      return out;
    });
  }

  async replaceBudgets(source: BudgetSource, inputs: readonly BudgetInput[]): Promise<Budget[]> {
    const src = v.source(source, "source");
    const checked = checkReplace(src, inputs);
    return this.#tx(async (tx) => {
      const now = this.#now();
      await tx`DELETE FROM budgets WHERE source = ${src}`;
      const out: Budget[] = [];
      for (const b of checked) out.push(await this.#upsert(tx, b, now));
      await this.#bump(tx);
      return out;
    });
  }

  #filter(f: BudgetFilter): {
    scope: string | null;
    key: string | null;
    provider: string | null;
    source: string | null;
  } {
    return {
      scope: f.scope === undefined ? null : v.scope(f.scope, "filter.scope"),
      key: f.key === undefined ? null : v.name(f.key, "filter.key"),
      provider: f.provider === undefined ? null : v.name(f.provider, "filter.provider"),
      source: f.source === undefined ? null : v.source(f.source, "filter.source"),
    };
  }

  async removeBudgets(filter: BudgetFilter): Promise<number> {
    const f = this.#filter(filter);
    return this.#tx(async (tx) => {
      const r = await tx`DELETE FROM budgets WHERE (${f.scope}::text IS NULL OR scope = ${f.scope})
        AND (${f.key}::text IS NULL OR key = ${f.key}) AND (${f.provider}::text IS NULL OR provider = ${f.provider})
        AND (${f.source}::text IS NULL OR source = ${f.source})`;
      if (r.count > 0) await this.#bump(tx);
      return r.count;
    });
  }

  async #listBudgets(q: Q, filter: BudgetFilter): Promise<Budget[]> {
    const f = this.#filter(filter);
    const rows = await q<
      BudgetRow[]
    >`SELECT * FROM budgets WHERE (${f.scope}::text IS NULL OR scope = ${f.scope})
        AND (${f.key}::text IS NULL OR key = ${f.key}) AND (${f.provider}::text IS NULL OR provider = ${f.provider})
        AND (${f.source}::text IS NULL OR source = ${f.source})
      ORDER BY provider COLLATE "C", scope COLLATE "C", key COLLATE "C", source COLLATE "C"`;
    return rows.map(rowToBudget);
  }

  async listBudgets(filter: BudgetFilter = {}): Promise<Budget[]> {
    return this.#q((sql) => this.#listBudgets(sql, filter));
  }

  async setDefaultPolicy(policy: CutoffPolicy): Promise<void> {
    const p = v.policy(policy, "defaultPolicy");
    await this.#tx(async (tx) => {
      await tx`INSERT INTO meta (key, value) VALUES ('default_policy', ${p})
        ON CONFLICT (key) DO UPDATE SET value = excluded.value`;
      await this.#bump(tx);
    });
  }

  async getDefaultPolicy(): Promise<CutoffPolicy> {
    return this.#q(async (sql) => (await this.#state(sql)).defaultPolicy);
  }

  /** Effective budgets and the default policy, cached until the budgets version changes. */
  async #state(q: Q): Promise<CachedState> {
    const [row] = await q<
      Array<{ v: string | null }>
    >`SELECT value AS v FROM meta WHERE key = 'budgets_version'`;
    const version = row?.v ?? "0";
    if (this.#cache?.version === version) return this.#cache;
    const budgets = (await q<BudgetRow[]>`SELECT * FROM budgets`).map(rowToBudget);
    const [p] = await q<
      Array<{ v: string }>
    >`SELECT value AS v FROM meta WHERE key = 'default_policy'`;
    this.#cache = {
      version,
      maps: budgetMaps(budgets),
      defaultPolicy: (p?.v as CutoffPolicy | undefined) ?? "cutoff",
    };
    return this.#cache;
  }

  // ---------------------------------------------------------------------------------------------
  // metering

  /** Serialize on the usage counters the applicable budgets count (sorted: no deadlocks). */
  async #lock(tx: Tx, apps: readonly Applicable[]): Promise<void> {
    const keys = lockKeys(apps);
    if (keys.length === 0) return;
    // unnest yields the (sorted) keys in order: every transaction locks in the same order.
    // execute(): sent now, so a pipelined batch runs in the order its queries were written.
    await tx`SELECT pg_advisory_xact_lock(hashtextextended(k, 0))
      FROM unnest(${keys}::text[]) WITH ORDINALITY AS t(k, o) ORDER BY o`.execute();
  }

  /** Used (and reserved) sums of each applicable budget, read in one statement: one snapshot. */
  async #sums(
    q: Q,
    apps: readonly Applicable[],
    now: number,
  ): Promise<{ used: Sum[]; reserved: Sum[] }> {
    if (apps.length === 0) return { used: [], reserved: [] };
    const provider = apps[0]?.ref.provider as string;
    const scopes = apps.map((a) => a.bucketScope);
    const keys = apps.map((a) => a.bucketKey);
    const days = apps.map((a) => Math.max(windowStartDay(a.budget.window, now), -2_147_483_648));
    const rows = await q<Array<{ i: number; ut: number; uu: number; rt: number; ru: number }>>`
      SELECT a.i::int AS i, u.t AS ut, u.u AS uu, r.t AS rt, r.u AS ru
      FROM unnest(${scopes}::text[], ${keys}::text[], ${days}::int[]) WITH ORDINALITY AS a(bs, bk, d, i)
      CROSS JOIN LATERAL (
        SELECT coalesce(sum(b.tokens), 0)::float8 AS t, coalesce(sum(b.usd), 0)::float8 AS u
        FROM usage_buckets b WHERE b.scope = a.bs AND b.key = a.bk AND b.provider = ${provider} AND b.day >= a.d
      ) u
      CROSS JOIN LATERAL (
        SELECT coalesce(sum(x.tokens), 0)::float8 AS t, coalesce(sum(x.usd), 0)::float8 AS u
        FROM reservations x WHERE x.provider = ${provider} AND x.expires_at > ${now}
          AND (a.bs = 'global' OR (a.bs = 'agent' AND x.agent = a.bk)
               OR (a.bs = 'bottle' AND (x.bottle = a.bk OR x.parents ? a.bk)))
      ) r
      ORDER BY a.i`.execute();
    return {
      used: rows.map((r) => ({ t: r.ut, u: r.uu })),
      reserved: rows.map((r) => ({ t: r.rt, u: r.ru })),
    };
  }

  async #liftExpired(tx: Q, bottle: string, now: number): Promise<void> {
    const rows = await tx<CutoffRow[]>`DELETE FROM cutoffs WHERE bottle = ${bottle}
      AND until IS NOT NULL AND until <= ${now} RETURNING *`;
    const r = rows[0];
    if (r === undefined) return;
    await this.#audit(
      tx,
      bottle,
      "restore",
      now,
      scopeRef(r.scope, r.scope_key, r.scope_provider),
      "window-reset",
      "the budget window reset",
    );
  }

  async #audit(
    tx: Q,
    bottle: string,
    action: EnforcementAction["action"],
    now: number,
    ref: ScopeRef | undefined,
    by: string,
    reason: string,
  ): Promise<void> {
    // Cutoffs and restores are also announced to every listening store (onCutoff), as the
    // audit row itself: NOTIFY is delivered when this transaction commits, in commit order.
    await tx`WITH a AS (
        INSERT INTO enforcement_actions (at, bottle, action, scope, scope_key, scope_provider, by, reason)
        VALUES (${now}, ${bottle}, ${action}, ${ref?.scope ?? null}, ${ref?.key ?? null}, ${ref?.provider ?? null}, ${by}, ${reason})
        RETURNING *)
      SELECT pg_notify(${CUTOFF_CHANNEL}, row_to_json(a)::text) FROM a WHERE a.action <> 'reclaim'`;
  }

  async #recordCutoff(
    tx: Q,
    bottle: string,
    policy: CutoffPolicy,
    now: number,
    until: number | undefined,
    ref: ScopeRef | undefined,
    by: string,
    reason: string,
  ): Promise<void> {
    await tx`INSERT INTO cutoffs (bottle, policy, since, until, scope, scope_key, scope_provider, by, reason)
      VALUES (${bottle}, ${policy}, ${now}, ${until ?? null}, ${ref?.scope ?? null}, ${ref?.key ?? null},
              ${ref?.provider ?? null}, ${by}, ${reason})
      ON CONFLICT (bottle) DO UPDATE SET policy = excluded.policy, since = excluded.since, until = excluded.until,
        scope = excluded.scope, scope_key = excluded.scope_key, scope_provider = excluded.scope_provider,
        by = excluded.by, reason = excluded.reason`;
    // Other gateways read cutoffs in every reserve; listeners hear it at once (see #audit).
    await this.#audit(tx, bottle, policy, now, ref, by, reason);
  }

  /** A settle spent a budget: cut the bottle off unless it already is (in the settle's tx). */
  async #cutForCrossing(tx: Q, bottle: string, crossed: Crossing, now: number): Promise<void> {
    await this.#liftExpired(tx, bottle, now);
    const [cut] =
      await tx`SELECT 1 FROM cutoffs WHERE bottle = ${bottle} AND (until IS NULL OR until > ${now})`;
    if (cut !== undefined) return;
    const { reason, until } = cutoffFor(crossed, now);
    await this.#recordCutoff(tx, bottle, crossed.policy, now, until, crossed, "budget", reason);
  }

  async reserve(input: ReserveInput): Promise<ReserveResult> {
    const s = checkSubject(input, "reserve");
    const estimate = v.count(input.estimateTokens, "reserve.estimateTokens");
    const estimateUsd = v.optionalAmount(input.estimateUsd, "reserve.estimateUsd") ?? 0;
    const ttl =
      input.ttlMs === undefined
        ? this.#opts.reservationTtlMs
        : v.count(input.ttlMs, "reserve.ttlMs");
    const requestId =
      input.requestId === undefined ? null : v.name(input.requestId, "reserve.requestId");
    const r: CheckedReserve = { s, estimate, estimateUsd, ttl, requestId };
    return this.#track(async () => (await this.#reserveFast(r)) ?? this.#reserveFull(r));
  }

  /** A metering call: refused once close() began; close() waits for those already made. */
  async #track<T>(fn: () => Promise<T>): Promise<T> {
    if (this.#closing) this.#open(true);
    this.#active++;
    try {
      return await fn();
    } finally {
      this.#active--;
    }
  }

  /**
   * Group commit: reserves and settles queued while a batch is on its way go to the server
   * together as one statement (bk_meter, one transaction, one round trip), in call order. One
   * batch in flight per store; the next leaves as soon as it returns. Undefined: the budgets
   * changed since `version` was read (nothing was done; reload and send again).
   */
  #meter(version: string, locks: readonly string[], op: MeterOp): Promise<MeterResult | undefined> {
    this.#open();
    return new Promise((resolve, reject) => {
      this.#queue.push({ version, locks, op, resolve, reject });
      this.#schedule();
    });
  }

  #schedule(): void {
    if (this.#flushing || this.#scheduled || this.#queue.length === 0) return;
    this.#scheduled = true;
    // The next turn: calls made in this one (and the continuations of the last batch) join.
    setImmediate(() => {
      this.#scheduled = false;
      void this.#flush();
    });
  }

  async #flush(): Promise<void> {
    this.#flushing = true;
    const first = this.#queue[0];
    const batch: Queued[] = [];
    const rest: Queued[] = [];
    for (const q of this.#queue) {
      if (q.version === first?.version && batch.length < MAX_BATCH) batch.push(q);
      else rest.push(q);
    }
    this.#queue = rest;
    try {
      const locks = [...new Set(batch.flatMap((q) => q.locks))].sort();
      const version = first?.version ?? "";
      const ops = this.#sql.json(batch.map((q) => q.op) as unknown as postgres.JSONValue);
      // With the barrier the batch's locks are released before its disk flush, and the batch
      // is answered after it (see #meterThenFlush); bk_meter alone, committed synchronously,
      // where the barrier's pg_logical_emit_message is not allowed.
      const [row] = this.#flushBarrier
        ? await this.#meterThenFlush(version, locks, ops)
        : await this.#sql<Array<{ r: MeterResult[] | null }>>`
          SELECT bk_meter(${version}::text, ${this.owner}::text, ${locks}::text[], ${ops}) AS r`;
      const results = row?.r;
      for (const [i, q] of batch.entries()) q.resolve(results?.[i]);
    } catch (err) {
      const e = wrap(err);
      for (const q of batch) q.reject(e);
    } finally {
      this.#flushing = false;
      this.#schedule();
    }
  }

  /**
   * One batch, answered only once the disk holds it, without holding its locks through the
   * flush. Two statements pipelined on one connection, one round trip, each its own transaction:
   * bk_meter() committed asynchronously (set_config(..., true) applies to this transaction's
   * commit only), so its locks go as soon as its commit record is written; then a transaction
   * whose only WAL record is a logical message, committed synchronously, which flushes the WAL up
   * to that record, the batch's commit included. The batch is answered after both, so what a
   * caller is told is as durable as a synchronous commit. This is schema version 3's
   * bk_meter_call() without the procedure: a CALL that commits inside plpgsql cost the server
   * about 8% more CPU per pair than these two plain statements (bench/pg-functions.ts).
   */
  async #meterThenFlush(
    version: string,
    locks: readonly string[],
    ops: postgres.Parameter,
  ): Promise<Array<{ r: MeterResult[] | null }>> {
    const conn = await this.#sql.reserve();
    try {
      const [meter, barrier] = await Promise.allSettled([
        conn<Array<{ r: MeterResult[] | null }>>`
          SELECT set_config('synchronous_commit', 'off', true) AS c,
            bk_meter(${version}::text, ${this.owner}::text, ${locks}::text[], ${ops}) AS r`,
        conn`SELECT pg_logical_emit_message(true, 'bottlekit', 'meter')`,
      ]);
      if (meter.status === "rejected") throw meter.reason;
      if (barrier.status === "rejected") throw barrier.reason;
      return meter.value;
    } finally {
      conn.release();
    }
  }

  /**
   * The reserve of the batch: bk_reserve_op() reads cutoffs and sums under the batch's locks and
   * holds the estimate when the brain's grant rule allows it. Every result is checked with the
   * brain; undefined hands the call to the full transaction (a cutoff to lift, a disagreement,
   * or budgets that keep changing).
   */
  async #reserveFast(r: CheckedReserve): Promise<ReserveResult | undefined> {
    const { s, estimate, estimateUsd, ttl, requestId } = r;
    let state = this.#cache ?? (await this.#q((sql) => this.#state(sql)));
    for (let attempt = 0; attempt < 3; attempt++) {
      const apps = applicable(state.maps, s);
      const now = this.#now();
      const id = `r_${randomUUID()}`;
      const expiresAt = now + ttl;
      const res = await this.#meter(state.version, lockKeys(apps), {
        k: "r",
        chain: [s.bottle, ...s.parents],
        ...sumParams(apps, now),
        now,
        est: estimate,
        est_usd: estimateUsd,
        id,
        expires: expiresAt,
        req: requestId,
        bottle: s.bottle,
        parents: s.parents,
        agent: s.agent,
        provider: s.provider,
      });
      if (res === undefined) {
        this.#cache = undefined;
        state = await this.#q((sql) => this.#state(sql));
        continue;
      }
      if (res.s === "lift") return undefined;
      const cut = cutOffRefusal(s, new Set(res.cut ?? []));
      if (cut !== undefined) return cut;
      if (res.ut === undefined) return undefined;
      const refused = reserveRefusal(
        entries(apps, sums(res.ut, res.uu), sums(res.rt, res.ru), state.defaultPolicy),
        estimate,
        estimateUsd,
      );
      if (res.s === "granted") {
        if (refused !== undefined) {
          // The brain refuses what the server held: fail closed, drop the hold.
          await this.#q((sql) => sql`DELETE FROM reservations WHERE id = ${id}`);
          return refused;
        }
        this.#mine.set(id, {
          subject: s,
          tokens: estimate,
          usd: estimateUsd,
          requestId,
          expiresAt,
        });
        return { ok: true, id, expiresAt };
      }
      return refused; // undefined (the brain would grant): the full transaction decides
    }
    return undefined;
  }

  /** The full reserve: a transaction of several pipelined round trips (lifts expired cutoffs). */
  async #reserveFull(r: CheckedReserve): Promise<ReserveResult> {
    const { s, estimate, estimateUsd, ttl, requestId } = r;
    return this.#tx(async (tx) => {
      // Optimistic: decide with the cached budgets and send the version check, the locks, the
      // cutoffs and the sums in one pipelined batch (they run in that order on the server, the
      // sums after the locks are held). If the budgets changed meanwhile, reload and redo.
      let state = this.#cache ?? (await this.#state(tx));
      let apps: Applicable[];
      let now: number;
      let cutRows: Array<{ bottle: string; until: number | null }>;
      let sums: { used: Sum[]; reserved: Sum[] };
      for (;;) {
        apps = applicable(state.maps, s);
        now = this.#now();
        const [ver, , cuts, got] = await Promise.all([
          tx<
            Array<{ v: string }>
          >`SELECT value AS v FROM meta WHERE key = 'budgets_version'`.execute(),
          this.#lock(tx, apps),
          tx<Array<{ bottle: string; until: number | null }>>`
            SELECT bottle, until FROM cutoffs WHERE bottle = ANY(${[s.bottle, ...s.parents]}::text[])`.execute(),
          this.#sums(tx, apps, now),
        ]);
        cutRows = cuts;
        sums = got;
        if ((ver[0]?.v ?? "0") === (this.#cache?.version ?? "")) break;
        this.#cache = undefined;
        state = await this.#state(tx);
      }
      const active = new Set<string>();
      for (const r of cutRows) {
        if (r.until !== null && now >= r.until) await this.#liftExpired(tx, r.bottle, now);
        else active.add(r.bottle);
      }
      const cut = cutOffRefusal(s, active);
      if (cut !== undefined) return cut;
      const refused = reserveRefusal(
        entries(apps, sums.used, sums.reserved, state.defaultPolicy),
        estimate,
        estimateUsd,
      );
      if (refused !== undefined) return refused;
      const id = `r_${randomUUID()}`;
      const expiresAt = now + ttl;
      await tx`INSERT INTO reservations (id, created_at, expires_at, request_id, bottle, parents, agent, provider, tokens, usd, owner)
        VALUES (${id}, ${now}, ${expiresAt}, ${requestId}, ${s.bottle}, ${tx.json(s.parents)}, ${s.agent}, ${s.provider},
                ${estimate}, ${estimateUsd}, ${this.owner})`;
      this.#mine.set(id, { subject: s, tokens: estimate, usd: estimateUsd, requestId, expiresAt });
      return { ok: true as const, id, expiresAt };
    });
  }

  /** Inside a transaction: settle one reservation row (already locked by its scope locks). */
  async #settleIn(
    tx: Tx,
    id: string,
    u: CheckedUsage,
    audit?: (r: ReservationRow) => Promise<void>,
  ): Promise<{ r: ReservationRow; result: SettleResult }> {
    const [peek] = await tx<ReservationRow[]>`SELECT * FROM reservations WHERE id = ${id}`;
    if (peek === undefined) throw unknownReservation(id);
    let state = this.#cache ?? (await this.#state(tx));
    const subject = {
      bottle: peek.bottle,
      parents: peek.parents,
      agent: peek.agent,
      provider: peek.provider,
    };
    if (audit !== undefined) await audit(peek);
    const { tokens: charged, usd: chargedUsd } = charge(u, peek);
    const counters = counterRows(subject);
    const now = this.#now();
    const day = dayOf(now);
    let apps = applicable(state.maps, subject);
    // One pipelined batch, run in order on the server: version check, locks, claim the row
    // (a concurrent settle or reclaim that took it first leaves none: we roll back), the event,
    // the counters, and the sums for the crossing check.
    const [ver, , deleted, evRows, , got] = await Promise.all([
      tx<Array<{ v: string }>>`SELECT value AS v FROM meta WHERE key = 'budgets_version'`.execute(),
      this.#lock(tx, apps),
      tx<ReservationRow[]>`DELETE FROM reservations WHERE id = ${id} RETURNING id`.execute(),
      tx<
        Array<{ id: number }>
      >`INSERT INTO usage_events (at, request_id, reservation_id, bottle, parents, agent, provider, model,
          input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, reasoning_tokens, tokens, cost_usd, usage_missing)
        VALUES (${now}, ${u.requestId ?? peek.request_id}, ${peek.id}, ${peek.bottle}, ${tx.json(peek.parents)}, ${peek.agent},
          ${peek.provider}, ${u.model}, ${u.input}, ${u.output}, ${u.cacheRead}, ${u.cacheWrite}, ${u.reasoning}, ${charged},
          ${u.cost ?? null}, ${u.missing})
        RETURNING id`.execute(),
      tx`INSERT INTO usage_buckets (scope, key, provider, day, tokens, usd)
        SELECT s, k, ${peek.provider}, ${day}, ${charged}, ${chargedUsd}
        FROM unnest(${counters.map((c) => c[0])}::text[], ${counters.map((c) => c[1])}::text[]) WITH ORDINALITY AS c(s, k, o)
        ORDER BY o
        ON CONFLICT (scope, key, provider, day) DO UPDATE SET tokens = usage_buckets.tokens + excluded.tokens,
          usd = usage_buckets.usd + excluded.usd`.execute(),
      this.#sums(tx, apps, now),
    ]);
    if (deleted.length === 0) throw unknownReservation(id); // rolled back with the whole batch
    let sums = got;
    if ((ver[0]?.v ?? "0") !== (this.#cache?.version ?? "")) {
      // Budgets changed since they were cached: decide the crossing with the current ones.
      this.#cache = undefined;
      state = await this.#state(tx);
      apps = applicable(state.maps, subject);
      await this.#lock(tx, apps);
      sums = await this.#sums(tx, apps, now);
    }
    const r = peek;
    const ev = evRows[0];
    const spent = crossings(entries(apps, sums.used, undefined, state.defaultPolicy));
    const crossed = spent[0];
    if (crossed !== undefined) await this.#cutForCrossing(tx, r.bottle, crossed, now);
    return {
      r,
      result: { eventId: Number(ev?.id), chargedTokens: charged, crossed, crossings: spent },
    };
  }

  async settle(id: string, usage: SettleUsage): Promise<SettleResult> {
    v.name(id, "settle.id");
    const u = checkUsage(usage);
    return this.#track(async () => {
      const mine = this.#mine.get(id);
      if (mine !== undefined) {
        const fast = await this.#settleFast(id, mine, u);
        if (fast !== undefined) return fast;
      }
      try {
        return await this.#tx(async (tx) => (await this.#settleIn(tx, id, u)).result);
      } finally {
        this.#mine.delete(id);
      }
    });
  }

  /**
   * The settle of the batch, for a reservation this store granted (its subject is known here):
   * bk_settle_op() reads the used sums under the batch's locks, claims the row, and writes the
   * event and the counters. A charge that spends a budget is not written there: the full
   * transaction records it together with the cutoff. Undefined hands the call to it.
   */
  async #settleFast(
    id: string,
    mine: MyReservation,
    u: CheckedUsage,
  ): Promise<SettleResult | undefined> {
    let state = this.#cache ?? (await this.#q((sql) => this.#state(sql)));
    const { tokens: charged, usd: chargedUsd } = charge(u, mine);
    const counters = counterRows(mine.subject);
    const s = mine.subject;
    for (let attempt = 0; attempt < 3; attempt++) {
      const apps = applicable(state.maps, s);
      const now = this.#now();
      const res = await this.#meter(state.version, lockKeys(apps), {
        k: "s",
        id,
        now,
        req: u.requestId ?? mine.requestId,
        bottle: s.bottle,
        parents: s.parents,
        agent: s.agent,
        provider: s.provider,
        model: u.model,
        input: u.input,
        output: u.output,
        cache_read: u.cacheRead,
        cache_write: u.cacheWrite,
        reasoning: u.reasoning,
        tokens: charged,
        cost: u.cost ?? null,
        missing: u.missing,
        charged_usd: chargedUsd,
        counter_scopes: counters.map((c) => c[0]),
        counter_keys: counters.map((c) => c[1]),
        day: dayOf(now),
        ...sumParams(apps, now),
      });
      if (res === undefined) {
        this.#cache = undefined;
        state = await this.#q((sql) => this.#state(sql));
        continue;
      }
      if (res.s === "crossing") return undefined;
      this.#mine.delete(id);
      if (res.s === "unknown") throw unknownReservation(id);
      // Used after the charge: every applicable counter received all of it.
      const after = sums(res.ut, res.uu).map((x) => ({ t: x.t + charged, u: x.u + chargedUsd }));
      const spent = crossings(entries(apps, after, undefined, state.defaultPolicy));
      const crossed = spent[0];
      if (crossed !== undefined) {
        // The server's rule saw no spent budget but the brain does: record the cutoff now.
        await this.#tx((tx) => this.#cutForCrossing(tx, s.bottle, crossed, now));
      }
      return { eventId: Number(res.e), chargedTokens: charged, crossed, crossings: spent };
    }
    return undefined;
  }

  async release(id: string): Promise<boolean> {
    v.name(id, "release.id");
    return this.#track(async () => {
      this.#mine.delete(id);
      return this.#q(
        async (sql) => (await sql`DELETE FROM reservations WHERE id = ${id}`).count > 0,
      );
    });
  }

  async sweepExpired(): Promise<number> {
    return this.#q(async (sql) => {
      const cutoff = this.#now() - this.#opts.settleGraceMs;
      return (await sql`DELETE FROM reservations WHERE expires_at <= ${cutoff}`).count;
    });
  }

  // ---------------------------------------------------------------------------------------------
  // owners and leases

  async #register(q: Q, now: number): Promise<number> {
    const me = localIdentity();
    const until = now + this.#opts.leaseMs;
    await q`INSERT INTO owners (id, host, pidns, pid, started_at, lease_until)
      VALUES (${this.owner}, ${me.host}, ${me.pidns}, ${me.pid}, ${now}, ${until})
      ON CONFLICT (id) DO UPDATE SET lease_until = excluded.lease_until`;
    return until;
  }

  async renewLease(): Promise<number> {
    return this.#q((sql) => this.#register(sql, this.#now()));
  }

  async listOwners(): Promise<OwnerInfo[]> {
    return this.#q(async (sql) =>
      (
        await sql<
          Array<{
            id: string;
            host: string;
            pid: number;
            started_at: number;
            lease_until: number;
            n: number;
          }>
        >`
          SELECT o.id, o.host, o.pid, o.started_at, o.lease_until,
            (SELECT count(*) FROM reservations r WHERE r.owner = o.id) AS n
          FROM owners o ORDER BY o.started_at, o.id COLLATE "C"`
      ).map((r) => ({
        id: r.id,
        host: r.host,
        pid: r.pid,
        startedAt: r.started_at,
        leaseUntil: r.lease_until,
        reservations: Number(r.n),
      })),
    );
  }

  async reclaim(input: ReclaimInput = {}): Promise<ReclaimResult> {
    const declared = new Set((input.owners ?? []).map((o, i) => v.name(o, `reclaim.owners[${i}]`)));
    declared.delete(this.owner);
    return this.#reclaim(declared, input.deadLocalProcesses !== false);
  }

  /**
   * Gone owners' reservations, each settled as usage-missing in its own transaction under its
   * scope locks. Two stores reclaiming at once cannot both charge one reservation: the settle
   * deletes the row first and only the one that deleted it writes the event.
   */
  async #reclaim(declared: ReadonlySet<string>, local: boolean): Promise<ReclaimResult> {
    this.#open();
    const now = this.#now();
    const gone = new Map<string, ReclaimCause>();
    const owners = await this.#q(
      (sql) => sql<
        Array<{ id: string; host: string; pidns: string; pid: number; lease_until: number }>
      >`
      SELECT id, host, pidns, pid, lease_until FROM owners`,
    );
    const registered = new Set<string>();
    for (const o of owners) {
      registered.add(o.id);
      if (o.id === this.owner) continue;
      if (declared.has(o.id)) gone.set(o.id, "declared-dead");
      else if (o.lease_until <= now) gone.set(o.id, "lease-expired");
      else if (local && isLocalProcessGone(o)) gone.set(o.id, "process-gone");
    }
    for (const id of declared) if (!registered.has(id)) gone.set(id, "declared-dead");
    const rows = await this.#q(
      (sql) => sql<Array<{ id: string; owner: string; known: boolean }>>`
      SELECT id, owner, owner IN (SELECT id FROM owners) AS known FROM reservations
      WHERE owner IS NOT NULL AND (owner = ANY(${[...gone.keys()]}::text[]) OR owner NOT IN (SELECT id FROM owners))
        AND owner <> ${this.owner}
      ORDER BY created_at, id COLLATE "C"`,
    );
    for (const r of rows) if (!gone.has(r.owner)) gone.set(r.owner, "unknown-owner");
    const reservations: ReclaimedReservation[] = [];
    for (const row of rows) {
      const cause = gone.get(row.owner) as ReclaimCause;
      try {
        const { r, result } = await this.#tx((tx) =>
          this.#settleIn(tx, row.id, RECLAIM_USAGE, (res) =>
            this.#audit(
              tx,
              res.bottle,
              "reclaim",
              this.#now(),
              undefined,
              "reclaim",
              reclaimReason(res.id, row.owner, cause, res.tokens),
            ),
          ),
        );
        reservations.push({
          id: r.id,
          owner: row.owner,
          cause,
          bottle: r.bottle,
          agent: r.agent,
          provider: r.provider,
          requestId: r.request_id ?? undefined,
          eventId: result.eventId,
          chargedTokens: result.chargedTokens,
          crossed: result.crossed,
        });
      } catch (err) {
        if (!(isBudgetStoreError(err) && err.code === "E_UNKNOWN_RESERVATION")) throw err;
        // another store reclaimed (or the owner settled) it first
      }
    }
    if (gone.size > 0) {
      await this.#q((sql) => sql`DELETE FROM owners WHERE id = ANY(${[...gone.keys()]}::text[])`);
    }
    return { owners: [...gone.keys()], reservations };
  }

  startHeartbeat(): void {
    const every = Math.max(50, Math.floor(this.#opts.leaseMs / 3));
    this.#heartbeat = setInterval(() => {
      if (this.#closed) return;
      // Forget holds past their settle grace (swept by now): bounded by the calls in flight.
      const stale = this.#now() - this.#opts.settleGraceMs;
      for (const [id, m] of this.#mine) if (m.expiresAt <= stale) this.#mine.delete(id);
      this.renewLease()
        .then(() => this.#reclaim(NO_OWNERS, true))
        .catch(() => {
          // the next beat tries again; an expired lease lets others reclaim (the safe side)
        });
    }, every);
    this.#heartbeat.unref();
  }

  async openOwner(): Promise<void> {
    // (its signature differs between server versions: ask for any that this user may run)
    const [priv] = await this.#sql<Array<{ ok: boolean | null }>>`
      SELECT bool_or(has_function_privilege(p.oid, 'EXECUTE')) AS ok FROM pg_proc p
      WHERE p.proname = 'pg_logical_emit_message' AND p.pronamespace = 'pg_catalog'::regnamespace`;
    this.#flushBarrier = priv?.ok === true;
    await this.renewLease();
    if (this.#opts.reclaimOnOpen) await this.#reclaim(NO_OWNERS, true);
  }

  // ---------------------------------------------------------------------------------------------
  // cutoff state

  async #cutoffRow(q: Q, bottle: string, now: number): Promise<CutoffRow | undefined> {
    const [r] = await q<CutoffRow[]>`SELECT * FROM cutoffs WHERE bottle = ${bottle}`;
    return r !== undefined && r.until !== null && now >= r.until ? undefined : r;
  }

  async isCutOff(bottle: string): Promise<boolean> {
    const b = v.name(bottle, "bottle");
    return this.#q(async (sql) => (await this.#cutoffRow(sql, b, this.#now())) !== undefined);
  }

  async cutoffState(bottle: string): Promise<CutoffState | undefined> {
    const b = v.name(bottle, "bottle");
    return this.#q(async (sql) => {
      const r = await this.#cutoffRow(sql, b, this.#now());
      return r === undefined ? undefined : toState(r);
    });
  }

  async cutOff(bottle: string, input: ManualCutoffInput): Promise<CutoffState> {
    const b = v.name(bottle, "bottle");
    const by = v.name(input?.by, "cutOff.by");
    const reason = v.name(input?.reason, "cutOff.reason");
    const p = input.policy === undefined ? undefined : v.policy(input.policy, "cutOff.policy");
    return this.#tx(async (tx) => {
      const now = this.#now();
      const policy = p ?? (await this.#state(tx)).defaultPolicy;
      await this.#recordCutoff(tx, b, policy, now, undefined, undefined, by, reason);
      return toState((await this.#cutoffRow(tx, b, now)) as CutoffRow);
    });
  }

  async restore(bottle: string, input: RestoreInput): Promise<boolean> {
    const b = v.name(bottle, "bottle");
    const by = v.name(input?.by, "restore.by");
    const reason = v.name(input?.reason, "restore.reason");
    return this.#tx(async (tx) => {
      const now = this.#now();
      await this.#liftExpired(tx, b, now);
      const [row] = await tx<CutoffRow[]>`DELETE FROM cutoffs WHERE bottle = ${b} RETURNING *`;
      if (row === undefined) return false;
      await this.#audit(
        tx,
        b,
        "restore",
        now,
        scopeRef(row.scope, row.scope_key, row.scope_provider),
        by,
        reason,
      );
      return true;
    });
  }

  async actions(filter: ActionsQuery = {}): Promise<EnforcementAction[]> {
    const bottle = filter.bottle === undefined ? null : v.name(filter.bottle, "actions.bottle");
    const since = filter.since === undefined ? null : v.count(filter.since, "actions.since");
    const limit = filter.limit === undefined ? null : v.count(filter.limit, "actions.limit");
    return this.#q(async (sql) =>
      (
        await sql<ActionRow[]>`
          SELECT * FROM (SELECT * FROM enforcement_actions WHERE (${bottle}::text IS NULL OR bottle = ${bottle})
            AND (${since}::bigint IS NULL OR at >= ${since}) ORDER BY id DESC LIMIT ${limit}::bigint) x ORDER BY id`
      ).map(toAction),
    );
  }

  onCutoff(listener: CutoffListener): CutoffSubscription {
    this.#open();
    return this.#feed.subscribe(listener);
  }

  /** LISTEN on the cutoff channel; on every (re)connect, read back what was missed. */
  async #listen(): Promise<void> {
    this.#open();
    const [row] = await this.#q(
      (sql) =>
        sql<
          Array<{ m: number }>
        >`SELECT coalesce(max(id), 0)::float8 AS m FROM enforcement_actions`,
    );
    let since = row?.m ?? 0;
    const catchUp = async () => {
      const from = Math.max(since, this.#feed.maxId);
      const rows = await this.#sql<ActionRow[]>`SELECT * FROM enforcement_actions
        WHERE id > ${from} AND action <> 'reclaim' ORDER BY id`;
      since = Math.max(since, ...rows.map((r) => Number(r.id)));
      this.#feed.deliver(rows.map(toAction));
    };
    this.#listening = await this.#sql.listen(
      CUTOFF_CHANNEL,
      (payload) => {
        try {
          this.#feed.deliver([toAction(JSON.parse(payload) as ActionRow)]);
        } catch {
          // not one of ours: ignore
        }
      },
      () => {
        void catchUp().catch(() => {
          // the connection dropped again: the next onlisten catches up
        });
      },
    );
  }

  async #unlisten(): Promise<void> {
    const l = this.#listening;
    this.#listening = undefined;
    if (l !== undefined && !this.#closed) await l.unlisten();
  }

  // ---------------------------------------------------------------------------------------------
  // reports

  /** The WHERE of a report over usage_events, all filters as bound values. */
  #where(sql: Sql, q: Omit<UsageQuery, "groupBy">, where: string) {
    const f = reportFilter(q, where);
    return sql`(${f.bottle}::text IS NULL OR bottle = ${f.bottle} OR (${f.children} AND parents ? ${f.bottle ?? ""}))
      AND (${f.agent}::text IS NULL OR agent = ${f.agent}) AND (${f.provider}::text IS NULL OR provider = ${f.provider})
      AND (${f.model}::text IS NULL OR model = ${f.model})
      AND at >= ${bound(f.since ?? Number.NEGATIVE_INFINITY)} AND at < ${bound(f.until ?? Number.POSITIVE_INFINITY)}`;
  }

  /** When this store last folded the report tail (performance.now(); see foldReports). */
  #foldedAt = Number.NEGATIVE_INFINITY;

  /**
   * Fold the events written since the last fold into the report rollups (pg-rollup.ts): the
   * number of events folded, or -1 when another fold was running. usage() calls it at most once a
   * second per store; reports are exact whether or not it ran.
   */
  async foldReports(): Promise<number> {
    this.#foldedAt = performance.now();
    return this.#q(async (sql) => {
      const [row] = await sql<Array<{ n: number }>>`SELECT bk_rollup_fold()::float8 AS n`;
      return row?.n ?? 0;
    });
  }

  async usage(query: UsageQuery = {}): Promise<UsageReport> {
    const groupBy = groupColumns(query.groupBy);
    const canonical = GROUP_COLUMNS.filter((c) => groupBy.includes(c));
    const f = reportFilter(query, "usage");
    if (performance.now() - this.#foldedAt >= FOLD_EVERY_MS) {
      // A read-only server (a hot standby) cannot fold: the report is exact without it.
      await this.foldReports().catch((err: unknown) => {
        if ((err as { cause?: { code?: string } }).cause?.code !== "25006") throw err;
      });
    }
    const params: Array<string | number | boolean | null> = [
      f.bottle,
      f.children,
      f.agent,
      f.provider,
      f.model,
    ];
    const ranged = f.since !== undefined || f.until !== undefined;
    if (ranged) {
      const r = rollupRanges(f.since, f.until);
      // the whole hours the rollups cover: between the two partial-hour edges
      const whole = r.events[0].hi < r.events[1].lo;
      params.push(
        ...[r.days.lo, r.days.hi, r.hours[0].lo, r.hours[0].hi, r.hours[1].lo, r.hours[1].hi].map(
          bound,
        ),
        ...(whole ? [bound(r.events[0].hi), bound(r.events[1].lo)] : [0, 0]),
        ...[r.events[0].lo, r.events[0].hi, r.events[1].lo, r.events[1].hi].map(bound),
      );
    }
    return this.#q(async (sql) => {
      const rows = await sql.unsafe(pgUsageSql(canonical, ranged), params as never[], {
        prepare: true,
      });
      return shapeReport(
        (rows as unknown as Array<Record<string, unknown>>).filter((r) => Number(r["events"]) > 0),
        groupBy,
      );
    });
  }

  async events(
    query: Omit<UsageQuery, "groupBy"> & { limit?: number } = {},
  ): Promise<UsageEvent[]> {
    const limit = query.limit === undefined ? null : v.count(query.limit, "events.limit");
    return this.#q(async (sql) => {
      const rows = await sql<
        Array<Record<string, unknown>>
      >`SELECT * FROM usage_events WHERE ${this.#where(sql, query, "events")}
        ORDER BY id LIMIT ${limit}::bigint`;
      return rows.map((r) => ({
        id: Number(r["id"]),
        at: r["at"] as number,
        requestId: (r["request_id"] as string | null) ?? undefined,
        bottle: r["bottle"] as string,
        parents: r["parents"] as string[],
        agent: r["agent"] as string,
        provider: r["provider"] as string,
        model: (r["model"] as string | null) ?? undefined,
        inputTokens: r["input_tokens"] as number,
        outputTokens: r["output_tokens"] as number,
        cacheReadTokens: r["cache_read_tokens"] as number,
        cacheWriteTokens: r["cache_write_tokens"] as number,
        reasoningTokens: r["reasoning_tokens"] as number,
        tokens: r["tokens"] as number,
        costUsd: (r["cost_usd"] as number | null) ?? undefined,
        usageMissing: r["usage_missing"] === true,
      }));
    });
  }

  async remaining(subject: Subject): Promise<RemainingReport | undefined> {
    const s = checkSubject(subject, "remaining");
    return this.#q(async (sql) => {
      const state = await this.#state(sql);
      const apps = applicable(state.maps, s);
      const now = this.#now();
      const sums = await this.#sums(sql, apps, now);
      return remainingReport(entries(apps, sums.used, sums.reserved, state.defaultPolicy));
    });
  }

  async budgetStatus(filter: BudgetFilter = {}): Promise<BudgetStatus[]> {
    return this.#q(async (sql) => {
      const now = this.#now();
      // independent reads in parallel on the pool: two round trips' wait, not four
      const [state, budgets] = await Promise.all([
        this.#state(sql),
        this.#listBudgets(sql, filter),
      ]);
      const out: BudgetStatus[] = [];
      // one statement per provider (#sums reads one provider's counters), not one per budget
      const sums = new Map<Budget, { u: Sum; r: Sum }>();
      await Promise.all(
        [...new Set(budgets.map((b) => b.provider))].map(async (provider) => {
          const mine = budgets.filter((b) => b.provider === provider);
          const { used, reserved } = await this.#sums(sql, mine.map(applicableOf), now);
          for (const [i, b] of mine.entries()) {
            sums.set(b, { u: used[i] as Sum, r: reserved[i] as Sum });
          }
        }),
      );
      for (const budget of budgets) {
        const { u, r } = sums.get(budget) as { u: Sum; r: Sum };
        const use = (limit: number | undefined, x: number, y: number) =>
          limit === undefined
            ? undefined
            : { limit, used: x, reserved: y, remaining: Math.max(0, limit - x - y) };
        out.push({
          budget,
          effective: state.maps.map.get(budgetKey(budget))?.source === budget.source,
          windowStart:
            budget.window === "none" ? undefined : windowStartDay(budget.window, now) * 86_400_000,
          policy: budget.policy ?? state.defaultPolicy,
          tokens: use(budget.tokens, u.t, r.t),
          usd: use(budget.usd, u.u, r.u),
        });
      }
      return out;
    });
  }

  async burnRate(query: BurnRateQuery = {}): Promise<BurnRate> {
    const minutes = burnMinutes(query.minutes, "burnRate.minutes");
    const byBottle = query.byBottle === true;
    return this.#q(async (sql) => {
      const { since, until } = minuteGrid(this.#now(), minutes);
      const where = this.#where(sql, { ...query, since, until }, "burnRate");
      const rows = await sql<
        Array<{ bottle: string | null; m: number; events: number; tokens: number; cost: number }>
      >`
        SELECT ${byBottle ? sql`bottle` : sql`NULL::text`} AS bottle, ((at - ${since}) / ${MINUTE_MS})::int AS m,
          count(*)::float8 AS events, sum(tokens)::float8 AS tokens, coalesce(sum(cost_usd), 0)::float8 AS cost
        FROM usage_events WHERE ${where} GROUP BY 1, 2`;
      return burnSeries(rows, since, until, minutes, byBottle);
    });
  }

  // ---------------------------------------------------------------------------------------------
  // gateway keys

  async createGatewayKey(input: GatewayKeyInput): Promise<CreatedGatewayKey> {
    const bottle = v.name(input?.bottle, "gatewayKey.bottle");
    const agent = v.name(input?.agent, "gatewayKey.agent");
    const label = input.label === undefined ? undefined : v.name(input.label, "gatewayKey.label");
    const id = `gk_${randomBytes(8).toString("hex")}`;
    const key = `${KEY_PREFIX}${randomBytes(32).toString("base64url")}`;
    return this.#q(async (sql) => {
      const now = this.#now();
      await sql`INSERT INTO gateway_keys (id, hash, bottle, agent, label, created_at, revoked_at)
        VALUES (${id}, ${hashKey(key)}, ${bottle}, ${agent}, ${label ?? null}, ${now}, NULL)`;
      return { id, key, bottle, agent, label, createdAt: now, revokedAt: undefined };
    });
  }

  async verifyGatewayKey(plaintext: string): Promise<GatewayKeyIdentity | undefined> {
    if (
      typeof plaintext !== "string" ||
      !plaintext.startsWith(KEY_PREFIX) ||
      plaintext.length > 200
    )
      return undefined;
    const hash = hashKey(plaintext);
    return this.#q(async (sql) => {
      const [r] = await sql<
        GatewayKeyIdentity[]
      >`SELECT id, bottle, agent FROM gateway_keys WHERE hash = ${hash} AND revoked_at IS NULL`;
      return r === undefined ? undefined : { id: r.id, bottle: r.bottle, agent: r.agent };
    });
  }

  async listGatewayKeys(): Promise<GatewayKeyInfo[]> {
    return this.#q(async (sql) =>
      (
        await sql<
          Array<{
            id: string;
            bottle: string;
            agent: string;
            label: string | null;
            created_at: number;
            revoked_at: number | null;
          }>
        >`
          SELECT id, bottle, agent, label, created_at, revoked_at FROM gateway_keys ORDER BY created_at, id COLLATE "C"`
      ).map((r) => ({
        id: r.id,
        bottle: r.bottle,
        agent: r.agent,
        label: r.label ?? undefined,
        createdAt: r.created_at,
        revokedAt: r.revoked_at ?? undefined,
      })),
    );
  }

  async revokeGatewayKey(id: string): Promise<boolean> {
    const k = v.name(id, "gatewayKey.id");
    return this.#q(
      async (sql) =>
        (
          await sql`UPDATE gateway_keys SET revoked_at = ${this.#now()} WHERE id = ${k} AND revoked_at IS NULL`
        ).count > 0,
    );
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    if (this.#heartbeat !== undefined) clearInterval(this.#heartbeat);
    // Metering calls already made are answered first; new ones are refused (E_CLOSED).
    this.#closing = true;
    while (this.#active > 0 || this.#queue.length > 0 || this.#flushing || this.#scheduled) {
      await new Promise((resolve) => setImmediate(resolve));
    }
    try {
      await this
        .#sql`UPDATE owners SET lease_until = ${Number.MIN_SAFE_INTEGER} WHERE id = ${this.owner}`;
    } catch {
      // closing anyway; the lease runs out by itself
    }
    await this.#feed.close();
    this.#closed = true;
    await this.#sql.end({ timeout: 5 });
  }
}

/** How often usage() folds the report tail (per store): a second's events are a short tail. */
const FOLD_EVERY_MS = 1_000;

function unknownReservation(id: string): BudgetStoreError {
  return new BudgetStoreError("E_UNKNOWN_RESERVATION", `reservation ${id} does not exist`, {
    hint: "it was already settled or released, or it expired and was swept (or its owner was declared gone and it was reclaimed); record usage with a new reservation",
  });
}

/** Driver errors as BudgetStoreError (messages never carry the connection URL). */
function wrap(err: unknown): unknown {
  if (isBudgetStoreError(err)) return err;
  const e = err as { code?: string; message?: string };
  if (e.code === "40P01" || e.code === "40001" || e.code === "55P03") {
    return new BudgetStoreError(
      "E_STORE_BUSY",
      `the budget database refused the transaction (${e.code})`,
      {
        cause: err,
        hint: "retry the call",
      },
    );
  }
  return new BudgetStoreError(
    "E_INTERNAL",
    `the budget database failed: ${e.message ?? String(err)}`,
    {
      cause: err,
      hint: "check that the Postgres server is reachable and healthy",
    },
  );
}

/** int8 and bigserial as JS numbers (every stored count is a safe integer). */
const BIGINT_AS_NUMBER = {
  to: 20,
  from: [20],
  serialize: (x: number) => String(x),
  parse: (x: string) => Number(x),
};

/** Open a Postgres store: connect a pool, migrate under an advisory lock, register the owner. */
export async function openPostgres(url: string, opts: PgStoreOptions): Promise<PgStore> {
  const sql = postgres(url, {
    max: opts.poolSize ?? 10,
    ...(opts.ssl === undefined
      ? {}
      : { ssl: opts.ssl as postgres.Options<Record<string, never>>["ssl"] }),
    types: { bigint: BIGINT_AS_NUMBER },
    onnotice: () => {},
    ...(opts.onStatement === undefined
      ? {}
      : { debug: (_c: number, text: string) => opts.onStatement?.(text) }),
    connection: { application_name: "bottlekit-budget-store" },
  }) as unknown as Sql;
  try {
    await sql.begin(async (tx) => {
      await tx`SELECT pg_advisory_xact_lock(${PG_MIGRATION_LOCK})`;
      await tx`CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)`;
      const [row] = await tx<
        Array<{ v: number | null }>
      >`SELECT max(version) AS v FROM schema_version`;
      const have = row?.v ?? 0;
      if (have > PG_LATEST_VERSION) {
        throw new BudgetStoreError(
          "E_SCHEMA_VERSION",
          `database schema version ${have} is newer than this @bottlekit/budget-store understands (${PG_LATEST_VERSION})`,
          {
            hint: "upgrade @bottlekit/budget-store (and the tools using it) to the version that wrote it",
          },
        );
      }
      for (const m of PG_MIGRATIONS) {
        if (m.version <= have) continue;
        await tx.unsafe(m.sql);
        await tx`INSERT INTO schema_version (version, applied_at) VALUES (${m.version}, ${opts.clock()})`;
      }
    });
  } catch (err) {
    await sql.end({ timeout: 1 }).catch(() => {});
    if (isBudgetStoreError(err)) throw err;
    const e = err as { message?: string };
    throw new BudgetStoreError(
      "E_STORE_OPEN",
      `cannot open the Postgres budget store: ${e.message ?? String(err)}`,
      {
        cause: err,
        hint: "check the host, port, database, user and password of the postgres:// URL, and that the server is running",
      },
    );
  }
  const store = new PgStore(sql, opts);
  await store.openOwner();
  store.startHeartbeat();
  return store;
}
