/** A problem found while loading a policy file, with its location. */
export interface Diagnostic {
  file: string;
  line: number;
  column: number;
  message: string;
  hint?: string | undefined;
  /** `example` when a `match`/`not_match` example does not hold; otherwise the file itself is invalid. */
  kind?: "example" | undefined;
}

/** `file:line:col: message` (and ` (hint: …)` when there is one). */
export function formatDiagnostic(d: Diagnostic): string {
  return `${d.file}:${d.line}:${d.column}: ${d.message}${d.hint ? ` (hint: ${d.hint})` : ""}`;
}
