import { createHash, randomBytes, randomUUID } from "node:crypto";
import type Database from "better-sqlite3";
import {
  type Applicable,
  applicable,
  applicableOf,
  budgetKey,
  budgetMaps,
  type CheckedBudget,
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
import { type Connection, openConnection } from "./connection.ts";
import { CutoffFeed } from "./cutoff-feed.ts";
import { BudgetStoreError, isBudgetStoreError } from "./errors.ts";
import { migrate } from "./migrations.ts";
import { isLocalProcessGone, localIdentity } from "./owner.ts";
import {
  bound,
  burnMinutes,
  burnSeries,
  GROUP_COLUMNS,
  groupColumns,
  LEDGER_SPAN_SQL,
  MINUTE_MS,
  minuteGrid,
  reportFilter,
  rollupRanges,
  shapeReport,
  usageSql,
} from "./reports.ts";
import type {
  ActionsQuery,
  Budget,
  BudgetFilter,
  BudgetInput,
  BudgetScope,
  BudgetSource,
  BudgetStatus,
  BudgetWindow,
  BurnRate,
  BurnRateQuery,
  CreatedGatewayKey,
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
  RemainingEntry,
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

export interface SqliteStoreOptions {
  clock: () => number;
  reservationTtlMs: number;
  busyTimeoutMs: number;
  /** How long an expired reservation can still be settled before the sweep deletes it. */
  settleGraceMs: number;
  /** Longest wait of a settle or release for its group commit (default 0: next turn). */
  groupCommitMs?: number;
  /** `wal_autocheckpoint` of this connection (default SQLite's 1000 pages). */
  walAutocheckpointPages?: number;
  /** This store's owner id (see owner.ts). */
  owner: string;
  /** Lease of the owner registration; renewed every third of it. */
  leaseMs: number;
  /** Reclaim gone owners' reservations at open (default true). */
  reclaimOnOpen?: boolean;
  /** How often cutoff listeners read the audit trail (default 200 ms). */
  cutoffPollMs?: number;
}

const KEY_PREFIX = "bk_";

interface BudgetRow {
  scope: BudgetScope;
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
  parents: string;
  agent: string;
  provider: string;
  tokens: number;
  usd: number;
  owner: string | null;
}

interface EventRow {
  id: number;
  at: number;
  request_id: string | null;
  bottle: string;
  parents: string;
  agent: string;
  provider: string;
  model: string | null;
  input_tokens: number;
  output_tokens: number;
  cache_read_tokens: number;
  cache_write_tokens: number;
  reasoning_tokens: number;
  tokens: number;
  cost_usd: number | null;
  usage_missing: number;
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

interface ActionRow {
  id: number;
  at: number;
  bottle: string;
  action: EnforcementAction["action"];
  scope: ResolvedScope | null;
  scope_key: string | null;
  scope_provider: string | null;
  by: string;
  reason: string;
}

function toAction(r: ActionRow): EnforcementAction {
  return {
    id: r.id,
    at: r.at,
    bottle: r.bottle,
    action: r.action,
    scope: scopeRef(r.scope, r.scope_key, r.scope_provider),
    by: r.by,
    reason: r.reason,
  };
}

interface KeyRow {
  id: string;
  bottle: string;
  agent: string;
  label: string | null;
  created_at: number;
  revoked_at: number | null;
}

/** A metering call waiting for the group commit. */
interface Pending {
  fn: () => unknown;
  /** Runs once the call's result is committed (a retried batch runs `fn` again, never this). */
  committed: ((value: unknown) => void) | undefined;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
}

type Outcome = { ok: true; value: unknown } | { ok: false; error: unknown };

function isBusy(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === "string" && (code.startsWith("SQLITE_BUSY") || code === "SQLITE_LOCKED");
}

const sleepCell = new Int32Array(new SharedArrayBuffer(4));
function sleepMs(ms: number): void {
  Atomics.wait(sleepCell, 0, 0, ms);
}

const NO_OWNERS: ReadonlySet<string> = new Set();

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

function hashKey(plaintext: string): string {
  return createHash("sha256").update(plaintext, "utf8").digest("hex");
}

/**
 * The SQLite backend. Every write is one IMMEDIATE transaction (the write lock is taken up front,
 * so a read can never be upgraded into a busy error); `busy_timeout` makes writers queue, and a
 * bounded retry loop absorbs what the busy handler gives up on. SQLITE_BUSY never reaches a
 * caller: after `busyTimeoutMs` × 4 of waiting the caller gets E_STORE_BUSY instead.
 *
 * Cost per reserve and per settle: O(1 + parents) indexed statements plus O(days in window)
 * bucket rows and O(in-flight reservations of the provider) rows.
 */
export class SqliteStore implements Store {
  readonly backend = "sqlite";
  readonly owner: string;
  #heartbeat: NodeJS.Timeout | undefined;
  /**
   * Whether this store's owner registration is committed. It is written with the first metering
   * call (a reservation, in the same transaction), not at open: a store that never reserves (a
   * `bottle run` whose agent makes no model call, `bottle usage`) then writes nothing, and its
   * database needs no WAL created, synced and checkpointed. Reservations are the only rows that
   * name an owner, so the registration is still there before the first one is.
   */
  #registered = false;
  readonly #conn: Connection;
  readonly #opts: SqliteStoreOptions;
  #budgetCache:
    | {
        version: string;
        map: Map<string, Budget>;
        flag: Map<string, Budget>;
        defaultPolicy: CutoffPolicy;
      }
    | undefined;
  #closed = false;
  /** reserve/settle/release calls waiting for the next group commit, in call order. */
  #queue: Pending[] = [];
  /** Reservations this store granted and has not yet seen settled or released (a load signal). */
  #inFlight = 0;
  #immediate: NodeJS.Immediate | undefined;
  #timer: NodeJS.Timeout | undefined;
  readonly #flushNow = (): void => this.#flush();
  readonly #feed = new CutoffFeed({
    start: async () => this.#startPoll(),
    stop: async () => this.#stopPoll(),
  });
  #poll: NodeJS.Timeout | undefined;
  /** The last audit id read by the cutoff poll. */
  #pollFrom = 0;

  constructor(conn: Connection, opts: SqliteStoreOptions) {
    this.#conn = conn;
    this.#opts = opts;
    this.owner = opts.owner;
  }

  // ---------------------------------------------------------------------------------------------
  // plumbing

  /**
   * Every statement comes from the connection's cache and is never collected (Node 24 aborts
   * when better-sqlite3 12 objects are finalized at the wrong moment: see connection.ts). SQL
   * passed here is built only from fixed fragments, with every value bound, so each connection
   * sees a bounded set of texts (about 30 fixed, 32 budget filters, 12 × 17 usage reports).
   */
  #s(sql: string): Database.Statement {
    return this.#conn.prepare(sql);
  }

  #open(): void {
    if (this.#closed) {
      throw new BudgetStoreError("E_CLOSED", "the budget store is closed", {
        hint: "open a new store with openStore()",
      });
    }
  }

  /**
   * Group commit. reserve, settle and release are queued and run together, in call order, in ONE
   * IMMEDIATE transaction: one WAL commit, and the pages they share (usage buckets, the tails of
   * the event and reservation tables and their indexes) written once for the whole batch. Each
   * call runs in its own savepoint, so one that throws (an unknown reservation, say) is rolled
   * back alone and the others commit. Every promise settles only after the batch committed, so an
   * acknowledged settle is as durable as before. Each call sees the writes of the calls queued
   * before it, so the result is exactly that of running them one after another: reserve stays an
   * atomic check-and-hold and limits stay exact. Any other method first runs what is queued, so
   * calls still take effect in the order they were made.
   * When: a reserve (on its caller's critical path) at the next `setImmediate`, so it shares the
   * commit with every call of the same event-loop turn, or at once when the store is idle
   * (nothing queued, no reservation of this store in flight); settle and release at the next
   * `setImmediate`, or after at most `groupCommitMs` (default 0) for company, e.g. the next
   * call's reserve.
   */
  #enqueue<T>(fn: () => T, urgent: boolean, committed?: (value: T) => void): Promise<T> {
    this.#open();
    return new Promise<T>((resolve, reject) => {
      this.#queue.push({
        fn,
        committed: committed as ((value: unknown) => void) | undefined,
        resolve: resolve as (value: unknown) => void,
        reject,
      });
      // Idle: a reserve with nothing queued and no reservation of this store in flight has no
      // company to wait for. It commits now, saving its caller an event-loop turn (at concurrency
      // 1 every reserve is in this case). Under load reservations are in flight, and reserves
      // wait for the turn's batch as above.
      if (urgent && this.#queue.length === 1 && this.#inFlight === 0) return this.#flush();
      const wait = this.#opts.groupCommitMs ?? 0;
      if (urgent || wait <= 0) this.#immediate ??= setImmediate(this.#flushNow);
      else this.#timer ??= setTimeout(this.#flushNow, wait);
    });
  }

  /** Commit what is queued (see #enqueue). Never throws: outcomes go to the queued promises. */
  #flush(): void {
    if (this.#immediate !== undefined) {
      clearImmediate(this.#immediate);
      this.#immediate = undefined;
    }
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    const batch = this.#queue;
    if (batch.length === 0) return;
    this.#queue = [];
    const register = !this.#registered;
    if (batch.length === 1) {
      const op = batch[0] as Pending;
      let value: unknown;
      try {
        value = this.#run(
          "immediate",
          register
            ? () => {
                this.#register(this.#now());
                return op.fn();
              }
            : op.fn,
        );
      } catch (error) {
        op.reject(error);
        return;
      }
      if (register) this.#registered = true;
      op.committed?.(value);
      op.resolve(value);
      return;
    }
    let outcomes: Outcome[] = [];
    try {
      this.#run("immediate", () => {
        // A retry after SQLITE_BUSY runs the whole batch again from a clean slate.
        outcomes = [];
        if (register) this.#register(this.#now());
        for (const op of batch) {
          try {
            // nested: a savepoint
            outcomes.push({ ok: true, value: this.#conn.transaction("deferred", op.fn) });
          } catch (error) {
            if (isBusy(error)) throw error;
            outcomes.push({ ok: false, error });
          }
        }
      });
    } catch (error) {
      for (const op of batch) op.reject(error);
      return;
    }
    if (register) this.#registered = true;
    for (let i = 0; i < batch.length; i++) {
      const op = batch[i] as Pending;
      const out = outcomes[i] as Outcome;
      if (out.ok) {
        op.committed?.(out.value);
        op.resolve(out.value);
      } else op.reject(out.error);
    }
  }

  /** Run `fn` in a transaction, retrying on SQLITE_BUSY until the deadline. */
  #run<T>(mode: "immediate" | "deferred", fn: () => T): T {
    // Queued metering calls were made earlier: they take effect first.
    if (this.#queue.length > 0) this.#flush();
    this.#open();
    const deadline = Date.now() + this.#opts.busyTimeoutMs * 4;
    let pause = 1;
    for (;;) {
      try {
        return this.#conn.transaction(mode, fn);
      } catch (err) {
        if (isBudgetStoreError(err) || !isBusy(err)) throw err;
        if (Date.now() >= deadline) {
          throw new BudgetStoreError(
            "E_STORE_BUSY",
            `the budget database stayed locked for more than ${this.#opts.busyTimeoutMs * 4} ms`,
            {
              cause: err,
              hint: "another process holds a long write transaction; retry, or raise busyTimeoutMs",
            },
          );
        }
        sleepMs(pause + Math.random() * pause);
        pause = Math.min(pause * 2, 50);
      }
    }
  }

  #now(): number {
    return this.#opts.clock();
  }

  /** A reservation was settled or released (by this store or another process: never below 0). */
  #settled(): void {
    if (this.#inFlight > 0) this.#inFlight--;
  }

  // ---------------------------------------------------------------------------------------------
  // budgets

  #bumpBudgets(): void {
    this.#s(
      "INSERT INTO meta (key, value) VALUES ('budgets_version', '1') ON CONFLICT(key) DO UPDATE SET value = CAST(value AS INTEGER) + 1",
    ).run();
  }

  #upsertBudget(b: CheckedBudget, now: number): Budget {
    this.#s(
      `INSERT INTO budgets (scope, key, provider, source, tokens, usd, win, policy, updated_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT(scope, key, provider, source) DO UPDATE SET
         tokens = excluded.tokens, usd = excluded.usd, win = excluded.win,
         policy = excluded.policy, updated_at = excluded.updated_at`,
    ).run(
      b.scope,
      b.key,
      b.provider,
      b.source,
      b.tokens ?? null,
      b.usd ?? null,
      b.window,
      b.policy ?? null,
      now,
    );
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
    return this.#run("immediate", () => {
      const out = this.#upsertBudget(b, this.#now());
      this.#bumpBudgets();
      return out;
    });
  }

  async replaceBudgets(source: BudgetSource, inputs: readonly BudgetInput[]): Promise<Budget[]> {
    const src = v.source(source, "source");
    const checked = checkReplace(src, inputs);
    return this.#run("immediate", () => {
      const unchanged = this.#unchangedBudgets(src, checked);
      if (unchanged !== undefined) return unchanged;
      const now = this.#now();
      this.#s("DELETE FROM budgets WHERE source = ?").run(src);
      const out = checked.map((b) => this.#upsertBudget(b, now));
      this.#bumpBudgets();
      return out;
    });
  }

  /**
   * Inside a write transaction: the stored budgets of `source`, one per input, when they are
   * exactly `checked` (same rows, same limits, window and policy; a later input for the same
   * scope, key and provider wins, as with the upserts), else undefined. A gateway or `bottle run`
   * replaces the home's manifest budgets at every start, nearly always with the same ones: then
   * nothing is written, no `budgets_version` bump sends other gateways to reload, and a run that
   * meters nothing leaves the database file as it found it (no WAL to create and sync).
   */
  #unchangedBudgets(src: BudgetSource, checked: readonly CheckedBudget[]): Budget[] | undefined {
    const id = (scope: string, key: string, provider: string) =>
      JSON.stringify([scope, key, provider]);
    const wanted = new Map<string, CheckedBudget>();
    for (const b of checked) wanted.set(id(b.scope, b.key, b.provider), b);
    const rows = this.#s("SELECT * FROM budgets WHERE source = ?").all(src) as BudgetRow[];
    if (rows.length !== wanted.size) return undefined;
    const stored = new Map<string, BudgetRow>();
    for (const r of rows) {
      const b = wanted.get(id(r.scope, r.key, r.provider));
      if (
        b === undefined ||
        r.tokens !== (b.tokens ?? null) ||
        r.usd !== (b.usd ?? null) ||
        r.win !== b.window ||
        r.policy !== (b.policy ?? null)
      ) {
        return undefined;
      }
      stored.set(id(r.scope, r.key, r.provider), r);
    }
    return checked.map((b) => rowToBudget(stored.get(id(b.scope, b.key, b.provider)) as BudgetRow));
  }

  /** One of 16 WHERE texts (each filter present or not); values are bound. */
  #filterSql(filter: BudgetFilter): { where: string; args: string[] } {
    const parts: string[] = [];
    const args: string[] = [];
    if (filter.scope !== undefined) {
      parts.push("scope = ?");
      args.push(v.scope(filter.scope, "filter.scope"));
    }
    if (filter.key !== undefined) {
      parts.push("key = ?");
      args.push(v.name(filter.key, "filter.key"));
    }
    if (filter.provider !== undefined) {
      parts.push("provider = ?");
      args.push(v.name(filter.provider, "filter.provider"));
    }
    if (filter.source !== undefined) {
      parts.push("source = ?");
      args.push(v.source(filter.source, "filter.source"));
    }
    return { where: parts.length === 0 ? "" : ` WHERE ${parts.join(" AND ")}`, args };
  }

  async removeBudgets(filter: BudgetFilter): Promise<number> {
    const { where, args } = this.#filterSql(filter);
    return this.#run("immediate", () => {
      const n = this.#s(`DELETE FROM budgets${where}`).run(...args).changes;
      if (n > 0) this.#bumpBudgets();
      return n;
    });
  }

  async listBudgets(filter: BudgetFilter = {}): Promise<Budget[]> {
    const { where, args } = this.#filterSql(filter);
    return this.#run("deferred", () =>
      (
        this.#s(`SELECT * FROM budgets${where} ORDER BY provider, scope, key, source`).all(
          ...args,
        ) as BudgetRow[]
      ).map(rowToBudget),
    );
  }

  async setDefaultPolicy(policy: CutoffPolicy): Promise<void> {
    const p = v.policy(policy, "defaultPolicy");
    this.#run("immediate", () => {
      this.#s(
        "INSERT INTO meta (key, value) VALUES ('default_policy', ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
      ).run(p);
      this.#bumpBudgets();
    });
  }

  #defaultPolicy(): CutoffPolicy {
    const row = this.#s("SELECT value FROM meta WHERE key = 'default_policy'").get() as
      | { value: string }
      | undefined;
    return (row?.value as CutoffPolicy | undefined) ?? "cutoff";
  }

  async getDefaultPolicy(): Promise<CutoffPolicy> {
    return this.#run("deferred", () => this.#defaultPolicy());
  }

  /** Effective budgets, cached until any process changes a budget (tracked by a version row). */
  #budgets(): { map: Map<string, Budget>; flag: Map<string, Budget> } {
    const row = this.#s("SELECT value FROM meta WHERE key = 'budgets_version'").get() as
      | { value: string }
      | undefined;
    const version = row?.value ?? "0";
    if (this.#budgetCache?.version === version) return this.#budgetCache;
    const { map, flag } = budgetMaps(
      (this.#s("SELECT * FROM budgets").all() as BudgetRow[]).map(rowToBudget),
    );
    // setDefaultPolicy bumps the same version, so the cached default is as fresh as the budgets.
    this.#budgetCache = { version, map, flag, defaultPolicy: this.#defaultPolicy() };
    return this.#budgetCache;
  }

  #applicable(s: CheckedSubject): Applicable[] {
    return applicable(this.#budgets(), s);
  }

  #used(a: Applicable, now: number): Sum {
    return this.#s(
      `SELECT coalesce(sum(tokens), 0) AS t, coalesce(sum(usd), 0) AS u FROM usage_buckets
       WHERE scope = ? AND key = ? AND provider = ? AND day >= ?`,
    ).get(a.bucketScope, a.bucketKey, a.ref.provider, windowStartDay(a.budget.window, now)) as Sum;
  }

  #reserved(a: Applicable, now: number): Sum {
    const head =
      "SELECT coalesce(sum(tokens), 0) AS t, coalesce(sum(usd), 0) AS u FROM reservations";
    switch (a.bucketScope) {
      case "agent":
        return this.#s(`${head} WHERE provider = ? AND expires_at > ? AND agent = ?`).get(
          a.ref.provider,
          now,
          a.bucketKey,
        ) as Sum;
      case "bottle":
        return this.#s(
          `${head} WHERE provider = ? AND expires_at > ? AND (bottle = ? OR instr(parents, ?) > 0)`,
        ).get(a.ref.provider, now, a.bucketKey, JSON.stringify(a.bucketKey)) as Sum;
      default:
        return this.#s(`${head} WHERE provider = ? AND expires_at > ?`).get(
          a.ref.provider,
          now,
        ) as Sum;
    }
  }

  #entries(apps: Applicable[], now: number, withReserved: boolean): RemainingEntry[] {
    const policyDefault = apps.some((a) => a.budget.policy === undefined)
      ? (this.#budgetCache?.defaultPolicy ?? this.#defaultPolicy())
      : "cutoff";
    return entries(
      apps,
      apps.map((a) => this.#used(a, now)),
      withReserved ? apps.map((a) => this.#reserved(a, now)) : undefined,
      policyDefault,
    );
  }

  // ---------------------------------------------------------------------------------------------
  // metering

  /** The bottle's cutoff, ignoring one whose window has reset. */
  #cutoffRow(bottle: string, now: number): CutoffRow | undefined {
    const r = this.#s("SELECT * FROM cutoffs WHERE bottle = ?").get(bottle) as
      | CutoffRow
      | undefined;
    return r !== undefined && r.until !== null && now >= r.until ? undefined : r;
  }

  /** Inside a write transaction: lift a cutoff whose window has reset, with an audit record. */
  #liftExpired(bottle: string, now: number): void {
    const r = this.#s(
      "SELECT * FROM cutoffs WHERE bottle = ? AND until IS NOT NULL AND until <= ?",
    ).get(bottle, now) as CutoffRow | undefined;
    if (r === undefined) return;
    this.#s("DELETE FROM cutoffs WHERE bottle = ?").run(bottle);
    this.#audit(
      bottle,
      "restore",
      now,
      scopeRef(r.scope, r.scope_key, r.scope_provider),
      "window-reset",
      "the budget window reset",
    );
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
    // Urgent: a reserve is on the caller's critical path; it commits at the next turn, together
    // with whatever settles are waiting.
    return this.#enqueue(
      (): ReserveResult => {
        const now = this.#now();
        const chain = [s.bottle, ...s.parents];
        // One indexed read for the whole chain; the common case finds no row.
        // The chain is passed as one JSON array so the SQL text is the same for any number of parents.
        const rows = this.#s(
          "SELECT bottle, until FROM cutoffs WHERE bottle IN (SELECT value FROM json_each(?))",
        ).all(JSON.stringify(chain)) as Array<{ bottle: string; until: number | null }>;
        if (rows.length > 0) {
          const active = new Set<string>();
          for (const row of rows) {
            if (row.until !== null && now >= row.until) this.#liftExpired(row.bottle, now);
            else active.add(row.bottle);
          }
          const refused = cutOffRefusal(s, active);
          if (refused !== undefined) return refused;
        }
        const refused = reserveRefusal(
          this.#entries(this.#applicable(s), now, true),
          estimate,
          estimateUsd,
        );
        if (refused !== undefined) return refused;
        const id = `r_${randomUUID()}`;
        const expiresAt = now + ttl;
        this.#s(
          `INSERT INTO reservations (id, created_at, expires_at, request_id, bottle, parents, agent, provider, tokens, usd, owner)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        ).run(
          id,
          now,
          expiresAt,
          requestId,
          s.bottle,
          JSON.stringify(s.parents),
          s.agent,
          s.provider,
          estimate,
          estimateUsd,
          this.owner,
        );
        return { ok: true, id, expiresAt };
      },
      true,
      (r) => {
        if (r.ok) this.#inFlight++;
      },
    );
  }

  async settle(id: string, usage: SettleUsage): Promise<SettleResult> {
    v.name(id, "settle.id");
    const u = checkUsage(usage);
    return this.#enqueue(
      (): SettleResult => {
        const r = this.#s("SELECT * FROM reservations WHERE id = ?").get(id) as
          | ReservationRow
          | undefined;
        if (r === undefined) {
          throw new BudgetStoreError("E_UNKNOWN_RESERVATION", `reservation ${id} does not exist`, {
            hint: "it was already settled or released, or it expired and was swept (or its owner was declared gone and it was reclaimed); record usage with a new reservation",
          });
        }
        return this.#settleRow(r, u, this.#now());
      },
      false,
      () => this.#settled(),
    );
  }

  /** Inside a write transaction: turn a reservation into a usage event and report crossings. */
  #settleRow(r: ReservationRow, u: CheckedUsage, now: number): SettleResult {
    const parents = JSON.parse(r.parents) as string[];
    // Fail closed: when usage is missing, charge at least what was reserved.
    const { tokens: charged, usd: chargedUsd } = charge(u, r);
    const requestId = u.requestId ?? r.request_id;
    const eventId = Number(
      this.#s(
        `INSERT INTO usage_events (at, request_id, reservation_id, bottle, parents, agent, provider, model,
         input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, reasoning_tokens, tokens, cost_usd, usage_missing)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ).run(
        now,
        requestId,
        r.id,
        r.bottle,
        r.parents,
        r.agent,
        r.provider,
        u.model,
        u.input,
        u.output,
        u.cacheRead,
        u.cacheWrite,
        u.reasoning,
        charged,
        u.cost ?? null,
        u.missing ? 1 : 0,
      ).lastInsertRowid,
    );
    const day = dayOf(now);
    const bump = this.#s(
      `INSERT INTO usage_buckets (scope, key, provider, day, tokens, usd) VALUES (?, ?, ?, ?, ?, ?)
     ON CONFLICT(scope, key, provider, day) DO UPDATE SET tokens = tokens + excluded.tokens, usd = usd + excluded.usd`,
    );
    bump.run("agent", r.agent, r.provider, day, charged, chargedUsd);
    bump.run("bottle", r.bottle, r.provider, day, charged, chargedUsd);
    for (const p of parents) bump.run("bottle", p, r.provider, day, charged, chargedUsd);
    bump.run("global", "*", r.provider, day, charged, chargedUsd);
    this.#s("DELETE FROM reservations WHERE id = ?").run(r.id);

    const spent = crossings(
      this.#entries(
        this.#applicable({ bottle: r.bottle, parents, agent: r.agent, provider: r.provider }),
        now,
        false,
      ),
    );
    const crossed = spent[0];
    if (crossed !== undefined) this.#liftExpired(r.bottle, now);
    if (crossed !== undefined && this.#cutoffRow(r.bottle, now) === undefined) {
      const { reason, until } = cutoffFor(crossed, now);
      this.#recordCutoff(r.bottle, crossed.policy, now, until, crossed, "budget", reason);
    }
    return { eventId, chargedTokens: charged, crossed, crossings: spent };
  }

  #recordCutoff(
    bottle: string,
    policy: CutoffPolicy,
    now: number,
    until: number | undefined,
    ref: ScopeRef | undefined,
    by: string,
    reason: string,
  ) {
    this.#s(
      `INSERT INTO cutoffs (bottle, policy, since, until, scope, scope_key, scope_provider, by, reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT(bottle) DO UPDATE SET policy = excluded.policy, since = excluded.since, until = excluded.until, scope = excluded.scope,
         scope_key = excluded.scope_key, scope_provider = excluded.scope_provider, by = excluded.by, reason = excluded.reason`,
    ).run(
      bottle,
      policy,
      now,
      until ?? null,
      ref?.scope ?? null,
      ref?.key ?? null,
      ref?.provider ?? null,
      by,
      reason,
    );
    this.#audit(bottle, policy, now, ref, by, reason);
  }

  #audit(
    bottle: string,
    action: EnforcementAction["action"],
    now: number,
    ref: ScopeRef | undefined,
    by: string,
    reason: string,
  ) {
    // This store's own listeners hear it right after the commit, not at the next poll.
    if (action !== "reclaim" && this.#feed.active) setImmediate(() => this.#readCutoffs());
    this.#s(
      `INSERT INTO enforcement_actions (at, bottle, action, scope, scope_key, scope_provider, by, reason)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
    ).run(
      now,
      bottle,
      action,
      ref?.scope ?? null,
      ref?.key ?? null,
      ref?.provider ?? null,
      by,
      reason,
    );
  }

  async release(id: string): Promise<boolean> {
    v.name(id, "release.id");
    return this.#enqueue(
      () => this.#s("DELETE FROM reservations WHERE id = ?").run(id).changes > 0,
      false,
      (released) => {
        if (released) this.#settled();
      },
    );
  }

  async sweepExpired(): Promise<number> {
    return this.#run("immediate", () => {
      const cutoff = this.#now() - this.#opts.settleGraceMs;
      return this.#s("DELETE FROM reservations WHERE expires_at <= ?").run(cutoff).changes;
    });
  }

  // ---------------------------------------------------------------------------------------------
  // owners and leases

  /** Register (or re-register) this store as an owner with a fresh lease. */
  #register(now: number): number {
    const me = localIdentity();
    const until = now + this.#opts.leaseMs;
    this.#s(
      `INSERT INTO owners (id, host, pidns, pid, started_at, lease_until) VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT(id) DO UPDATE SET lease_until = excluded.lease_until`,
    ).run(this.owner, me.host, me.pidns, me.pid, now, until);
    return until;
  }

  async renewLease(): Promise<number> {
    const until = this.#run("immediate", () => this.#register(this.#now()));
    this.#registered = true;
    return until;
  }

  async listOwners(): Promise<OwnerInfo[]> {
    return this.#run("deferred", () =>
      (
        this.#s(
          `SELECT o.id, o.host, o.pid, o.started_at, o.lease_until,
             (SELECT count(*) FROM reservations r WHERE r.owner = o.id) AS n
           FROM owners o ORDER BY o.started_at, o.id`,
        ).all() as Array<{
          id: string;
          host: string;
          pid: number;
          started_at: number;
          lease_until: number;
          n: number;
        }>
      ).map((r) => ({
        id: r.id,
        host: r.host,
        pid: r.pid,
        startedAt: r.started_at,
        leaseUntil: r.lease_until,
        reservations: r.n,
      })),
    );
  }

  async reclaim(input: ReclaimInput = {}): Promise<ReclaimResult> {
    const declared = new Set((input.owners ?? []).map((o, i) => v.name(o, `reclaim.owners[${i}]`)));
    declared.delete(this.owner);
    const local = input.deadLocalProcesses !== false;
    return this.#run("immediate", () => this.#reclaim(declared, local, this.#now()));
  }

  /**
   * Inside a write transaction. Finds gone owners, closes each of their reservations as a
   * usage-missing settle (charged the estimate) with a `reclaim` audit entry, and removes their
   * registration. O(owners + reservations held by gone owners).
   */
  #reclaim(declared: ReadonlySet<string>, local: boolean, now: number): ReclaimResult {
    const gone = new Map<string, ReclaimCause>();
    const registered = new Set<string>();
    for (const o of this.#s("SELECT id, host, pidns, pid, lease_until FROM owners").all() as Array<{
      id: string;
      host: string;
      pidns: string;
      pid: number;
      lease_until: number;
    }>) {
      registered.add(o.id);
      if (o.id === this.owner) continue;
      if (declared.has(o.id)) gone.set(o.id, "declared-dead");
      else if (o.lease_until <= now) gone.set(o.id, "lease-expired");
      else if (local && isLocalProcessGone(o)) gone.set(o.id, "process-gone");
    }
    for (const id of declared) if (!registered.has(id)) gone.set(id, "declared-dead");
    // Reservations whose owner never registered (or whose registration was removed).
    const orphans = this.#s(
      "SELECT * FROM reservations WHERE owner IS NOT NULL AND owner NOT IN (SELECT id FROM owners) ORDER BY created_at, id",
    ).all() as ReservationRow[];
    const rows: ReservationRow[] = [...orphans];
    for (const r of rows)
      if (!gone.has(r.owner as string)) gone.set(r.owner as string, "unknown-owner");
    if (gone.size === 0) return { owners: [], reservations: [] };
    const orphanIds = new Set(orphans.map((r) => r.id));
    for (const id of gone.keys()) {
      for (const r of this.#s(
        "SELECT * FROM reservations WHERE owner = ? ORDER BY created_at, id",
      ).all(id) as ReservationRow[]) {
        if (!orphanIds.has(r.id)) rows.push(r);
      }
    }
    const reservations: ReclaimedReservation[] = [];
    for (const r of rows) {
      const owner = r.owner as string;
      const cause = gone.get(owner) as ReclaimCause;
      // The audit entry first: it explains the usage event (and any cutoff) that follow.
      this.#audit(
        r.bottle,
        "reclaim",
        now,
        undefined,
        "reclaim",
        reclaimReason(r.id, owner, cause, r.tokens),
      );
      const settled = this.#settleRow(r, RECLAIM_USAGE, now);
      reservations.push({
        id: r.id,
        owner,
        cause,
        bottle: r.bottle,
        agent: r.agent,
        provider: r.provider,
        requestId: r.request_id ?? undefined,
        eventId: settled.eventId,
        chargedTokens: settled.chargedTokens,
        crossed: settled.crossed,
      });
    }
    const del = this.#s("DELETE FROM owners WHERE id = ?");
    for (const id of gone.keys()) del.run(id);
    return { owners: [...gone.keys()], reservations };
  }

  /** Start renewing this store's lease (and reclaiming expired ones) every third of it. */
  startHeartbeat(): void {
    const every = Math.max(50, Math.floor(this.#opts.leaseMs / 3));
    this.#heartbeat = setInterval(() => {
      if (this.#closed) return;
      try {
        this.#run("immediate", () => {
          const now = this.#now();
          if (this.#registered) this.#register(now);
          this.#reclaim(NO_OWNERS, true, now);
        });
      } catch {
        // A busy or failing database: the next beat tries again. A lease that runs out while the
        // database is unusable lets other stores reclaim, which is the safe direction.
      }
    }, every);
    this.#heartbeat.unref();
  }

  /**
   * At open: (by default) reclaim what gone owners left behind. This owner registers with its
   * first metering call (see `#registered`); a reclaim that finds nothing writes nothing.
   */
  openOwner(reclaim: boolean): void {
    if (reclaim) this.#run("immediate", () => this.#reclaim(NO_OWNERS, true, this.#now()));
  }

  // ---------------------------------------------------------------------------------------------
  // cutoff state

  async isCutOff(bottle: string): Promise<boolean> {
    const b = v.name(bottle, "bottle");
    return this.#run("deferred", () => this.#cutoffRow(b, this.#now()) !== undefined);
  }

  #toState(r: CutoffRow): CutoffState {
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

  async cutoffState(bottle: string): Promise<CutoffState | undefined> {
    const b = v.name(bottle, "bottle");
    return this.#run("deferred", () => {
      const r = this.#cutoffRow(b, this.#now());
      return r === undefined ? undefined : this.#toState(r);
    });
  }

  async cutOff(bottle: string, input: ManualCutoffInput): Promise<CutoffState> {
    const b = v.name(bottle, "bottle");
    const by = v.name(input?.by, "cutOff.by");
    const reason = v.name(input?.reason, "cutOff.reason");
    const p = input.policy === undefined ? undefined : v.policy(input.policy, "cutOff.policy");
    return this.#run("immediate", () => {
      const now = this.#now();
      this.#recordCutoff(b, p ?? this.#defaultPolicy(), now, undefined, undefined, by, reason);
      return this.#toState(this.#cutoffRow(b, now) as CutoffRow);
    });
  }

  async restore(bottle: string, input: RestoreInput): Promise<boolean> {
    const b = v.name(bottle, "bottle");
    const by = v.name(input?.by, "restore.by");
    const reason = v.name(input?.reason, "restore.reason");
    return this.#run("immediate", () => {
      const now = this.#now();
      this.#liftExpired(b, now);
      const row = this.#cutoffRow(b, now);
      if (row === undefined) return false;
      this.#s("DELETE FROM cutoffs WHERE bottle = ?").run(b);
      this.#audit(
        b,
        "restore",
        this.#now(),
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
    const limit = filter.limit === undefined ? -1 : v.count(filter.limit, "actions.limit");
    return this.#run("deferred", () =>
      (
        this.#s(
          `SELECT * FROM (SELECT * FROM enforcement_actions WHERE (? IS NULL OR bottle = ?) AND (? IS NULL OR at >= ?)
           ORDER BY id DESC LIMIT ?) ORDER BY id`,
        ).all(bottle, bottle, since, since, limit) as ActionRow[]
      ).map(toAction),
    );
  }

  onCutoff(listener: CutoffListener): CutoffSubscription {
    this.#open();
    return this.#feed.subscribe(listener);
  }

  /** Take the audit trail's position and read it from there on a timer (while anyone listens). */
  #startPoll(): void {
    this.#open();
    this.#pollFrom = this.#run(
      "deferred",
      () =>
        (
          this.#s("SELECT coalesce(max(id), 0) AS m FROM enforcement_actions").get() as {
            m: number;
          }
        ).m,
    );
    if (this.#poll === undefined) {
      this.#poll = setInterval(() => this.#readCutoffs(), this.#opts.cutoffPollMs ?? 200);
      this.#poll.unref();
    }
  }

  #stopPoll(): void {
    if (this.#poll !== undefined) clearInterval(this.#poll);
    this.#poll = undefined;
  }

  /**
   * Cutoffs and restores written since the last read, by any process: one indexed read that
   * usually finds nothing. Writes are serialized, so ids grow in commit order.
   */
  #readCutoffs(): void {
    if (this.#closed || !this.#feed.active) return;
    try {
      const rows = this.#run(
        "deferred",
        () =>
          this.#s(
            "SELECT * FROM enforcement_actions WHERE id > ? AND action <> 'reclaim' ORDER BY id",
          ).all(this.#pollFrom) as ActionRow[],
      );
      const last = rows[rows.length - 1];
      if (last === undefined) return;
      this.#pollFrom = last.id;
      this.#feed.deliver(rows.map(toAction));
    } catch {
      // a busy or closing database: the next tick reads again
    }
  }

  // ---------------------------------------------------------------------------------------------
  // reports

  /**
   * One of 12 WHERE texts: bottle (absent, exact, with children) × since × until, the filters
   * that can use an index. agent, provider and model have no index, so they are always present
   * as `(? IS NULL OR col = ?)`, which keeps the number of distinct SQL texts small.
   */
  #usageWhere(q: UsageQuery): { where: string; args: Array<string | number | null> } {
    const parts: string[] = [];
    const args: Array<string | number | null> = [];
    if (q.bottle !== undefined) {
      const b = v.name(q.bottle, "usage.bottle");
      if (q.includeChildren === true) {
        parts.push("(bottle = ? OR instr(parents, ?) > 0)");
        args.push(b, JSON.stringify(b));
      } else {
        parts.push("bottle = ?");
        args.push(b);
      }
    }
    for (const [col, val] of [
      ["agent", q.agent],
      ["provider", q.provider],
      ["model", q.model],
    ] as const) {
      const bound = val === undefined ? null : v.name(val, `usage.${col}`);
      parts.push(`(? IS NULL OR ${col} = ?)`);
      args.push(bound, bound);
    }
    if (q.since !== undefined) {
      parts.push("at >= ?");
      args.push(v.count(q.since, "usage.since"));
    }
    if (q.until !== undefined) {
      parts.push("at < ?");
      args.push(v.count(q.until, "usage.until"));
    }
    return { where: ` WHERE ${parts.join(" AND ")}`, args };
  }

  /**
   * Usage over whole days and hours comes from the rollups, the partial hours at the edges from
   * the events (see rollupRanges): a report costs O(days + hours + events of 2 hours) rows per
   * group, not O(events in the range). 16 SQL texts (one per set of group columns).
   */
  async usage(query: UsageQuery = {}): Promise<UsageReport> {
    const f = reportFilter(query, "usage");
    const groupBy = groupColumns(query.groupBy);
    // One SQL text per set of columns, in a fixed order; shapeReport orders rows as asked.
    const canonical = GROUP_COLUMNS.filter((c) => groupBy.includes(c));
    const r = rollupRanges(f.since, f.until);
    const { sql, totalSql } = usageSql(canonical);
    const params = {
      bottle: f.bottle,
      children: f.children ? 1 : 0,
      bottleJson: f.bottleJson,
      agent: f.agent,
      provider: f.provider,
      model: f.model,
      d0: bound(r.days.lo),
      d1: bound(r.days.hi),
      h0: bound(r.hours[0].lo),
      h1: bound(r.hours[0].hi),
      h2: bound(r.hours[1].lo),
      h3: bound(r.hours[1].hi),
      e0: bound(r.events[0].lo),
      e1: bound(r.events[0].hi),
      e2: bound(r.events[1].lo),
      e3: bound(r.events[1].hi),
    };
    // A range that holds every event (no bounds, or bounds outside the ledger's first and last
    // event) reads usage_total: one row per bottle, agent, provider and model.
    return this.#run("deferred", () => {
      let whole = f.since === undefined && f.until === undefined;
      if (!whole) {
        const span = this.#s(LEDGER_SPAN_SQL).get() as {
          lo: number | null;
          hi: number | null;
        };
        whole =
          span.lo === null ||
          span.hi === null ||
          ((f.since === undefined || f.since <= span.lo) &&
            (f.until === undefined || f.until > span.hi));
      }
      const rows = (
        this.#s(whole ? totalSql : sql).all(params) as Array<Record<string, unknown>>
      ).filter((row) => Number(row["events"] ?? 0) > 0);
      return shapeReport(rows, groupBy);
    });
  }

  async budgetStatus(filter: BudgetFilter = {}): Promise<BudgetStatus[]> {
    const { where, args } = this.#filterSql(filter);
    return this.#run("deferred", () => {
      const now = this.#now();
      const { map } = this.#budgets();
      const policyDefault = this.#defaultPolicy();
      const rows = this.#s(
        `SELECT * FROM budgets${where} ORDER BY provider, scope, key, source`,
      ).all(...args) as BudgetRow[];
      return rows.map((row) => {
        const budget = rowToBudget(row);
        const a = applicableOf(budget);
        const used = this.#used(a, now);
        const reserved = this.#reserved(a, now);
        const use = (limit: number | undefined, u: number, r: number) =>
          limit === undefined
            ? undefined
            : { limit, used: u, reserved: r, remaining: Math.max(0, limit - u - r) };
        const start = windowStartDay(budget.window, now);
        return {
          budget,
          effective: map.get(budgetKey(budget))?.source === budget.source,
          windowStart: budget.window === "none" ? undefined : start * 86_400_000,
          policy: budget.policy ?? policyDefault,
          tokens: use(budget.tokens, used.t, reserved.t),
          usd: use(budget.usd, used.u, reserved.u),
        };
      });
    });
  }

  async burnRate(query: BurnRateQuery = {}): Promise<BurnRate> {
    const minutes = burnMinutes(query.minutes, "burnRate.minutes");
    const f = reportFilter(query, "burnRate");
    const byBottle = query.byBottle === true;
    return this.#run("deferred", () => {
      const { since, until } = minuteGrid(this.#now(), minutes);
      const rows = this.#s(
        `SELECT ${byBottle ? "bottle" : "NULL"} AS bottle, CAST((at - @since) / ${MINUTE_MS} AS INTEGER) AS m,
           count(*) AS events, sum(tokens) AS tokens, coalesce(sum(cost_usd), 0) AS cost
         FROM usage_events WHERE at >= @since AND at < @until
           AND (@bottle IS NULL OR bottle = @bottle OR (@children AND instr(parents, @bottleJson) > 0))
           AND (@agent IS NULL OR agent = @agent) AND (@provider IS NULL OR provider = @provider)
         GROUP BY 1, 2`,
      ).all({
        since,
        until,
        bottle: f.bottle,
        children: f.children ? 1 : 0,
        bottleJson: f.bottleJson,
        agent: f.agent,
        provider: f.provider,
      }) as Array<{
        bottle: string | null;
        m: number;
        events: number;
        tokens: number;
        cost: number;
      }>;
      return burnSeries(rows, since, until, minutes, byBottle);
    });
  }

  async events(
    query: Omit<UsageQuery, "groupBy"> & { limit?: number } = {},
  ): Promise<UsageEvent[]> {
    const { where, args } = this.#usageWhere(query);
    const limit = query.limit === undefined ? -1 : v.count(query.limit, "events.limit");
    return this.#run("deferred", () =>
      (
        this.#s(`SELECT * FROM usage_events${where} ORDER BY id LIMIT ?`).all(
          ...args,
          limit,
        ) as EventRow[]
      ).map((r) => ({
        id: r.id,
        at: r.at,
        requestId: r.request_id ?? undefined,
        bottle: r.bottle,
        parents: JSON.parse(r.parents) as string[],
        agent: r.agent,
        provider: r.provider,
        model: r.model ?? undefined,
        inputTokens: r.input_tokens,
        outputTokens: r.output_tokens,
        cacheReadTokens: r.cache_read_tokens,
        cacheWriteTokens: r.cache_write_tokens,
        reasoningTokens: r.reasoning_tokens,
        tokens: r.tokens,
        costUsd: r.cost_usd ?? undefined,
        usageMissing: r.usage_missing === 1,
      })),
    );
  }

  async remaining(subject: Subject): Promise<RemainingReport | undefined> {
    const s = checkSubject(subject, "remaining");
    return this.#run("deferred", () =>
      remainingReport(this.#entries(this.#applicable(s), this.#now(), true)),
    );
  }

  // ---------------------------------------------------------------------------------------------
  // gateway keys

  async createGatewayKey(input: GatewayKeyInput): Promise<CreatedGatewayKey> {
    const bottle = v.name(input?.bottle, "gatewayKey.bottle");
    const agent = v.name(input?.agent, "gatewayKey.agent");
    const label = input.label === undefined ? undefined : v.name(input.label, "gatewayKey.label");
    const id = `gk_${randomBytes(8).toString("hex")}`;
    const key = `${KEY_PREFIX}${randomBytes(32).toString("base64url")}`;
    return this.#run("immediate", () => {
      const now = this.#now();
      this.#s(
        "INSERT INTO gateway_keys (id, hash, bottle, agent, label, created_at, revoked_at) VALUES (?, ?, ?, ?, ?, ?, NULL)",
      ).run(id, hashKey(key), bottle, agent, label ?? null, now);
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
    return this.#run("deferred", () => {
      const r = this.#s(
        "SELECT id, bottle, agent FROM gateway_keys WHERE hash = ? AND revoked_at IS NULL",
      ).get(hash) as GatewayKeyIdentity | undefined;
      return r === undefined ? undefined : { id: r.id, bottle: r.bottle, agent: r.agent };
    });
  }

  async listGatewayKeys(): Promise<GatewayKeyInfo[]> {
    return this.#run("deferred", () =>
      (
        this.#s(
          "SELECT id, bottle, agent, label, created_at, revoked_at FROM gateway_keys ORDER BY created_at, id",
        ).all() as KeyRow[]
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
    return this.#run(
      "immediate",
      () =>
        this.#s("UPDATE gateway_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL").run(
          this.#now(),
          k,
        ).changes > 0,
    );
  }

  /** Distinct statements prepared on this store's connection (internal, for tests of the bound). */
  get preparedStatements(): number {
    return this.#conn.statementCount;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#flush();
    if (this.#heartbeat !== undefined) clearInterval(this.#heartbeat);
    await this.#feed.close();
    this.#stopPoll();
    // Nothing of this owner can be settled after close: let any store reclaim what is left.
    try {
      if (this.#registered)
        this.#run("immediate", () =>
          this.#s("UPDATE owners SET lease_until = ? WHERE id = ?").run(
            Number.MIN_SAFE_INTEGER,
            this.owner,
          ),
        );
    } catch {
      // closing anyway; the lease runs out by itself
    }
    this.#closed = true;
    // The connection and its statements stay pinned after close (see connection.ts).
    this.#conn.close();
  }
}

