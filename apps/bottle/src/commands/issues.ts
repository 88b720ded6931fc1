import type { ManifestIssue } from "@bottlekit/manifest";
import type { CliIo } from "../cli.ts";
import type { Paint } from "../color.ts";

/** Renders one issue as `file:line:col: path: message` plus its hint, coloured by severity. */
export function renderIssue(issue: ManifestIssue, paint: Paint): string {
  const where = paint("bold", `${issue.file}:${issue.line}:${issue.col}`);
  const sev = issue.severity === "warning" ? paint("yellow", "warning") : paint("red", "error");
  const path = issue.path === "" ? "" : `${paint("cyan", issue.path)}: `;
  const hint = issue.hint === undefined ? "" : `\n  ${paint("dim", `hint: ${issue.hint}`)}`;
  return `${where}: ${sev}: ${path}${issue.message}${hint}`;
}

/** Prints warnings to stderr (never stdout, so JSON output stays one document). */
export function printWarnings(io: CliIo, warnings: readonly ManifestIssue[], paint: Paint): void {
  for (const w of warnings) io.stderr.write(`${renderIssue(w, paint)}\n`);
}
