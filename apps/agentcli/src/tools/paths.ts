/**
 * Workspace confinement for the file tools. Every path is resolved to its real path (symlinks
 * followed, including in parent directories) and must stay inside the workspace's real root.
 * A path that does not exist yet is checked through its nearest existing ancestor.
 */
import { lstat, realpath } from "node:fs/promises";
import { basename, dirname, isAbsolute, join, relative, resolve, sep } from "node:path";

export class PathRefused extends Error {
  readonly code: "PATH_ESCAPE" | "PROTECTED" | "BAD_PATH";
  constructor(code: PathRefused["code"], message: string) {
    super(message);
    this.code = code;
  }
}

/** Paths inside the workspace the agent may read but never write: they would change what runs outside the tool gate. */
const PROTECTED = [".git/hooks", ".git/config", ".bottlekit"];

export function inside(root: string, target: string): boolean {
  return target === root || target.startsWith(root.endsWith(sep) ? root : root + sep);
}

export interface ResolvedPath {
  /** The real absolute path (for a missing file: real parent + remaining names). */
  real: string;
  /** Relative to the workspace root, `/`-separated, for messages. */
  rel: string;
  exists: boolean;
}

/** Resolves `p` (relative to the root, or absolute inside it) or throws PathRefused. */
export async function resolveInWorkspace(
  root: string,
  p: unknown,
  mode: "read" | "write",
): Promise<ResolvedPath> {
  if (typeof p !== "string" || p === "" || p.includes("\0")) {
    throw new PathRefused("BAD_PATH", "path must be a non-empty string");
  }
  const lexical = isAbsolute(p) ? resolve(p) : resolve(root, p);
  if (!inside(root, lexical)) {
    throw new PathRefused("PATH_ESCAPE", `${p}: outside the workspace`);
  }
  // Walk up to the nearest existing ancestor, then re-attach the missing names.
  const missing: string[] = [];
  let cur = lexical;
  let real: string | undefined;
  for (;;) {
    try {
      real = await realpath(cur);
      break;
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code !== "ENOENT" && code !== "ENOTDIR") throw error;
      // A dangling symlink is not "missing": writing through it would create its target.
      const st = await lstat(cur).catch(() => undefined);
      if (st?.isSymbolicLink()) {
        throw new PathRefused("PATH_ESCAPE", `${p}: a symbolic link whose target does not exist`);
      }
      const parent = dirname(cur);
      if (parent === cur) throw error;
      missing.unshift(basename(cur));
      cur = parent;
    }
  }
  const full = missing.length > 0 ? join(real, ...missing) : real;
  if (!inside(root, full)) {
    throw new PathRefused("PATH_ESCAPE", `${p}: resolves outside the workspace (symbolic link)`);
  }
  const rel = relative(root, full).split(sep).join("/");
  if (mode === "write") {
    for (const prot of PROTECTED) {
      if (rel === prot || rel.startsWith(`${prot}/`)) {
        throw new PathRefused("PROTECTED", `${rel}: protected (${prot} is never written by tools)`);
      }
    }
  }
  return { real: full, rel: rel === "" ? "." : rel, exists: missing.length === 0 };
}
