import { captureIo, createTempHome, type TempHome } from "@bottlekit/test-utils";
import { run } from "../src/cli.ts";

/** Captures stdout and stderr of an in-process `run`. */
export const capture = captureIo;

/** Runs `bottle` in-process against a home; returns the exit code and the captured output. */
export async function bottle(argv: string[], env: NodeJS.ProcessEnv = {}) {
  const c = capture(env);
  const code = await run(argv, c.io);
  return { code, out: c.out(), err: c.err() };
}

export function md(frontmatter: string, body = ""): string {
  return `---\n${frontmatter}\n---\n${body}`;
}

/** A temp home filled with the given files (paths relative to the home). */
export async function homeWith(files: Record<string, string>): Promise<TempHome> {
  const home = await createTempHome();
  for (const [rel, text] of Object.entries(files)) await home.write(rel, text);
  return home;
}
