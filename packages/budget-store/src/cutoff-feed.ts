/**
 * Cutoff subscriptions, shared by both backends: the listeners of one store, each event
 * delivered once per listener (deduplicated by its audit id), a throwing listener isolated from
 * the others. A backend starts its source (LISTEN, or a poll of the audit trail) when the first
 * listener subscribes and stops it when the last one leaves.
 */
import { BudgetStoreError } from "./errors.ts";
import type {
  CutoffEvent,
  CutoffListener,
  CutoffSubscription,
  EnforcementAction,
} from "./types.ts";

/** How many delivered ids are remembered for deduplication (catch-up after a reconnect). */
const REMEMBER = 4096;

export interface FeedSource {
  /** Start delivering events recorded from now on; resolves once that holds. */
  start(): Promise<void>;
  /** Stop (the last listener left, or the store closes). */
  stop(): Promise<void>;
}

export class CutoffFeed {
  readonly #listeners = new Set<{ fn: CutoffListener }>();
  readonly #seen = new Set<number>();
  readonly #source: FeedSource;
  #started: Promise<void> | undefined;
  #maxId = 0;

  constructor(source: FeedSource) {
    this.#source = source;
  }

  /** The highest audit id delivered so far (a catch-up starts after it). */
  get maxId(): number {
    return this.#maxId;
  }

  get active(): boolean {
    return this.#listeners.size > 0;
  }

  subscribe(listener: CutoffListener): CutoffSubscription {
    if (typeof listener !== "function") {
      throw new BudgetStoreError("E_INVALID_INPUT", "onCutoff: listener must be a function", {
        hint: "pass (event) => { ... }",
      });
    }
    const entry = { fn: listener };
    this.#listeners.add(entry);
    if (this.#started === undefined) {
      this.#started = this.#source.start();
      // A failed start is reported through `ready`; the next subscriber tries again.
      this.#started.catch(() => {
        this.#started = undefined;
      });
    }
    const ready = this.#started;
    return {
      ready,
      close: () => {
        if (!this.#listeners.delete(entry) || this.#listeners.size > 0) return;
        const started = this.#started;
        this.#started = undefined;
        void started
          ?.then(() => this.#source.stop())
          .catch(() => {
            // the store is closing or the source never started: nothing to stop
          });
      },
    };
  }

  /** Deliver audit entries (cutoffs and restores; others are ignored), oldest first. */
  deliver(actions: readonly EnforcementAction[]): void {
    for (const a of actions) {
      if (a.action === "reclaim" || this.#seen.has(a.id)) continue;
      this.#seen.add(a.id);
      if (this.#seen.size > REMEMBER) {
        const oldest = this.#seen.values().next().value;
        if (oldest !== undefined) this.#seen.delete(oldest);
      }
      if (a.id > this.#maxId) this.#maxId = a.id;
      const event: CutoffEvent = { ...a, action: a.action };
      for (const l of [...this.#listeners]) {
        try {
          l.fn(event);
        } catch {
          // one listener's failure does not stop the others or the store
        }
      }
    }
  }

  /** The store closes: forget every listener and stop the source. */
  async close(): Promise<void> {
    this.#listeners.clear();
    const started = this.#started;
    this.#started = undefined;
    if (started !== undefined) await started.then(() => this.#source.stop()).catch(() => {});
  }
}
