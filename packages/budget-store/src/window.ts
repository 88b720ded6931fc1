import { BudgetStoreError } from "./errors.ts";
import type { BudgetWindow } from "./types.ts";

const DAY_MS = 86_400_000;

/** Lowest day number, used as the start of the `none` window. */
export const ALL_TIME_DAY = -2_147_483_648;

const ROLLING = /^([1-9][0-9]{0,3})d$/;

/** True when `value` is a valid window: none, daily, weekly, monthly or `<1..9999>d`. */
export function isBudgetWindow(value: unknown): value is BudgetWindow {
  return (
    value === "none" ||
    value === "daily" ||
    value === "weekly" ||
    value === "monthly" ||
    (typeof value === "string" && ROLLING.test(value))
  );
}

export function assertBudgetWindow(value: unknown, where: string): BudgetWindow {
  if (!isBudgetWindow(value)) {
    throw new BudgetStoreError(
      "E_INVALID_INPUT",
      `${where}: window ${JSON.stringify(value)} is not valid`,
      { hint: 'use "none", "daily", "weekly", "monthly" or a rolling "<N>d" such as "7d"' },
    );
  }
  return value;
}

/** UTC day number (days since 1970-01-01) of an epoch-millisecond instant. */
export function dayOf(ms: number): number {
  return Math.floor(ms / DAY_MS);
}

/**
 * First UTC day (inclusive) of the window containing `now`. O(1).
 * - daily: today; weekly: the Monday of the ISO week; monthly: the 1st of the month;
 * - `<N>d`: today and the N-1 days before it; none: all time.
 */
export function windowStartDay(window: BudgetWindow, now: number): number {
  const today = dayOf(now);
  switch (window) {
    case "none":
      return ALL_TIME_DAY;
    case "daily":
      return today;
    case "weekly": {
      const dow = new Date(today * DAY_MS).getUTCDay(); // 0 = Sunday
      return today - ((dow + 6) % 7);
    }
    case "monthly": {
      const d = new Date(today * DAY_MS);
      return dayOf(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1));
    }
    default: {
      const m = ROLLING.exec(window);
      if (m === null) throw new BudgetStoreError("E_INTERNAL", `unknown window ${window}`);
      return today - (Number(m[1]) - 1);
    }
  }
}

/**
 * First instant (epoch ms) at which a spent budget of this window can have room again, or
 * undefined for `none`. Calendar windows: the next window start. Rolling windows: the next UTC
 * midnight, when the oldest day leaves the window.
 */
export function windowResetAt(window: BudgetWindow, now: number): number | undefined {
  const today = dayOf(now);
  switch (window) {
    case "none":
      return undefined;
    case "weekly":
      return (windowStartDay("weekly", now) + 7) * DAY_MS;
    case "monthly": {
      const d = new Date(today * DAY_MS);
      return Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1);
    }
    default:
      return (today + 1) * DAY_MS;
  }
}
