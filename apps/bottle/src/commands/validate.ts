import { validatePaths } from "@bottlekit/manifest";
import type { CliIo } from "../cli.ts";
import { painter } from "../color.ts";
import { type LocationFlags, locations, writeJson } from "../context.ts";
import { renderIssue } from "./issues.ts";

export interface ValidateOptions extends LocationFlags {
  json?: boolean;
}

/**
 * `bottle validate [PATH…]`: checks every manifest (home and project, or the given files and
 * directories) and lists every problem. Exit 0 when valid (warnings allowed), 2 when not.
 */
export async function runValidate(
  paths: readonly string[],
  opts: ValidateOptions,
  io: CliIo,
): Promise<number> {
  const loc = locations(opts, io);
  const result = validatePaths(paths, loc);
  const errors = result.issues.filter((i) => i.severity === "error").length;
  const warnings = result.issues.length - errors;
  const code = result.ok ? 0 : 2;
  if (opts.json) {
    writeJson(io, { ok: result.ok, errors, warnings, files: result.files, issues: result.issues });
    return code;
  }
  const paint = painter(io.stdout, io.env);
  for (const issue of result.issues) io.stdout.write(`${renderIssue(issue, paint)}\n`);
  const errPaint = painter(io.stderr, io.env);
  const summary = `${result.files.length} manifest(s) checked: ${errors} error(s), ${warnings} warning(s)`;
  io.stderr.write(`${result.ok ? errPaint("green", summary) : errPaint("red", summary)}\n`);
  return code;
}
