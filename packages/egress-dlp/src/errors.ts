/** Machine-readable error codes of @bottlekit/egress-dlp. Callers branch on these, never on message text. */
export type EgressDlpErrorCode = "E_INVALID_INPUT" | "E_USAGE" | "E_INTERNAL";

export interface EgressDlpErrorOptions {
  cause?: unknown;
  /** A suggested fix, shown after the message. */
  hint?: string;
}

/** The one error class thrown by @bottlekit/egress-dlp. */
export class EgressDlpError extends Error {
  override readonly name = "EgressDlpError";
  readonly code: EgressDlpErrorCode;
  readonly hint: string | undefined;

  constructor(code: EgressDlpErrorCode, message: string, options: EgressDlpErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.hint = options.hint;
  }
}

/** True when `value` is a EgressDlpError (also across duplicated module copies). */
export function isEgressDlpError(value: unknown): value is EgressDlpError {
  return value instanceof Error && value.name === "EgressDlpError" && "code" in value;
}
