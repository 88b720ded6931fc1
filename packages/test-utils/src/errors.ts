/** Machine-readable error codes of @bottlekit/test-utils. Callers branch on these, never on message text. */
export type TestUtilsErrorCode = "E_INVALID_INPUT" | "E_USAGE" | "E_INTERNAL";

export interface TestUtilsErrorOptions {
  cause?: unknown;
  /** A suggested fix, shown after the message. */
  hint?: string;
}

/** The one error class thrown by @bottlekit/test-utils. */
export class TestUtilsError extends Error {
  override readonly name = "TestUtilsError";
  readonly code: TestUtilsErrorCode;
  readonly hint: string | undefined;

  constructor(code: TestUtilsErrorCode, message: string, options: TestUtilsErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.hint = options.hint;
  }
}

/** True when `value` is a TestUtilsError (also across duplicated module copies). */
export function isTestUtilsError(value: unknown): value is TestUtilsError {
  return value instanceof Error && value.name === "TestUtilsError" && "code" in value;
}
