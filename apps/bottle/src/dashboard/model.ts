import type {
  Budget,
  CutoffPolicy,
  CutoffState,
  EnforcementAction,
  RemainingEntry,
  Store,
} from "@bottlekit/budget-store";

/** How a bottle looks on the dashboard. */
export type BottleState = "running" | "active" | "idle" | "cut off" | "frozen" | "killed";

/** A live session as the control socket lists it (only the fields the dashboard reads). */
export interface LiveSession {
  bottle: string;
}

/** Minutes of history in the burn-rate sparkline. */
export const BURN_MINUTES = 15;
/** A bottle with usage in the current minute or the ACTIVE_MINUTES before it is "active". */
export const ACTIVE_MINUTES = 2;
/**
 * How far back (ms) each poll re-reads events, so that an event stamped by another process's
 * slightly earlier clock is still seen. Events are deduplicated by id.
 */
const CLOCK_SKEW_MS = 5_000;
/**
 * Each bottle's budgets and cutoff are re-read at least this often even without new events
 * (reservations, window resets and other bottles' spend on shared scopes move them)...
 */
export const BUDGET_REREAD_MS = 30_000;
/**
 * ...but a refresh re-reads at most this many bottles for that, the longest-unread first, so
 * the re-reads of 100 bottles spread over several refreshes instead of one slow one (at the
 * default 500 ms poll, 100 bottles are all re-read within 12.5 s).
 */
export const REREAD_PER_REFRESH = 4;

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
}

interface Minute {
  events: number;
  tokens: number;
}

const SUBJECT_SEP = "\u0000";
/** The live window re-read on every refresh starts at least this long before now. */
const LIVE_MS = 60_000;
/** Once the live window is this long, its older part is folded into the base totals. */
const REBASE_MS = 5 * 60_000;

function emptyTotals(): Totals {
  return { events: 0, tokens: 0, costUsd: 0, unpricedEvents: 0, usageMissingEvents: 0 };
}

function add(into: Totals, g: Totals): void {
  into.events += g.events;
  into.tokens += g.tokens;
  into.costUsd += g.costUsd;
  into.unpricedEvents += g.unpricedEvents;
  into.usageMissingEvents += g.usageMissingEvents;
}

/**
 * Keeps a dashboard's view of the ledger up to date with cheap polls.
 *
 * The first `refresh` reads the ledger once: totals per bottle, agent and provider up to a start
 * time T0 (one grouped query over the whole ledger), each of the sparkline's minutes, and the
 * audit trail. Every later `refresh` reads only recent data, through the usage table's time
 * index: the totals since T0 (a minute or a few), the current and previous minute, enforcement
 * actions since the last one seen, the budget list, and the remaining budget of bottles whose
 * figures changed, plus at most REREAD_PER_REFRESH bottles not read for BUDGET_REREAD_MS. Every five minutes the older part of the live window is folded into the base
 * (events stamped more than a minute late by a writer's clock are the only ones it could miss).
 * A refresh costs O(events in the live window + changed bottles), not O(ledger).
 */
export class DashboardModel {
  readonly #store: Store;
  readonly #clock: () => number;
  /** Totals before T0, per bottle. */
  readonly #base = new Map<string, Totals>();
  /** Totals per bottle as of the last refresh (base + live window). */
  #shown = new Map<string, Totals>();
  readonly #subjects = new Map<string, Set<string>>();
  /** Per minute (epoch minute) and bottle: events and tokens. */
  readonly #minutes = new Map<number, Map<string, Minute>>();
  readonly #cutoffs = new Map<string, CutoffState | undefined>();
  readonly #lastAction = new Map<string, EnforcementAction>();
  readonly #bars = new Map<string, BudgetBar[]>();
  /** Bottles known without usage (an action or a live session). */
  readonly #known = new Set<string>();
  #t0 = 0;
  #lastActionId = 0;
  #lastActionAt = 0;
  #budgetsKey = "";
  /** When each bottle's budgets and cutoff were last read. */
  readonly #readAt = new Map<string, number>();
  #loaded = false;

  constructor(store: Store, clock: () => number = Date.now) {
    this.#store = store;
    this.#clock = clock;
  }