/** Open (creating and migrating as needed) a SQLite database file or `:memory:`. */
export function openSqlite(path: string, opts: SqliteStoreOptions): SqliteStore {
  let db: Connection;
  try {
    db = openConnection(path);
  } catch (err) {
    throw new BudgetStoreError(
      "E_STORE_OPEN",
      `cannot open the budget database ${path}: ${(err as Error).message}`,
      {
        cause: err,
        hint: "check that the directory exists and is writable",
      },
    );
  }
  try {
    // exec, not db.pragma(): pragma() prepares a throwaway statement (see connection.ts). The
    // timeout is a number, floored, so interpolating it is safe (PRAGMA takes no parameters).
    db.exec(`PRAGMA busy_timeout = ${Math.max(0, Math.floor(opts.busyTimeoutMs))}`);
    const deadline = Date.now() + opts.busyTimeoutMs * 4;
    for (;;) {
      try {
        if (path !== ":memory:") db.exec("PRAGMA journal_mode = WAL");
        db.exec("PRAGMA synchronous = NORMAL");
        // A whole number, so interpolating it is safe (as busy_timeout above).
        db.exec(
          `PRAGMA wal_autocheckpoint = ${Math.max(0, Math.floor(opts.walAutocheckpointPages ?? 1000))}`,
        );
        db.exec("PRAGMA foreign_keys = ON");
        migrate(db, opts.clock());
        break;
      } catch (err) {
        if (!isBusy(err) || Date.now() >= deadline) throw err;
        sleepMs(5 + Math.random() * 10);
      }
    }
  } catch (err) {
    db.close();
    if (isBudgetStoreError(err)) throw err;
    throw new BudgetStoreError(
      "E_STORE_OPEN",
      `cannot prepare the budget database ${path}: ${(err as Error).message}`,
      {
        cause: err,
        hint: "the file may not be a SQLite database, or it is damaged; move it aside and retry",
      },
    );
  }
  const store = new SqliteStore(db, opts);
  store.openOwner(opts.reclaimOnOpen !== false);
  store.startHeartbeat();
  return store;
}
