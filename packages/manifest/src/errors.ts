/** Machine-readable error codes of @bottlekit/manifest. Callers branch on these, never on message text. */
export type ManifestErrorCode =
  | "E_INVALID_INPUT"
  | "E_USAGE"
  | "E_INTERNAL"
  /** The file could not be read. */
  | "E_READ"
  /** The file has no `---` frontmatter block, or it is not closed. */
  | "E_FRONTMATTER"
  /** The frontmatter is not valid YAML. */
  | "E_YAML"
  /** The frontmatter does not match the schema (wrong type, bad value, missing key). */
  | "E_SCHEMA"
  /** A key the schema does not know. */
  | "E_UNKNOWN_KEY"
  /** A key bot-bottle had that bottlekit removed on purpose. */
  | "E_REMOVED_KEY"
  /** A file or reference name that does not match `^[a-z][a-z0-9-]*$`. */
  | "E_NAME"
  /** No agent or bottle with that name. */
  | "E_NOT_FOUND"
  /** `extends` forms a cycle or names the bottle itself. */
  | "E_EXTENDS_CYCLE"
  /** `extends` or an agent's `bottle` names a bottle that does not exist. */
  | "E_EXTENDS_MISSING"
  /** A host variable needed at launch is not set. */
  | "E_ENV_MISSING"
  /** Warning: a project tried to ship bottles. */
  | "W_PROJECT_BOTTLES"
  /** Warning: a key that is accepted and ignored. */
  | "W_IGNORED_KEY"
  /** Warning: a project agent shadows a home agent of the same name. */
  | "W_SHADOWED"
  /** Warning: a file in a manifest directory whose name is not a valid manifest name. */
  | "W_BAD_FILE_NAME";

/** One problem in one manifest file, with its location and key path. */
export interface ManifestIssue {
  readonly code: ManifestErrorCode;
  readonly severity: "error" | "warning";
  /** The file the problem is in (absolute path as given to the loader). */
  readonly file: string;
  /** 1-based line in the file. */
  readonly line: number;
  /** 1-based column in the file. */
  readonly col: number;
  /** Key path in the frontmatter, like `egress.routes[0].host`; empty for the whole file. */
  readonly path: string;
  readonly message: string;
  /** How to fix it. */
  readonly hint?: string;
}

export interface ManifestErrorOptions {
  cause?: unknown;
  /** A suggested fix, shown after the message. */
  hint?: string;
  /** Every problem found, each with file, line:col and key path. */
  issues?: readonly ManifestIssue[];
}

/** The one error class thrown by @bottlekit/manifest. */
export class ManifestError extends Error {
  override readonly name = "ManifestError";
  readonly code: ManifestErrorCode;
  readonly hint: string | undefined;
  readonly issues: readonly ManifestIssue[];

  constructor(code: ManifestErrorCode, message: string, options: ManifestErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.hint = options.hint;
    this.issues = options.issues ?? [];
  }
}

/** True when `value` is a ManifestError (also across duplicated module copies). */
export function isManifestError(value: unknown): value is ManifestError {
  return value instanceof Error && value.name === "ManifestError" && "code" in value;
}

/** Renders an issue as `file:line:col: path: message` with the hint on the next line. */
export function formatIssue(issue: ManifestIssue): string {
  const where = `${issue.file}:${issue.line}:${issue.col}`;
  const kind = issue.severity === "warning" ? "warning: " : "";
  const path = issue.path === "" ? "" : `${issue.path}: `;
  const hint = issue.hint === undefined ? "" : `\n  hint: ${issue.hint}`;
  return `${where}: ${kind}${path}${issue.message}${hint}`;
}

/** Builds a ManifestError from one or more issues; the message lists all of them. */
export function errorFromIssues(issues: readonly ManifestIssue[], context?: string): ManifestError {
  const errors = issues.filter((i) => i.severity === "error");
  const first = errors[0] ?? issues[0];
  const code = first?.code ?? "E_INTERNAL";
  const head = context === undefined ? "" : `${context}\n`;
  const body = (errors.length > 0 ? errors : issues).map(formatIssue).join("\n");
  return new ManifestError(code, `${head}${body}`, { issues, hint: first?.hint });
}
