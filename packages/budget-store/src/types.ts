/**
 * Public types of @bottlekit/budget-store and the backend-neutral `Store` interface.
 *
 * Every method of `Store` is asynchronous so that a Postgres backend can satisfy the same
 * interface and pass the same contract test suite as the embedded SQLite backend.
 */

/** What happens to a bottle once a budget that governs it is spent. */
export type CutoffPolicy = "cutoff" | "freeze" | "kill";

/**
 * Where a budget applies.
 * - `agent`: usage of one agent (key = agent name), across bottles.
 * - `bottle`: usage of one bottle (key = bottle name), including every bottle that lists it as a
 *   parent. A bottle budget reached through `parents` is the "parent bottle" scope.
 * - `global`: all usage of the provider on this store (key = "*").
 * - `ceiling`: like `global`, but it is not part of the precedence chain: it always applies on
 *   top of whichever scope governs.
 */
export type BudgetScope = "agent" | "bottle" | "global" | "ceiling";

/** The scope a decision was taken on. `parent` is a bottle budget reached through `parents`. */
export type ResolvedScope = "agent" | "bottle" | "parent" | "global" | "ceiling";

/**
 * Accounting window of a budget, in UTC.
 * - `none`: all usage ever;
 * - `daily`: the current UTC calendar day;
 * - `weekly`: the current ISO week (Monday 00:00 UTC);
 * - `monthly`: the current UTC calendar month;
 * - `"<N>d"`: rolling, the current UTC day and the N-1 days before it.
 */
export type BudgetWindow = "none" | "daily" | "weekly" | "monthly" | `${number}d`;

/**
 * Where a budget came from. For the same scope, key and provider the higher one wins:
 * flag > operator > manifest > config > settings.
 * - `settings`: `$BOTTLEKIT_HOME/settings.yml` (`applySettings`);
 * - `config`: the gateway's config file (replaced as a whole when the gateway starts);
 * - `manifest`: a bottle or agent manifest;
 * - `operator`: set by hand (`bottle budget set`), until removed by hand;
 * - `flag`: a run's `--budget`; it governs that run ahead of any nearer scope, and the run
 *   removes it when it ends.
 */
export type BudgetSource = "settings" | "config" | "manifest" | "operator" | "flag";

/** A budget as supplied by a caller. At least one of `tokens` or `usd` is required. */
export interface BudgetInput {
  scope: BudgetScope;
  /** Agent name, bottle name, or "*" for `global` / `ceiling` (defaults to "*" there). */
  key?: string;
  /** Provider id, e.g. "anthropic". Budgets are per provider. */
  provider: string;
  /** Token limit. A limit of N allows exactly N tokens: usage >= N is spent. */
  tokens?: number;
  /** Optional USD limit, checked against priced usage. */
  usd?: number;
  /** Defaults to "none". */
  window?: BudgetWindow;
  /** Defaults to the store's default policy (settings `shutdown`, else "cutoff"). */
  policy?: CutoffPolicy;
  /** Defaults to "settings". */
  source?: BudgetSource;
}

/** A stored budget. */
export interface Budget {
  scope: BudgetScope;
  key: string;
  provider: string;
  tokens: number | undefined;
  usd: number | undefined;
  window: BudgetWindow;
  /** Undefined means "the store's default policy at decision time". */
  policy: CutoffPolicy | undefined;
  source: BudgetSource;
  updatedAt: number;
}

/** Selects budgets to list or remove. Omitted fields match everything. */
export interface BudgetFilter {
  scope?: BudgetScope;
  key?: string;
  provider?: string;
  source?: BudgetSource;
}

/** Who is spending: the identity the gateway resolved from a gateway key. */
export interface Subject {
  bottle: string;
  /** Parent bottles, nearest first (e.g. the `extends` chain or the launching bottle). */
  parents?: readonly string[];
  agent: string;
  provider: string;
}

export interface ReserveInput extends Subject {
  /** Worst-case tokens the call may use. Held until settle/release or TTL expiry. */
  estimateTokens: number;
  /** Worst-case USD the call may cost, when the model is priced. */
  estimateUsd?: number;
  /** Gateway request id, kept on the reservation and the usage event. */
  requestId?: string;
  /** Override of the store's reservation TTL, in milliseconds. */
  ttlMs?: number;
}

