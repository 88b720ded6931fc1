import { CodedError, type CodedErrorOptions } from "@bottlekit/diagnostics";

/** Machine-readable error codes of @bottlekit/approvals. Callers branch on these, never on text. */
export type ApprovalsErrorCode =
  | "E_INVALID_INPUT"
  | "E_NOT_FOUND"
  | "E_CONFIG"
  | "E_STATE"
  | "E_RATE_LIMITED"
  | "E_UNSUPPORTED"
  | "E_STORE"
  | "E_INTERNAL";

export type ApprovalsErrorOptions = CodedErrorOptions;

/** The one error class of @bottlekit/approvals. Messages never hold credential values. */
export class ApprovalsError extends CodedError<ApprovalsErrorCode> {
  override readonly name = "ApprovalsError";
}

/** True when `value` is an ApprovalsError (also across duplicated module copies). */
export function isApprovalsError(value: unknown): value is ApprovalsError {
  return value instanceof Error && value.name === "ApprovalsError" && "code" in value;
}
