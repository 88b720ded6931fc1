import { CodedError, type CodedErrorOptions } from "@bottlekit/diagnostics";

/** Machine-readable error codes of @bottlekit/egress-proxy. Callers branch on these, never on message text. */
export type EgressProxyErrorCode =
  | "E_INVALID_INPUT"
  | "E_UNKNOWN_SESSION"
  | "E_UNKNOWN_SERVICE"
  | "E_CREDENTIAL_MISSING"
  | "E_CA"
  | "E_CONTROL"
  | "E_CLOSED"
  | "E_INTERNAL";

export type EgressProxyErrorOptions = CodedErrorOptions;

/**
 * The one error class thrown by @bottlekit/egress-proxy (the shared `CodedError` shape, so
 * `renderCliError` shows message, hint and exit code). Messages never hold credential values.
 */
export class EgressProxyError extends CodedError<EgressProxyErrorCode> {
  override readonly name = "EgressProxyError";
}

/** True when `value` is an EgressProxyError (also across duplicated module copies). */
export function isEgressProxyError(value: unknown): value is EgressProxyError {
  return value instanceof Error && value.name === "EgressProxyError" && "code" in value;
}
