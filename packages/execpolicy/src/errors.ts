/** Machine-readable error codes of @bottlekit/execpolicy. Callers branch on these, never on message text. */
export type ExecPolicyErrorCode =
  | "E_INVALID_INPUT"
  | "E_USAGE"
  | "E_INTERNAL"
  /** An amendment was refused (banned prefix, invalid token). */
  | "E_AMEND_REFUSED"
  /** The amendment file lock could not be taken in time. */
  | "E_LOCKED"
  /** The bash parser could not be loaded. */
  | "E_PARSER";

export interface ExecPolicyErrorOptions {
  cause?: unknown;
  /** A suggested fix, shown after the message. */
  hint?: string;
}

/** The one error class thrown by @bottlekit/execpolicy. */
export class ExecPolicyError extends Error {
  override readonly name = "ExecPolicyError";
  readonly code: ExecPolicyErrorCode;
  readonly hint: string | undefined;

  constructor(code: ExecPolicyErrorCode, message: string, options: ExecPolicyErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.hint = options.hint;
  }
}

/** True when `value` is a ExecPolicyError (also across duplicated module copies). */
export function isExecPolicyError(value: unknown): value is ExecPolicyError {
  return value instanceof Error && value.name === "ExecPolicyError" && "code" in value;
}