  #subject(bottle: string, agent: string | undefined, provider: string | undefined): void {
    let set = this.#subjects.get(bottle);
    if (set === undefined) {
      set = new Set();
      this.#subjects.set(bottle, set);
    }
    set.add(`${agent ?? ""}${SUBJECT_SEP}${provider ?? ""}`);
  }

  async #fold(into: Map<string, Totals>, since: number | undefined, until: number): Promise<void> {
    const report = await this.#store.usage({
      ...(since !== undefined ? { since } : {}),
      until,
      groupBy: ["bottle", "agent", "provider"],
    });
    for (const g of report.groups) {
      if (g.bottle === undefined) continue;
      let t = into.get(g.bottle);
      if (t === undefined) {
        t = emptyTotals();
        into.set(g.bottle, t);
      }
      add(t, g);
      this.#subject(g.bottle, g.agent, g.provider);
    }
  }

  async #readMinute(m: number): Promise<void> {
    const report = await this.#store.usage({
      since: m * 60_000,
      until: (m + 1) * 60_000,
      groupBy: ["bottle"],
    });
    const per = new Map<string, Minute>();
    for (const g of report.groups) {
      if (g.bottle !== undefined) per.set(g.bottle, { events: g.events, tokens: g.tokens });
    }
    this.#minutes.set(m, per);
  }

  #noteAction(a: EnforcementAction): void {
    if (a.id > this.#lastActionId) this.#lastActionId = a.id;
    if (a.at > this.#lastActionAt) this.#lastActionAt = a.at;
    const prev = this.#lastAction.get(a.bottle);
    if (prev === undefined || prev.id < a.id) this.#lastAction.set(a.bottle, a);
    this.#known.add(a.bottle);
  }

  /** Reads what changed since the last refresh and returns the whole table. */
  async refresh(sessions?: readonly LiveSession[]): Promise<DashboardSnapshot> {
    const now = this.#clock();
    const minute = Math.floor(now / 60_000);
    const live = sessions === undefined ? undefined : new Map<string, number>();
    for (const s of sessions ?? []) {
      live?.set(s.bottle, (live.get(s.bottle) ?? 0) + 1);
      this.#known.add(s.bottle);
    }
    let queries = 0;
    const changed = new Set<string>();
    if (!this.#loaded) {
      this.#t0 = now - LIVE_MS;
      await this.#fold(this.#base, undefined, this.#t0);
      queries++;
      for (let m = minute - BURN_MINUTES + 1; m <= minute; m++) {
        await this.#readMinute(m);
        queries++;
      }
      for (const a of await this.#store.actions()) this.#noteAction(a);
      queries++;
      this.#loaded = true;
    } else {
      if (now - this.#t0 >= REBASE_MS) {
        const t1 = now - LIVE_MS;
        await this.#fold(this.#base, this.#t0, t1);
        queries++;
        this.#t0 = t1;
      }
      for (const m of [minute - 1, minute]) {
        await this.#readMinute(m);
        queries++;
      }
      for (const m of this.#minutes.keys()) if (m <= minute - BURN_MINUTES) this.#minutes.delete(m);
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
    // Totals: base + the live window since T0.
    const shown = new Map<string, Totals>();
    for (const [b, t] of this.#base) shown.set(b, { ...t });
    await this.#fold(shown, this.#t0, now + 1);
    queries++;
    for (const [b, t] of shown) {
      const before = this.#shown.get(b);
      if (before === undefined || before.events !== t.events) changed.add(b);
    }
    if (this.#shown.size === 0) for (const b of this.#known) changed.add(b);
    for (const b of this.#known) if (!this.#shown.has(b) && !shown.has(b)) changed.add(b);
    this.#shown = shown;

    const budgets = await this.#store.listBudgets();
    queries++;
    const budgetsKey = budgetFingerprint(budgets);
    // A budget changed: every bottle's bars at once.
    const full = budgetsKey !== this.#budgetsKey;
    if (full) {
      this.#budgetsKey = budgetsKey;
      for (const b of this.#allBottles()) changed.add(b);
    } else {
      const stale = [...this.#allBottles()]
        .filter((b) => !changed.has(b) && now - (this.#readAt.get(b) ?? 0) >= BUDGET_REREAD_MS)
        .sort((a, b) => (this.#readAt.get(a) ?? 0) - (this.#readAt.get(b) ?? 0));
      for (const b of stale.slice(0, REREAD_PER_REFRESH)) changed.add(b);
    }
    // A windowed cutoff lifts by itself when its window resets.
    for (const [b, c] of this.#cutoffs) {
      if (c?.until !== undefined && c.until <= now) changed.add(b);
    }
    for (const bottle of changed) {
      this.#readAt.set(bottle, now);
      this.#cutoffs.set(bottle, await this.#store.cutoffState(bottle));
      queries++;
      const bars: BudgetBar[] = [];
      for (const subject of this.#subjects.get(bottle) ?? []) {
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

  #allBottles(): Set<string> {
    return new Set([...this.#shown.keys(), ...this.#known]);
  }

  #rows(now: number, live: Map<string, number> | undefined): BottleRow[] {
    const minute = Math.floor(now / 60_000);
    const burns = new Map<string, number[]>();
    const lastActive = new Map<string, number>();
    for (const [m, per] of this.#minutes) {
      const idx = BURN_MINUTES - 1 - (minute - m);
      if (idx < 0 || idx >= BURN_MINUTES) continue;
      for (const [bottle, v] of per) {
        let arr = burns.get(bottle);
        if (arr === undefined) {
          arr = new Array<number>(BURN_MINUTES).fill(0);
          burns.set(bottle, arr);
        }
        arr[idx] = (arr[idx] ?? 0) + v.tokens;
        if (v.events > 0) lastActive.set(bottle, Math.max(lastActive.get(bottle) ?? 0, m));
      }
    }
    const rows: BottleRow[] = [];
    for (const bottle of this.#allBottles()) {
      const t = this.#shown.get(bottle) ?? emptyTotals();
      const subjects = [...(this.#subjects.get(bottle) ?? [])];
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
        agents: [...new Set(subjects.map((s) => s.split(SUBJECT_SEP)[0] ?? ""))].sort(),
        providers: [...new Set(subjects.map((s) => s.split(SUBJECT_SEP)[1] ?? ""))].sort(),
        state: stateOf(cutoff, live?.get(bottle) ?? 0, lastActive.get(bottle), minute),
        sessions: live === undefined ? undefined : (live.get(bottle) ?? 0),
        events: t.events,
        tokens: t.tokens,
        costUsd: t.costUsd,
        unpricedEvents: t.unpricedEvents,
        usageMissingEvents: t.usageMissingEvents,
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

/** `lastMinute`: the latest minute with usage; active when within ACTIVE_MINUTES of `minute`. */
function stateOf(
  cutoff: CutoffState | undefined,
  sessions: number,
  lastMinute: number | undefined,
  minute: number,
): BottleState {
  if (cutoff !== undefined) {
    if (cutoff.policy === "freeze") return "frozen";
    if (cutoff.policy === "kill") return "killed";
    return "cut off";
  }
  if (sessions > 0) return "running";
  return lastMinute !== undefined && minute - lastMinute <= ACTIVE_MINUTES ? "active" : "idle";
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
