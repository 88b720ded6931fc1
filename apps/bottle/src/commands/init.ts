import { existsSync, mkdirSync, renameSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join, resolve } from "node:path";
import type { CliIo } from "../cli.ts";
import { writeJson } from "../context.ts";
import { BottleError } from "../errors.ts";
import { INIT_TEMPLATES } from "../init-templates.ts";

export interface InitOptions {
  home?: string;
  force?: boolean;
  json?: boolean;
}

/** The home `bottle` uses: --home > $BOTTLEKIT_HOME > ~/.bottlekit. */
export function homeFor(flag: string | undefined, env: NodeJS.ProcessEnv): string {
  const fromEnv = env["BOTTLEKIT_HOME"];
  return resolve(
    flag ?? (fromEnv !== undefined && fromEnv !== "" ? fromEnv : join(homedir(), ".bottlekit")),
  );
}

/**
 * `bottle init`: writes a starter home (settings, a bottle, an agent, an exec policy), each file
 * commented. Existing files are never overwritten without --force, and nothing is written when
 * any would be: the check comes first, then each file is written to a temporary name and renamed.
 */
export async function runInit(opts: InitOptions, io: CliIo): Promise<number> {
  const home = homeFor(opts.home, io.env);
  const targets = INIT_TEMPLATES.map((t) => ({ ...t, full: join(home, t.path) }));
  const existing = targets.filter((t) => existsSync(t.full)).map((t) => t.path);
  if (existing.length > 0 && !opts.force) {
    throw new BottleError(
      "E_INVALID_INPUT",
      `${home} already has ${existing.join(", ")}; nothing was written`,
      { hint: "pass --force to overwrite them, or --home DIR to start another home" },
    );
  }
  for (const t of targets) {
    mkdirSync(dirname(t.full), { recursive: true });
    const tmp = `${t.full}.${process.pid}.tmp`;
    writeFileSync(tmp, t.text, { mode: 0o644 });
    renameSync(tmp, t.full);
  }
  mkdirSync(join(home, "state"), { recursive: true, mode: 0o700 });
  const files = targets.map((t) => t.full);
  if (opts.json) {
    writeJson(io, { home, files, overwritten: existing });
    return 0;
  }
  for (const f of files) io.stdout.write(`created ${f}\n`);
  io.stderr.write(
    `\nNext: \`bottle validate${opts.home ? ` --home ${opts.home}` : ""}\` checks the home, ` +
      `\`bottle explain coder\` shows what the agent may reach, and \`bottle run coder\` runs it bottled.\n`,
  );
  return 0;
}
