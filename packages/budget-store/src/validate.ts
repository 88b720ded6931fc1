import { BudgetStoreError } from "./errors.ts";
import type { BudgetScope, BudgetSource, CutoffPolicy } from "./types.ts";

export const POLICIES: readonly CutoffPolicy[] = ["cutoff", "freeze", "kill"];
export const SCOPES: readonly BudgetScope[] = ["agent", "bottle", "global", "ceiling"];
export const SOURCES: readonly BudgetSource[] = ["settings", "manifest", "flag"];

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

export function policy(value: unknown, where: string): CutoffPolicy {
  if (!POLICIES.includes(value as CutoffPolicy)) {
    throw invalid(
      where,
      `unknown cutoff policy ${JSON.stringify(value)}`,
      'use "cutoff", "freeze" or "kill"',
    );
  }
  return value as CutoffPolicy;
}

export function scope(value: unknown, where: string): BudgetScope {
  if (!SCOPES.includes(value as BudgetScope)) {
    throw invalid(
      where,
      `unknown scope ${JSON.stringify(value)}`,
      'use "agent", "bottle", "global" or "ceiling"',
    );
  }
  return value as BudgetScope;
}

export function source(value: unknown, where: string): BudgetSource {
  if (!SOURCES.includes(value as BudgetSource)) {
    throw invalid(
      where,
      `unknown budget source ${JSON.stringify(value)}`,
      'use "settings", "manifest" or "flag"',
    );
  }
  return value as BudgetSource;
}

export function parentList(value: unknown, where: string): string[] {
  if (value === undefined) return [];
  if (!Array.isArray(value))
    throw invalid(where, "must be an array of bottle names", "pass parents nearest first");
  return value.map((p, i) => name(p, `${where}[${i}]`));
}
