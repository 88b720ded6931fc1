/** Machine-readable error codes of @bottlekit/provider-registry. Callers branch on these, never on message text. */
export type ProviderRegistryErrorCode =
  /** Bad argument to a library function (wrong type, empty model string). */
  | "E_INVALID_INPUT"
  /** The config failed validation; `details` lists `"key.path: message"` entries. */
  | "E_INVALID_CONFIG"
  /** No resolution step matched the model; `suggestions` carries "did you mean" candidates. */
  | "E_UNKNOWN_MODEL"
  /** A `provider/` prefix that is neither built in nor configured. */
  | "E_UNKNOWN_PROVIDER"
  /** The provider has no default base URL and none was configured (Azure OpenAI). */
  | "E_BASE_URL_REQUIRED"
  /** `model_aliases` loop back on themselves. */
  | "E_ALIAS_CYCLE"
  /** The provider does not speak the requested wire API. */
  | "E_UNSUPPORTED_API"
  /** A model override file could not be read or parsed. */
  | "E_OVERRIDES"
  | "E_USAGE"
  | "E_INTERNAL";

export interface ProviderRegistryErrorOptions {
  cause?: unknown;
  /** A suggested fix, shown after the message. */
  hint?: string;
  /** "Did you mean" candidates, best first. */
  suggestions?: readonly string[];
  /** `"key.path: message"` entries (config validation). */
  details?: readonly string[];
}

/** The one error class thrown by @bottlekit/provider-registry. */
export class ProviderRegistryError extends Error {
  override readonly name = "ProviderRegistryError";
  readonly code: ProviderRegistryErrorCode;
  readonly hint: string | undefined;
  readonly suggestions: readonly string[];
  readonly details: readonly string[];

  constructor(
    code: ProviderRegistryErrorCode,
    message: string,
    options: ProviderRegistryErrorOptions = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.hint = options.hint;
    this.suggestions = options.suggestions ?? [];
    this.details = options.details ?? [];
  }
}

/** True when `value` is a ProviderRegistryError (also across duplicated module copies). */
export function isProviderRegistryError(value: unknown): value is ProviderRegistryError {
  return value instanceof Error && value.name === "ProviderRegistryError" && "code" in value;
}
