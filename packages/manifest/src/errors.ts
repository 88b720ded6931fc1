/** Machine-readable error codes of @bottlekit/manifest. Callers branch on these, never on message text. */
export type ManifestErrorCode = "E_INVALID_INPUT" | "E_USAGE" | "E_INTERNAL";

export interface ManifestErrorOptions {
  cause?: unknown;
  /** A suggested fix, shown after the message. */
  hint?: string;
}

/** The one error class thrown by @bottlekit/manifest. */
export class ManifestError extends Error {
  override readonly name = "ManifestError";
  readonly code: ManifestErrorCode;
  readonly hint: string | undefined;

  constructor(code: ManifestErrorCode, message: string, options: ManifestErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.hint = options.hint;
  }
}

/** True when `value` is a ManifestError (also across duplicated module copies). */
export function isManifestError(value: unknown): value is ManifestError {
  return value instanceof Error && value.name === "ManifestError" && "code" in value;
}
