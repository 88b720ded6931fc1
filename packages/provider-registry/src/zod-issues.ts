import { didYouMean, formatKeyPath, suggest } from "@bottlekit/diagnostics";
import type { z } from "zod";

/** `model_providers[0].base_url`, with odd record keys quoted: `models["a.b"]`. */
export const formatPath = formatKeyPath;

/**
 * zod issues as `"key.path: message"` lines. Unknown keys get a "did you mean" against the keys
 * `keysAt(path)` reports for that object.
 */
export function formatIssues(
  issues: readonly z.core.$ZodIssue[],
  keysAt?: (path: readonly PropertyKey[]) => readonly string[] | undefined,
): string[] {
  const out: string[] = [];
  for (const issue of issues) {
    if (issue.code === "unrecognized_keys") {
      const known = keysAt?.(issue.path) ?? [];
      for (const key of issue.keys) {
        const hint = didYouMean(suggest(key, known, 1));
        out.push(
          `${formatPath([...issue.path, key])}: unknown key${hint ? `, ${hint}` : ""}${
            known.length ? ` (allowed: ${known.join(", ")})` : ""
          }`,
        );
      }
      continue;
    }
    out.push(`${formatPath(issue.path)}: ${issue.message}`);
  }
  return out;
}
