/**
 * The work and time budget of one scan. Every decoder and scanning loop charges the characters
 * (or bytes) it visits; the clock is read every CHECK_EVERY units, so the time budget interrupts a
 * stage in the middle instead of between decoding layers. Once exceeded, every stage stops at its
 * next charge and the scan reports a blocking `budget` finding: over budget always blocks.
 */

export type BudgetKind = "time" | "work" | "inflate" | "depth" | "error";

export interface Budget {
  deadline: number;
  exceeded: boolean;
  /** Why the scan stopped (the first limit hit). */
  reason: BudgetKind | undefined;
  /** Units charged so far: characters or bytes visited, plus a fixed cost per decoder call. */
  work: number;
  maxWork: number;
  nextCheck: number;
  /** Bytes produced by decompression so far (all blobs of the scan together). */
  inflated: number;
  maxInflate: number;
  /** Clock, injectable for tests. */
  now: () => number;
}

/** Units between two reads of the clock (a read costs about 30 ns; 64 Ki units about 60 µs of work). */
export const CHECK_EVERY = 1 << 16;

/** Fixed charge for calling a decompressor (zlib stream setup) on one blob. */
export const INFLATE_CALL_COST = 4096;

export function createBudget(
  maxMs: number,
  maxWork: number,
  maxInflate: number,
  now: () => number = () => performance.now(),
): Budget {
  return {
    deadline: now() + maxMs,
    exceeded: false,
    reason: undefined,
    work: 0,
    maxWork,
    nextCheck: Math.min(CHECK_EVERY, maxWork + 1),
    inflated: 0,
    maxInflate,
    now,
  };
}

export function stop(budget: Budget, reason: BudgetKind): void {
  if (!budget.exceeded) {
    budget.exceeded = true;
    budget.reason = reason;
  }
}

/** Charges `units` of work; true when the scan must stop (budget exceeded now or before). */
export function charge(budget: Budget, units: number): boolean {
  budget.work += units;
  // a stopped scan reads the clock no more (each caller returns on the first `true`)
  if (budget.work >= budget.nextCheck && !budget.exceeded) {
    budget.nextCheck = budget.work + CHECK_EVERY;
    if (budget.work > budget.maxWork) stop(budget, "work");
    else if (budget.now() > budget.deadline) stop(budget, "time");
  }
  return budget.exceeded;
}