/** Why a reservation was refused. */
export type RefusalReason =
  /** The bottle (or one of its parents) is cut off until an operator restores it. */
  | "cut-off"
  /** The budget is already spent (used >= limit). */
  | "exhausted"
  /** Not spent yet, but used + reserved + estimate would exceed the limit. */
  | "insufficient";

export interface ScopeRef {
  scope: ResolvedScope;
  key: string;
  provider: string;
}

export type ReserveResult =
  | { ok: true; id: string; expiresAt: number }
  | {
      ok: false;
      reason: RefusalReason;
      scope: ScopeRef;
      /** Tokens still reservable on the refusing scope (0 when cut off or spent). */
      remaining: number;
    };

/**
 * Real usage reported by the upstream, normalized as @bottlekit/provider-registry's `Usage`:
 * `inputTokens` includes cached tokens and `outputTokens` includes reasoning.
 */
export interface SettleUsage {
  model?: string;
  /** All input tokens, cached ones included. */
  inputTokens?: number;
  /** All output tokens, reasoning included. */
  outputTokens?: number;
  /** Part of `inputTokens` read from the prompt cache (informational). */
  cacheReadTokens?: number;
  /** Part of `inputTokens` written to the prompt cache (informational). */
  cacheWriteTokens?: number;
  /** Part of `outputTokens` spent on reasoning (informational). */
  reasoningTokens?: number;
  /** Billable total charged against token budgets. Defaults to inputTokens + outputTokens. */
  totalTokens?: number;
  /** USD cost when the model is priced; undefined when unpriced. */
  costUsd?: number;
  /**
   * The upstream did not report usage (interrupted stream, missing field). Fails closed: the
   * reservation's estimate is charged when it exceeds the reported tokens.
   */
  usageMissing?: boolean;
  requestId?: string;
}

/** A budget that is spent after a settle. */
export interface Crossing extends ScopeRef {
  unit: "tokens" | "usd";
  window: BudgetWindow;
  limit: number;
  used: number;
  policy: CutoffPolicy;
}

export interface SettleResult {
  /** Id of the recorded usage event. */
  eventId: number;
  /** Tokens charged against budgets (may exceed the reported total when usage was missing). */
  chargedTokens: number;
  /** The governing scope that is spent, else the spent ceiling; undefined when nothing is spent. */
  crossed: Crossing | undefined;
  /** Every spent scope (governing and ceiling, tokens and USD). */
  crossings: Crossing[];
}

/** Cutoff state of a bottle. */
export interface CutoffState {
  bottle: string;
  policy: CutoffPolicy;
  since: number;
  /**
   * When a budget with a window was spent, the cutoff lifts by itself when the window resets
   * (recorded as a "restore" by "window-reset"). Undefined: only an operator's restore lifts it.
   */
  until: number | undefined;
  /** The scope that was spent, or undefined when an operator cut the bottle off by hand. */
  scope: ScopeRef | undefined;
  by: string;
  reason: string;
}

/**
 * What an audit entry records: a cutoff policy applied, a restore, or a reservation reclaimed
 * from an owner that is gone (charged as a usage-missing event).
 */
export type EnforcementActionKind = CutoffPolicy | "restore" | "reclaim";

/** One row of the enforcement audit trail. */
export interface EnforcementAction {
  id: number;
  at: number;
  bottle: string;
  action: EnforcementActionKind;
  scope: ScopeRef | undefined;
  /** "budget" for automatic decisions, else the operator's name. */
  by: string;
  reason: string;
}

/**
 * A cutoff or restore of a bottle, recorded by any store sharing the database (this one
 * included): the audit entry, with `action` the policy applied or "restore".
 */
export interface CutoffEvent extends EnforcementAction {
  action: CutoffPolicy | "restore";
}

/** Called once per cutoff event; a listener that throws does not affect others. */
export type CutoffListener = (event: CutoffEvent) => void;

export interface CutoffSubscription {
  /**
   * Resolves once events recorded from then on are delivered (Postgres: LISTEN is active;
   * SQLite: the audit trail position is taken). Rejects when the store cannot listen.
   */
  ready: Promise<void>;
  /** Stop delivering to this listener (idempotent). */
  close(): void;
}

export interface UsageQuery {
  bottle?: string;
  /** With `bottle`: also count bottles that list it as a parent. */
  includeChildren?: boolean;
  agent?: string;
  provider?: string;
  model?: string;
  /** Inclusive lower bound, epoch milliseconds. */
  since?: number;
  /** Exclusive upper bound, epoch milliseconds. */
  until?: number;
  groupBy?: ReadonlyArray<"bottle" | "agent" | "provider" | "model">;
}

