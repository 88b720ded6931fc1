import { BudgetStoreError } from "./errors.ts";
import type { BudgetScope, BudgetSource, CutoffPolicy } from "./types.ts";

export const POLICIES: readonly CutoffPolicy[] = ["cutoff", "freeze", "kill"];
export const SCOPES: readonly BudgetScope[] = ["agent", "bottle", "global", "ceiling"];
export const SOURCES: readonly BudgetSource[] = [
  "settings",
  "config",
  "manifest",
  "operator",
  "flag",
];

const MAX_NAME = 256;

function invalid(where: string, message: string, hint: string): BudgetStoreError {
  return new BudgetStoreError("E_INVALID_INPUT", `${where}: ${message}`, { hint });
}

/** A bottle, agent, provider or key name: a non-empty string without control characters. */
export function name(value: unknown, where: string): string {
  if (typeof value !== "string" || value.length === 0 || value.length > MAX_NAME) {
    throw invalid(
      where,
      "must be a non-empty string",
      `pass a name of 1 to ${MAX_NAME} characters`,
    );
  }
  if (/[\u0000-\u001f\u007f]/.test(value)) {
    throw invalid(where, "contains control characters", "use printable characters only");
  }
  return value;
}

export function count(value: unknown, where: string): number {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 0) {
    throw invalid(
      where,
      `must be a non-negative integer, got ${String(value)}`,
      "pass a whole number of tokens >= 0",
    );
  }
  return value;
}

export function optionalCount(value: unknown, where: string): number | undefined {
  return value === undefined ? undefined : count(value, where);
}

export function amount(value: unknown, where: string): number {
  if (typeof value !== "number" || !Number.isFinite(value) || value < 0) {
    throw invalid(
      where,
      `must be a finite number >= 0, got ${String(value)}`,
      "pass an amount in USD >= 0",
    );
  }
  return value;
}

export function optionalAmount(value: unknown, where: string): number | undefined {
  return value === undefined ? undefined : amount(value, where);
}

/** `value` when it is one of `allowed`, else an error naming them ("use "a", "b" or "c"). */
function oneOf<T extends string>(
  value: unknown,
  allowed: readonly T[],
  where: string,
  what: string,
): T {
  if (!allowed.includes(value as T)) {
    const quoted = allowed.map((x) => JSON.stringify(x));
    throw invalid(
      where,
      `unknown ${what} ${JSON.stringify(value)}`,
      `use ${quoted.slice(0, -1).join(", ")} or ${quoted[quoted.length - 1]}`,
    );
  }
  return value as T;
}

export function policy(value: unknown, where: string): CutoffPolicy {
  return oneOf(value, POLICIES, where, "cutoff policy");
}

export function scope(value: unknown, where: string): BudgetScope {
  return oneOf(value, SCOPES, where, "scope");
}

export function source(value: unknown, where: string): BudgetSource {
  return oneOf(value, SOURCES, where, "budget source");
}

export function parentList(value: unknown, where: string): string[] {
  if (value === undefined) return [];
  if (!Array.isArray(value))
    throw invalid(where, "must be an array of bottle names", "pass parents nearest first");
  return value.map((p, i) => name(p, `${where}[${i}]`));
}
