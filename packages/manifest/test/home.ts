import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";

/** A throwaway BOTTLEKIT_HOME plus a project directory, filled from a map of relative paths. */
export interface TempTree {
  root: string;
  home: string;
  cwd: string;
  write(rel: string, text: string): string;
  cleanup(): void;
}

export function tempTree(files: Record<string, string> = {}): TempTree {
  const root = mkdtempSync(join(tmpdir(), "bk-manifest-"));
  const home = join(root, "home");
  const cwd = join(root, "project");
  mkdirSync(home, { recursive: true });
  mkdirSync(cwd, { recursive: true });
  const write = (rel: string, text: string) => {
    const file = join(root, rel);
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, text);
    return file;
  };
  for (const [rel, text] of Object.entries(files)) write(rel, text);
  return { root, home, cwd, write, cleanup: () => rmSync(root, { recursive: true, force: true }) };
}

/** A manifest file: frontmatter lines plus an optional body. */
export function md(frontmatter: string, body = ""): string {
  return `---\n${frontmatter.replace(/^\n/, "")}${frontmatter.endsWith("\n") ? "" : "\n"}---\n${body}`;
}
