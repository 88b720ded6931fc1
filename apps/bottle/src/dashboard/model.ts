import type {
  Budget,
  CutoffPolicy,
  CutoffState,
  EnforcementAction,
  RemainingEntry,
  Store,
  UsageEvent,
} from "@bottlekit/budget-store";

/** How a bottle looks on the dashboard. */
export type BottleState = "running" | "active" | "idle" | "cut off" | "frozen" | "killed";

/** A live session as the control socket lists it (only the fields the dashboard reads). */
export interface LiveSession {
  bottle: string;
}

/** Minutes of history in the burn-rate sparkline. */
export const BURN_MINUTES = 15;
/** A bottle with usage in this many ms is "active". */
export const ACTIVE_MS = 2 * 60_000;
/**
 * How far back (ms) each poll re-reads events, so that an event stamped by another process's
 * slightly earlier clock is still seen. Events are deduplicated by id.
 */
const CLOCK_SKEW_MS = 5_000;
/** Budgets and windowed figures are re-read at least this often even without new events. */
const FULL_REFRESH_MS = 30_000;

export interface BudgetBar {
  scope: RemainingEntry["scope"];
  key: string;
  provider: string;
  unit: "tokens" | "usd";
  window: RemainingEntry["window"];
  policy: CutoffPolicy;
  used: number;
  limit: number;
  remaining: number;
}

export interface BottleRow {
  bottle: string;
  agents: string[];
  providers: string[];
  state: BottleState;
  /** Live sessions on the control socket; undefined when no control socket is reachable. */
  sessions: number | undefined;
  events: number;
  /** Billable tokens, all time. */
  tokens: number;
  costUsd: number;
  /** Events without a price (their cost is not in costUsd). */
  unpricedEvents: number;
  usageMissingEvents: number;
  lastUsageAt: number | undefined;
  /** Tokens per minute, oldest first, BURN_MINUTES entries ending with the current minute. */
  burn: number[];
  /** Tokens per minute over the last 5 minutes. */
  ratePerMin: number;
  /** Every budget that applies, per agent and provider the bottle used (binding first). */
  budgets: BudgetBar[];
  /** Milliseconds until the binding token budget is spent at the current rate. */
  exhaustsInMs: number | undefined;
  cutoff: CutoffState | undefined;
  lastAction: EnforcementAction | undefined;
}

export interface DashboardSnapshot {
  at: number;
  rows: BottleRow[];
  /** Pending approvals, or undefined when this bottlekit has no approvals queue. */
  approvals: number | undefined;
  /** Store reads this refresh made (for tests and the bench: counted work, not time). */
  queries: number;
}

interface Totals {
  events: number;
  tokens: number;
  costUsd: number;
  unpricedEvents: number;
  usageMissingEvents: number;
  lastUsageAt: number | undefined;
  subjects: Set<string>;
}

const SUBJECT_SEP = "\u0000";

/**
 * Keeps a dashboard's view of the ledger up to date with cheap polls.
 *
 * The first `refresh` reads the ledger once (one grouped usage query, the audit trail, budgets).
 * Every later `refresh` reads only what changed: events since the last one seen (an index range
 * on time), enforcement actions since the last one, the budget list, and the remaining budget of
 * bottles that changed. Its cost is linear in new events and changed bottles, not in the ledger.
 */
export class DashboardModel {
  readonly #store: Store;
  readonly #clock: () => number;
  readonly #totals = new Map<string, Totals>();
  /** Recent events (for the sparkline and the rate), oldest first, pruned to BURN_MINUTES. */
  #recent: Array<{ at: number; bottle: string; tokens: number }> = [];
  readonly #cutoffs = new Map<string, CutoffState | undefined>();
  readonly #lastAction = new Map<string, EnforcementAction>();
  readonly #bars = new Map<string, BudgetBar[]>();
  #lastEventId = 0;
  #lastEventAt = 0;
  #lastActionId = 0;
  #lastActionAt = 0;
  #budgetsKey = "";
  #lastFull = -Infinity;
  #loaded = false;

  constructor(store: Store, clock: () => number = Date.now) {
    this.#store = store;
    this.#clock = clock;
  }

