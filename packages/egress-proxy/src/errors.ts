/** Machine-readable error codes of @bottlekit/egress-proxy. Callers branch on these, never on message text. */
export type EgressProxyErrorCode =
  | "E_INVALID_INPUT"
  | "E_UNKNOWN_SESSION"
  | "E_CREDENTIAL_MISSING"
  | "E_CA"
  | "E_CONTROL"
  | "E_CLOSED"
  | "E_INTERNAL";

export interface EgressProxyErrorOptions {
  cause?: unknown;
  /** A suggested fix, shown after the message. */
  hint?: string;
}

/** The one error class thrown by @bottlekit/egress-proxy. Messages never hold credential values. */
export class EgressProxyError extends Error {
  override readonly name = "EgressProxyError";
  readonly code: EgressProxyErrorCode;
  readonly hint: string | undefined;

  constructor(code: EgressProxyErrorCode, message: string, options: EgressProxyErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.hint = options.hint;
  }
}

/** True when `value` is an EgressProxyError (also across duplicated module copies). */
export function isEgressProxyError(value: unknown): value is EgressProxyError {
  return value instanceof Error && value.name === "EgressProxyError" && "code" in value;
}
