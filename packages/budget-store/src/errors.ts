import { CodedError } from "@bottlekit/diagnostics";

/** Machine-readable error codes of @bottlekit/budget-store. Callers branch on these, never on message text. */
export type BudgetStoreErrorCode =
  | "E_INVALID_INPUT"
  | "E_USAGE"
  | "E_INTERNAL"
  /** settings.yml cannot be read, parsed or validated. */
  | "E_SETTINGS"
  /** The store URL is not `sqlite:<path>`, `sqlite::memory:` or `postgres://host/db`. */
  | "E_STORE_URL"
  /** The database cannot be opened or migrated. */
  | "E_STORE_OPEN"
  /** The database was written by a newer bottlekit (unknown schema version). */
  | "E_SCHEMA_VERSION"
  /** settle/release of a reservation id that does not exist (settled, released or swept). */
  | "E_UNKNOWN_RESERVATION"
  /** The database stayed locked by other writers for longer than the busy budget. */
  | "E_STORE_BUSY"
  /** The store was closed. */
  | "E_CLOSED"
  /** copyStore: the target is not empty, or the copy's totals do not match (nothing written). */
  | "E_STORE_COPY";

export interface BudgetStoreErrorOptions {
  cause?: unknown;
  /** A suggested fix, shown after the message. */
  hint?: string;
}

/** The one error class thrown by @bottlekit/budget-store (a diagnostics CodedError). */
export class BudgetStoreError extends CodedError<BudgetStoreErrorCode> {
  override readonly name = "BudgetStoreError";
}

/** True when `value` is a BudgetStoreError (also across duplicated module copies). */
export function isBudgetStoreError(value: unknown): value is BudgetStoreError {
  return value instanceof Error && value.name === "BudgetStoreError" && "code" in value;
}
