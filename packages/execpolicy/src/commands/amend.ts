import { amend } from "../amend.ts";
import type { CliIo } from "../cli.ts";
import type { Decision } from "../decision.ts";

export interface AmendFlags {
  scope: "project" | "user";
  decision: Decision;
  projectDir?: string;
}

/** `execpolicy amend -- PREFIX…`: appends one rule line; prints the file and line on stderr. */
export async function amendCommandAction(
  prefix: string[],
  flags: AmendFlags,
  io: CliIo,
): Promise<number> {
  const result = await amend(prefix, flags.decision, {
    scope: flags.scope,
    projectDir: flags.projectDir ?? io.cwd ?? process.cwd(),
    home: io.env.BOTTLEKIT_HOME,
  });
  io.stderr.write(
    result.written
      ? `added to ${result.file}: ${result.line}\n`
      : `already in ${result.file}: ${result.line}\n`,
  );
  return 0;
}