export interface UsageTotals {
  events: number;
  inputTokens: number;
  outputTokens: number;
  cacheReadTokens: number;
  cacheWriteTokens: number;
  reasoningTokens: number;
  /** Billable tokens charged against budgets. */
  tokens: number;
  /** Sum of priced costs. */
  costUsd: number;
  /** Events without a price (their cost is not in `costUsd`). */
  unpricedEvents: number;
  usageMissingEvents: number;
}

export interface UsageGroup extends UsageTotals {
  bottle?: string;
  agent?: string;
  provider?: string;
  model?: string;
}

export interface UsageReport {
  totals: UsageTotals;
  /** One entry per group when `groupBy` is set, else empty. */
  groups: UsageGroup[];
}

/** Use of one unit (tokens or USD) of a budget in its current window. */
export interface BudgetUse {
  limit: number;
  used: number;
  /** Held by reservations in flight. */
  reserved: number;
  /** max(0, limit - used - reserved). */
  remaining: number;
}

/** A stored budget with its use in the current window (the dashboard's budget bars). */
export interface BudgetStatus {
  budget: Budget;
  /**
   * False when a higher source defines the same scope, key and provider: this budget is shadowed
   * and decides nothing.
   */
  effective: boolean;
  /** First instant of the current window (epoch ms), undefined for `none`. */
  windowStart: number | undefined;
  /** The policy applied when it is spent (the store's default when the budget names none). */
  policy: CutoffPolicy;
  tokens: BudgetUse | undefined;
  usd: BudgetUse | undefined;
}

export interface BurnRateQuery {
  /** Whole minutes ending with the current one (1 to 1440, default 15). */
  minutes?: number;
  bottle?: string;
  /** With `bottle`: also count bottles that list it as a parent. */
  includeChildren?: boolean;
  agent?: string;
  provider?: string;
  /** One series per bottle instead of one for everything selected. */
  byBottle?: boolean;
}

export interface BurnSeries {
  /** Set when `byBottle`. */
  bottle?: string;
  /** Per minute, oldest first: `minutes` entries each. */
  events: number[];
  tokens: number[];
  costUsd: number[];
}

export interface BurnRate {
  /** Start of the first minute (epoch ms). */
  since: number;
  /** End of the last (current) minute. */
  until: number;
  bucketMs: number;
  /** Without `byBottle`: exactly one series. With it: one per bottle that used anything. */
  series: BurnSeries[];
}

export interface ActionsQuery {
  bottle?: string;
  /** Inclusive lower bound on `at`, epoch milliseconds. */
  since?: number;
  /** Only the latest `limit` entries (still oldest first). */
  limit?: number;
}

/** One usage event of the ledger. */
export interface UsageEvent {
  id: number;
  at: number;
  requestId: string | undefined;
  bottle: string;
  parents: string[];
  agent: string;
  provider: string;
  model: string | undefined;
  inputTokens: number;
  outputTokens: number;
  cacheReadTokens: number;
  cacheWriteTokens: number;
  reasoningTokens: number;
  tokens: number;
  costUsd: number | undefined;
  usageMissing: boolean;
}

export interface RemainingEntry extends ScopeRef {
  unit: "tokens" | "usd";
  window: BudgetWindow;
  policy: CutoffPolicy;
  limit: number;
  used: number;
  reserved: number;
  /** max(0, limit - used - reserved). */
  remaining: number;
}

/**
 * The binding budget for a subject (the entry with the least remaining), plus every entry that
 * applies (governing scope and ceiling, tokens and USD). Undefined when no budget applies.
 */
export interface RemainingReport extends RemainingEntry {
  entries: RemainingEntry[];
}

export interface GatewayKeyInput {
  bottle: string;
  agent: string;
  label?: string;
}

export interface GatewayKeyInfo {
  id: string;
  bottle: string;
  agent: string;
  label: string | undefined;
  createdAt: number;
  revokedAt: number | undefined;
}

/** Returned once by `createGatewayKey`: the plaintext is never stored and cannot be read back. */
export interface CreatedGatewayKey extends GatewayKeyInfo {
  key: string;
}

export interface GatewayKeyIdentity {
  id: string;
  bottle: string;
  agent: string;
}

export interface RestoreInput {
  by: string;
  reason: string;
}

