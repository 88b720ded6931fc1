/** Machine-readable error codes of @bottlekit/bottle. Callers branch on these, never on message text. */
export type BottleErrorCode = "E_INVALID_INPUT" | "E_USAGE" | "E_INTERNAL";

export interface BottleErrorOptions {
  cause?: unknown;
  /** A suggested fix, shown after the message. */
  hint?: string;
}

/** The one error class thrown by @bottlekit/bottle. */
export class BottleError extends Error {
  override readonly name = "BottleError";
  readonly code: BottleErrorCode;
  readonly hint: string | undefined;

  constructor(code: BottleErrorCode, message: string, options: BottleErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.hint = options.hint;
  }
}

/** True when `value` is a BottleError (also across duplicated module copies). */
export function isBottleError(value: unknown): value is BottleError {
  return value instanceof Error && value.name === "BottleError" && "code" in value;
}