  #total(bottle: string): Totals {
    let t = this.#totals.get(bottle);
    if (t === undefined) {
      t = {
        events: 0,
        tokens: 0,
        costUsd: 0,
        unpricedEvents: 0,
        usageMissingEvents: 0,
        lastUsageAt: undefined,
        subjects: new Set(),
      };
      this.#totals.set(bottle, t);
    }
    return t;
  }

  async #initialLoad(now: number): Promise<number> {
    const report = await this.#store.usage({ groupBy: ["bottle", "agent", "provider"] });
    for (const g of report.groups) {
      if (g.bottle === undefined) continue;
      const t = this.#total(g.bottle);
      t.events += g.events;
      t.tokens += g.tokens;
      t.costUsd += g.costUsd;
      t.unpricedEvents += g.unpricedEvents;
      t.usageMissingEvents += g.usageMissingEvents;
      t.subjects.add(`${g.agent ?? ""}${SUBJECT_SEP}${g.provider ?? ""}`);
    }
    // The recent window: the sparkline's minutes, and the newest id (the watermark).
    const recent = await this.#store.events({ since: now - BURN_MINUTES * 60_000 });
    for (const e of recent) {
      this.#recent.push({ at: e.at, bottle: e.bottle, tokens: e.tokens });
      const t = this.#total(e.bottle);
      t.lastUsageAt = Math.max(t.lastUsageAt ?? 0, e.at);
      this.#watermark(e);
    }
    if (recent.length === 0) {
      // Nothing recent: the watermark is the newest event of all (read from its time).
      const last = await this.#store.events({ since: Math.max(0, now - CLOCK_SKEW_MS) });
      for (const e of last) this.#watermark(e);
      if (this.#lastEventId === 0) this.#lastEventAt = now;
    }
    const actions = await this.#store.actions();
    for (const a of actions) this.#noteAction(a);
    return 3 + (recent.length === 0 ? 1 : 0);
  }

  #watermark(e: UsageEvent): void {
    if (e.id > this.#lastEventId) this.#lastEventId = e.id;
    if (e.at > this.#lastEventAt) this.#lastEventAt = e.at;
  }

  #noteAction(a: EnforcementAction): void {
    if (a.id > this.#lastActionId) this.#lastActionId = a.id;
    if (a.at > this.#lastActionAt) this.#lastActionAt = a.at;
    const prev = this.#lastAction.get(a.bottle);
    if (prev === undefined || prev.id < a.id) this.#lastAction.set(a.bottle, a);
    this.#total(a.bottle);
  }

  /** Reads what changed since the last refresh and returns the whole table. */
  async refresh(sessions?: readonly LiveSession[]): Promise<DashboardSnapshot> {
    const now = this.#clock();
    const live = sessions === undefined ? undefined : new Map<string, number>();
    for (const s of sessions ?? []) {
      live?.set(s.bottle, (live.get(s.bottle) ?? 0) + 1);
      this.#total(s.bottle);
    }
    let queries = 0;
    const changed = new Set<string>();
    if (!this.#loaded) {
      queries += await this.#initialLoad(now);
      for (const b of this.#totals.keys()) changed.add(b);
      this.#loaded = true;
    } else {
      const fresh = await this.#store.events({
        since: Math.max(0, this.#lastEventAt - CLOCK_SKEW_MS),
      });
      queries++;
      for (const e of fresh) {
        if (e.id <= this.#lastEventId) continue;
        const t = this.#total(e.bottle);
        t.events++;
        t.tokens += e.tokens;
        if (e.costUsd === undefined) t.unpricedEvents++;
        else t.costUsd += e.costUsd;
        if (e.usageMissing) t.usageMissingEvents++;
        t.lastUsageAt = Math.max(t.lastUsageAt ?? 0, e.at);
        t.subjects.add(`${e.agent}${SUBJECT_SEP}${e.provider}`);
        this.#recent.push({ at: e.at, bottle: e.bottle, tokens: e.tokens });
        this.#watermark(e);
        changed.add(e.bottle);
      }
      const actions = await this.#store.actions({
        since: Math.max(0, this.#lastActionAt - CLOCK_SKEW_MS),
      });
      queries++;
      for (const a of actions) {
        if (a.id <= this.#lastActionId) continue;
        this.#noteAction(a);
        changed.add(a.bottle);
      }
    }
    const horizon = now - BURN_MINUTES * 60_000;
    if (this.#recent.length > 0 && (this.#recent[0]?.at ?? 0) < horizon) {
      this.#recent = this.#recent.filter((r) => r.at >= horizon);
    }

    const budgets = await this.#store.listBudgets();
    queries++;
    const budgetsKey = budgetFingerprint(budgets);
    const full = budgetsKey !== this.#budgetsKey || now - this.#lastFull >= FULL_REFRESH_MS;
    if (full) {
      this.#budgetsKey = budgetsKey;
      this.#lastFull = now;
      for (const b of this.#totals.keys()) changed.add(b);
    }
    // A windowed cutoff lifts by itself when its window resets.
    for (const [b, c] of this.#cutoffs) {
      if (c?.until !== undefined && c.until <= now) changed.add(b);
    }
    for (const bottle of changed) {
      this.#cutoffs.set(bottle, await this.#store.cutoffState(bottle));
      queries++;
      const bars: BudgetBar[] = [];
      for (const subject of this.#total(bottle).subjects) {
        const [agent = "", provider = ""] = subject.split(SUBJECT_SEP);
        const report = await this.#store.remaining({ bottle, agent, provider });
        queries++;
        for (const e of report?.entries ?? []) {
          if (bars.some((b) => sameBar(b, e))) continue;
          bars.push({
            scope: e.scope,
            key: e.key,
            provider: e.provider,
            unit: e.unit,
            window: e.window,
            policy: e.policy,
            used: e.used,
            limit: e.limit,
            remaining: e.remaining,
          });
        }
      }
      bars.sort((a, b) => fraction(b) - fraction(a));
      this.#bars.set(bottle, bars);
    }
    // Shared scopes (agent, parent, global, ceiling) seen fresh on a changed bottle are patched
    // into the other bottles' bars too, so one bottle's spend shows on its siblings at once.
    if (!full && changed.size > 0) {
      const fresh = new Map<string, BudgetBar>();
      for (const bottle of changed) {
        for (const bar of this.#bars.get(bottle) ?? []) {
          if (bar.scope !== "bottle") fresh.set(barKey(bar), bar);
        }
      }
      if (fresh.size > 0) {
        for (const [bottle, bars] of this.#bars) {
          if (changed.has(bottle)) continue;
          this.#bars.set(
            bottle,
            bars.map((b) => fresh.get(barKey(b)) ?? b),
          );
        }
      }
    }
    return { at: now, rows: this.#rows(now, live), approvals: undefined, queries };
  }

  #rows(now: number, live: Map<string, number> | undefined): BottleRow[] {
    const minute = Math.floor(now / 60_000);
    const burns = new Map<string, number[]>();
    for (const r of this.#recent) {
      const idx = BURN_MINUTES - 1 - (minute - Math.floor(r.at / 60_000));
      if (idx < 0 || idx >= BURN_MINUTES) continue;
      let arr = burns.get(r.bottle);
      if (arr === undefined) {
        arr = new Array<number>(BURN_MINUTES).fill(0);
        burns.set(r.bottle, arr);
      }
      arr[idx] = (arr[idx] ?? 0) + r.tokens;
    }
    const rows: BottleRow[] = [];
    for (const [bottle, t] of this.#totals) {
      const burn = burns.get(bottle) ?? new Array<number>(BURN_MINUTES).fill(0);
      const last5 = burn.slice(-5).reduce((a, b) => a + b, 0);
      // The current minute is partial: rate over the elapsed part of it plus four whole minutes.
      const elapsedMin = 4 + (now % 60_000) / 60_000;
      const ratePerMin = last5 / Math.max(elapsedMin, 1);
      const budgets = this.#bars.get(bottle) ?? [];
      const binding = budgets
        .filter((b) => b.unit === "tokens")
        .sort((a, b) => a.remaining - b.remaining)[0];
      const cutoff = this.#cutoffs.get(bottle);
      rows.push({
        bottle,
        agents: [...new Set([...t.subjects].map((s) => s.split(SUBJECT_SEP)[0] ?? ""))].sort(),
        providers: [...new Set([...t.subjects].map((s) => s.split(SUBJECT_SEP)[1] ?? ""))].sort(),
        state: stateOf(cutoff, live?.get(bottle) ?? 0, t.lastUsageAt, now),
        sessions: live === undefined ? undefined : (live.get(bottle) ?? 0),
        events: t.events,
        tokens: t.tokens,
        costUsd: t.costUsd,
        unpricedEvents: t.unpricedEvents,
        usageMissingEvents: t.usageMissingEvents,
        lastUsageAt: t.lastUsageAt,
        burn,
        ratePerMin,
        budgets,
        exhaustsInMs:
          binding !== undefined && ratePerMin > 0 && binding.remaining > 0
            ? (binding.remaining / ratePerMin) * 60_000
            : undefined,
        cutoff,
        lastAction: this.#lastAction.get(bottle),
      });
    }
    rows.sort((a, b) => (a.bottle < b.bottle ? -1 : a.bottle > b.bottle ? 1 : 0));
    return rows;
  }
}

function stateOf(
  cutoff: CutoffState | undefined,
  sessions: number,
  lastAt: number | undefined,
  now: number,
): BottleState {
  if (cutoff !== undefined) {
    if (cutoff.policy === "freeze") return "frozen";
    if (cutoff.policy === "kill") return "killed";
    return "cut off";
  }
  if (sessions > 0) return "running";
  return lastAt !== undefined && now - lastAt <= ACTIVE_MS ? "active" : "idle";
}

function sameBar(b: BudgetBar, e: RemainingEntry): boolean {
  return (
    b.scope === e.scope &&
    b.key === e.key &&
    b.provider === e.provider &&
    b.unit === e.unit &&
    b.window === e.window
  );
}

function barKey(b: BudgetBar): string {
  return `${b.scope}\u0000${b.key}\u0000${b.provider}\u0000${b.unit}\u0000${b.window}`;
}

function fraction(b: BudgetBar): number {
  return b.limit > 0 ? b.used / b.limit : 1;
}

function budgetFingerprint(budgets: readonly Budget[]): string {
  return budgets
    .map(
      (b) =>
        `${b.scope}/${b.key}/${b.provider}/${b.source}/${b.tokens}/${b.usd}/${b.window}/${b.policy}/${b.updatedAt}`,
    )
    .join("|");
}