export interface ManualCutoffInput {
  policy?: CutoffPolicy;
  by: string;
  reason: string;
}

/** A store instance that holds (or held) reservations: one gateway process. */
export interface OwnerInfo {
  /** `<host>/<pid>/<random>`, unique per opened store. */
  id: string;
  host: string;
  pid: number;
  startedAt: number;
  /** The owner is presumed gone once the clock passes this (epoch ms). */
  leaseUntil: number;
  /** Reservations it holds now. */
  reservations: number;
}

/** Why a reservation was reclaimed. */
export type ReclaimCause =
  /** Its owner did not renew its lease in time (a crashed or partitioned host). */
  | "lease-expired"
  /** The caller declared the owner dead (e.g. the previous run of the same gateway home). */
  | "declared-dead"
  /** The owner ran on this host and its process no longer exists. */
  | "process-gone"
  /** The owner id is not registered (its registration was removed). */
  | "unknown-owner";

export interface ReclaimInput {
  /** Owner ids to treat as dead whatever their lease says (never this store's own id). */
  owners?: readonly string[];
  /**
   * Also reclaim owners that ran on this host (same host name and, on Linux, the same pid
   * namespace) whose process is gone. Default true.
   */
  deadLocalProcesses?: boolean;
}

export interface ReclaimedReservation {
  id: string;
  owner: string;
  cause: ReclaimCause;
  bottle: string;
  agent: string;
  provider: string;
  requestId: string | undefined;
  /** The usage-missing event recorded for it. */
  eventId: number;
  /** The reservation's estimate, charged in full (fail closed). */
  chargedTokens: number;
  /** As SettleResult.crossed: a budget this charge spent (the bottle is then cut off). */
  crossed: Crossing | undefined;
}

export interface ReclaimResult {
  /** Owners found gone (their registration is removed). */
  owners: string[];
  reservations: ReclaimedReservation[];
}

/** The backend-neutral store. SQLite and Postgres pass the same contract tests. */
export interface Store {
  /** "sqlite" or "postgres". */
  readonly backend: string;
  /**
   * This store's owner id (`<host>/<pid>/<random>`, or `OpenStoreOptions.owner`). Every
   * reservation it grants carries it; the store renews its lease while open.
   */
  readonly owner: string;

  // Budgets
  /** Insert or replace the budget for (scope, key, provider, source). */
  defineBudget(input: BudgetInput): Promise<Budget>;
  /** Atomically replace every budget of `source` with `inputs` (e.g. after reloading settings). */
  replaceBudgets(source: BudgetSource, inputs: readonly BudgetInput[]): Promise<Budget[]>;
  /** Remove matching budgets; returns how many were removed. */
  removeBudgets(filter: BudgetFilter): Promise<number>;
  listBudgets(filter?: BudgetFilter): Promise<Budget[]>;
  /** Policy used by budgets that do not name one. */
  setDefaultPolicy(policy: CutoffPolicy): Promise<void>;
  getDefaultPolicy(): Promise<CutoffPolicy>;

  // Metering
  /** Atomic check-and-hold against the governing budget and the ceiling. */
  reserve(input: ReserveInput): Promise<ReserveResult>;
  /** Record real usage for a reservation, release its hold, and report spent budgets. */
  settle(id: string, usage: SettleUsage): Promise<SettleResult>;
  /** Drop a reservation without usage (the call never reached upstream). Returns false if unknown. */
  release(id: string): Promise<boolean>;
  /** Delete reservations whose TTL has passed (also done inside reserve). Returns how many. */
  sweepExpired(): Promise<number>;

  // Owners and leases
  /** Extend this store's lease now (the store also does it on a timer). Returns the new end. */
  renewLease(): Promise<number>;
  /** Registered owners, with how many reservations each holds. */
  listOwners(): Promise<OwnerInfo[]>;
  /**
   * Close the reservations of owners that are gone (lease expired, declared dead, or dead on
   * this host): each becomes a usage event with `usageMissing`, charged its reservation, and an
   * audit entry (`reclaim`); a budget it spends cuts the bottle off as a settle would. Runs at
   * open and with every lease renewal; call it directly to act at once.
   */
  reclaim(input?: ReclaimInput): Promise<ReclaimResult>;

