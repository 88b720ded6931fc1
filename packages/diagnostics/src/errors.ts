/** Where a problem is: a file position, a key path inside a document, or both. */
export interface SourceLocation {
  file?: string;
  /** 1-based line. */
  line?: number;
  /** 1-based column. */
  col?: number;
}

export interface CodedErrorOptions {
  cause?: unknown;
  /** A suggested fix, shown on its own line after the message. */
  hint?: string;
}

/**
 * The shape every bottlekit error has: a machine-readable `code` that callers branch on, a
 * human message, an optional `hint` (the fix) and an optional `cause`. Each library keeps its own
 * error class (`ManifestError`, `GatewayError`, …) and may extend this one.
 */
export class CodedError<C extends string = string> extends Error {
  readonly code: C;
  readonly hint: string | undefined;

  constructor(code: C, message: string, options: CodedErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.hint = options.hint;
  }
}

/** The duck type of a coded error: an Error with a string `code` and an optional string `hint`. */
export interface CodedErrorLike {
  name: string;
  message: string;
  code: string;
  hint?: string | undefined;
}

/**
 * True for any error that carries a string `code` — also across duplicated module copies and for
 * errors of libraries that do not extend {@link CodedError}. Node's system errors (`ENOENT`,
 * `EPIPE`, …) are excluded: they are not ours and have no hint.
 */
export function isCodedError(value: unknown): value is CodedErrorLike {
  if (!(value instanceof Error)) return false;
  const code = (value as { code?: unknown }).code;
  if (typeof code !== "string") return false;
  if ("syscall" in value || "errno" in value) return false;
  const hint = (value as { hint?: unknown }).hint;
  return hint === undefined || typeof hint === "string";
}
