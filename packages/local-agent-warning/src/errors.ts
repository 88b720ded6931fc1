/** Machine-readable error codes of @bottlekit/local-agent-warning. Callers branch on these, never on message text. */
export type LocalAgentWarningErrorCode =
  | "E_INVALID_INPUT"
  | "E_USAGE"
  | "E_INTERNAL"
  | "E_ACK_WRITE"
  | "E_ACK_LOCKED";

export interface LocalAgentWarningErrorOptions {
  cause?: unknown;
  /** A suggested fix, shown after the message. */
  hint?: string;
}

/** The one error class thrown by @bottlekit/local-agent-warning. */
export class LocalAgentWarningError extends Error {
  override readonly name = "LocalAgentWarningError";
  readonly code: LocalAgentWarningErrorCode;
  readonly hint: string | undefined;

  constructor(
    code: LocalAgentWarningErrorCode,
    message: string,
    options: LocalAgentWarningErrorOptions = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.hint = options.hint;
  }
}

/** True when `value` is a LocalAgentWarningError (also across duplicated module copies). */
export function isLocalAgentWarningError(value: unknown): value is LocalAgentWarningError {
  return value instanceof Error && value.name === "LocalAgentWarningError" && "code" in value;
}