  // Cutoff state
  isCutOff(bottle: string): Promise<boolean>;
  cutoffState(bottle: string): Promise<CutoffState | undefined>;
  /** Operator-commanded cutoff. */
  cutOff(bottle: string, input: ManualCutoffInput): Promise<CutoffState>;
  /** Lift a cutoff. Returns false when the bottle was not cut off. */
  restore(bottle: string, input: RestoreInput): Promise<boolean>;
  /** The audit trail, oldest first. */
  actions(filter?: ActionsQuery): Promise<EnforcementAction[]>;
  /**
   * Hear every cutoff and restore any store sharing this database records (this one included),
   * from `ready` on, each once: a gateway applies another gateway's cutoff to its live calls.
   * Postgres: LISTEN/NOTIFY, delivered as the deciding transaction commits (after a dropped
   * connection, missed entries are read back from the audit trail). SQLite: the audit trail is
   * read every `cutoffPollMs` (and at once after this store records one). A cutoff of a parent
   * bottle applies to its children: match `event.bottle` against a call's bottle and parents.
   */
  onCutoff(listener: CutoffListener): CutoffSubscription;

  // Reports
  usage(query?: UsageQuery): Promise<UsageReport>;
  events(query?: Omit<UsageQuery, "groupBy"> & { limit?: number }): Promise<UsageEvent[]>;
  remaining(subject: Subject): Promise<RemainingReport | undefined>;
  /** Every stored budget (or those matching) with its use in the current window. */
  budgetStatus(filter?: BudgetFilter): Promise<BudgetStatus[]>;
  /** Usage per minute over the last minutes (the dashboard's sparklines). */
  burnRate(query?: BurnRateQuery): Promise<BurnRate>;

  // Gateway keys
  createGatewayKey(input: GatewayKeyInput): Promise<CreatedGatewayKey>;
  verifyGatewayKey(plaintext: string): Promise<GatewayKeyIdentity | undefined>;
  listGatewayKeys(): Promise<GatewayKeyInfo[]>;
  /** Returns false when the id is unknown or already revoked. */
  revokeGatewayKey(id: string): Promise<boolean>;

  close(): Promise<void>;
}

export interface OpenStoreOptions {
  /** Clock in epoch milliseconds; injected by tests. Defaults to Date.now. */
  clock?: () => number;
  /** Reservation TTL in milliseconds (default 10 minutes). */
  reservationTtlMs?: number;
  /** How long after expiry a reservation can still be settled before sweeps delete it (default 1 hour). */
  settleGraceMs?: number;
  /** busy_timeout in milliseconds (default 5000). */
  busyTimeoutMs?: number;
  /**
   * Group commit window for settle and release, in milliseconds (default 0: the next event-loop
   * turn). Calls made in the same turn always share one transaction; a window > 0 lets a settle
   * wait up to that long for more company (a reserve arriving meanwhile commits it at once).
   * Promises resolve only after the commit, so a caller that awaits each settle in turn waits
   * the window every time: use it only for servers with many calls in flight.
   */
  groupCommitMs?: number;
  /**
   * WAL pages after which a commit also checkpoints (SQLite's `wal_autocheckpoint`, default
   * 1000). The checkpoint (with its fsyncs) runs inside the commit that crosses the mark, so a
   * busy server may raise it to make those slow commits rarer, at the cost of a larger WAL file.
   */
  walAutocheckpointPages?: number;
  /** Used to find the default database when `url` is omitted. Defaults to $BOTTLEKIT_HOME. */
  home?: string;
  /** This store's owner id (default `<host>/<pid>/<random>`). Must be unique per open store. */
  owner?: string;
  /**
   * Lease of this store's owner registration, in milliseconds (default 30 000). The store renews
   * it every third of that and, at the same time, reclaims the reservations of owners whose lease
   * ran out. Other stores reclaim this one's reservations once it stops renewing.
   */
  leaseMs?: number;
  /** Reclaim gone owners' reservations while opening (default true). */
  reclaimOnOpen?: boolean;
  /**
   * SQLite: how often `onCutoff` subscribers read the audit trail for entries other processes
   * wrote, in milliseconds (default 200). Only while someone listens.
   */
  cutoffPollMs?: number;
  /** Postgres: connections in the pool (default 10). */
  poolSize?: number;
  /**
   * Postgres: TLS, passed to the client as is: `false`, a libpq sslmode ("require", "prefer",
   * "verify-full", ...) or `node:tls` connect options ({ ca, cert, key, servername, ... }).
   * `sslmode` in the URL works too.
   */
  ssl?: boolean | "require" | "allow" | "prefer" | "verify-full" | Record<string, unknown>;
}
