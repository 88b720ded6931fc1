/** Machine-readable error codes of @bottlekit/provider-registry. Callers branch on these, never on message text. */
export type ProviderRegistryErrorCode = "E_INVALID_INPUT" | "E_USAGE" | "E_INTERNAL";

export interface ProviderRegistryErrorOptions {
  cause?: unknown;
  /** A suggested fix, shown after the message. */
  hint?: string;
}

/** The one error class thrown by @bottlekit/provider-registry. */
export class ProviderRegistryError extends Error {
  override readonly name = "ProviderRegistryError";
  readonly code: ProviderRegistryErrorCode;
  readonly hint: string | undefined;

  constructor(
    code: ProviderRegistryErrorCode,
    message: string,
    options: ProviderRegistryErrorOptions = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.hint = options.hint;
  }
}

/** True when `value` is a ProviderRegistryError (also across duplicated module copies). */
export function isProviderRegistryError(value: unknown): value is ProviderRegistryError {
  return value instanceof Error && value.name === "ProviderRegistryError" && "code" in value;
}
