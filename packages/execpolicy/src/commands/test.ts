import { cacheDirFromEnv } from "../cache-dir.ts";
import type { CliIo } from "../cli.ts";
import { formatDiagnostic } from "../diagnostic.ts";
import { loadPolicyFiles } from "../load.ts";

/**
 * `execpolicy test FILE…`: every match / not_match example must hold.
 * Exit 0 when all hold, 3 when an example fails, 2 when a file does not load.
 */
export async function testCommandAction(
  files: string[],
  io: CliIo,
  json = false,
  cache = true,
): Promise<number> {
  const loaded = await loadPolicyFiles(files, {
    cacheDir: cache ? cacheDirFromEnv(io.env, io.cwd) : undefined,
  });
  const code = loaded.errors.some((d) => d.kind !== "example")
    ? 2
    : loaded.errors.length > 0
      ? 3
      : 0;
  if (json) {
    const doc = {
      ok: code === 0,
      files: loaded.files,
      errors: loaded.errors.map((d) => ({ ...d, text: formatDiagnostic(d) })),
      warnings: loaded.warnings.map(formatDiagnostic),
    };
    io.stdout.write(`${JSON.stringify(doc)}\n`);
    return code;
  }
  for (const d of [...loaded.errors, ...loaded.warnings])
    io.stderr.write(`${formatDiagnostic(d)}\n`);
  for (const f of loaded.files) {
    if (f.ok) io.stdout.write(`ok ${f.path} (${f.rules} rule${f.rules === 1 ? "" : "s"})\n`);
  }
  if (loaded.errors.some((d) => d.kind !== "example")) return 2;
  if (loaded.errors.length > 0) {
    const n = loaded.errors.length;
    io.stderr.write(`execpolicy: ${n} example${n === 1 ? "" : "s"} failed\n`);
    return 3;
  }
  return 0;
}
