/** Machine-readable error codes of @bottlekit/gateway. Callers branch on these, never on message text. */
export type GatewayErrorCode =
  | "E_INVALID_INPUT"
  | "E_USAGE"
  | "E_INTERNAL"
  /** The config file is unreadable or invalid (exit 2). */
  | "E_CONFIG"
  /** A policy refuses to start (unacknowledged local agent, public listen without keys) (exit 3). */
  | "E_POLICY"
  /** The store could not be opened or failed. */
  | "E_STORE";

export interface GatewayErrorOptions {
  cause?: unknown;
  /** A suggested fix, shown after the message. */
  hint?: string;
}

/** The one error class thrown by @bottlekit/gateway. */
export class GatewayError extends Error {
  override readonly name = "GatewayError";
  readonly code: GatewayErrorCode;
  readonly hint: string | undefined;

  constructor(code: GatewayErrorCode, message: string, options: GatewayErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.hint = options.hint;
  }
}

/** True when `value` is a GatewayError (also across duplicated module copies). */
export function isGatewayError(value: unknown): value is GatewayError {
  return value instanceof Error && value.name === "GatewayError" && "code" in value;
}
