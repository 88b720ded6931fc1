import type { CliIo } from "./cli.ts";

/** Options every manifest command accepts (from the program's global flags). */
export interface LocationFlags {
  home?: string;
  cwd?: string;
}

/** Where manifests are looked up: flag > BOTTLEKIT_HOME > ~/.bottlekit; --cwd > process cwd. */
export function locations(
  flags: LocationFlags,
  io: CliIo,
): { home?: string; cwd?: string; env: NodeJS.ProcessEnv } {
  const loc: { home?: string; cwd?: string; env: NodeJS.ProcessEnv } = { env: io.env };
  if (flags.home !== undefined) loc.home = flags.home;
  if (flags.cwd !== undefined) loc.cwd = flags.cwd;
  return loc;
}

/** Writes one JSON document to stdout. */
export function writeJson(io: CliIo, value: unknown): void {
  io.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}
