/** Reads the red-team corpus (test/redteam/corpus.txt) and its two policies. */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { Decision } from "../../src/decision.ts";

export interface CorpusEntry {
  expected: Decision;
  kind: string;
  context: string;
  script: string;
  /** 1-based line of the entry's header in corpus.txt. */
  line: number;
}

export const REDTEAM_DIR = join(import.meta.dirname, ".");

export function readCorpus(): CorpusEntry[] {
  const text = readFileSync(join(REDTEAM_DIR, "corpus.txt"), "utf8");
  const lines = text.split("\n");
  const entries: CorpusEntry[] = [];
  let current: CorpusEntry | undefined;
  const body: string[] = [];
  const flush = () => {
    if (current) entries.push({ ...current, script: body.join("\n") });
    body.length = 0;
  };
  lines.forEach((line, i) => {
    const m = /^### (allow|prompt|forbidden) (\S+) (\S+)$/.exec(line);
    if (m) {
      flush();
      current = {
        expected: m[1] as Decision,
        kind: m[2] as string,
        context: m[3] as string,
        script: "",
        line: i + 1,
      };
      return;
    }
    if (current) body.push(line);
  });
  // the file ends with a newline: the last entry's trailing empty line is not part of it
  if (body.at(-1) === "") body.pop();
  flush();
  return entries;
}
