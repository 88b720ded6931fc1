/**
 * Built-in file tools, confined to the workspace (see paths.ts): read_file, list_dir,
 * search_files, write_file, apply_patch. Each returns a JSON-able result or throws ToolFailure.
 */
import { randomBytes } from "node:crypto";
import {
  lstat,
  mkdir,
  open,
  readdir,
  readFile,
  rename,
  rm,
  stat,
  writeFile,
} from "node:fs/promises";
import { dirname, join, relative, sep } from "node:path";
import { applyHunks, PatchError, parseUnifiedDiff } from "./patch.ts";
import { PathRefused, resolveInWorkspace } from "./paths.ts";

export class ToolFailure extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.code = code;
  }
}

const READ_CAP = 256 * 1024;
const LIST_CAP = 1000;
const SEARCH_CAP = 200;
const SEARCH_FILE_MAX = 1024 * 1024;
/** Files looked at per search: a huge tree without matches stops here instead of running on. */
const SEARCH_FILES_CAP = 20_000;
const SKIP_DIRS = new Set([".git", "node_modules"]);

function str(args: Record<string, unknown>, key: string, required = true): string | undefined {
  const v = args[key];
  if (v === undefined && !required) return undefined;
  if (typeof v !== "string") throw new ToolFailure("BAD_ARGUMENTS", `${key}: expected a string`);
  return v;
}

async function resolvePath(root: string, p: unknown, mode: "read" | "write") {
  try {
    return await resolveInWorkspace(root, p, mode);
  } catch (error) {
    if (error instanceof PathRefused) throw new ToolFailure(error.code, error.message);
    throw error;
  }
}

export async function readFileTool(root: string, args: Record<string, unknown>) {
  const p = await resolvePath(root, args["path"], "read");
  const st = await stat(p.real).catch(() => undefined);
  if (st === undefined) throw new ToolFailure("NOT_FOUND", `${p.rel}: no such file`);
  if (st.isDirectory()) throw new ToolFailure("IS_DIR", `${p.rel}: a directory (use list_dir)`);
  // Only the first READ_CAP bytes are read: a huge file costs no more than a small one.
  const fh = await open(p.real, "r");
  try {
    const buf = Buffer.alloc(Math.min(READ_CAP, st.size));
    const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
    return {
      path: p.rel,
      sizeBytes: st.size,
      content: buf.subarray(0, bytesRead).toString("utf8"),
      truncated: st.size > READ_CAP,
    };
  } finally {
    await fh.close();
  }
}

export async function listDirTool(root: string, args: Record<string, unknown>) {
  const p = await resolvePath(root, args["path"] ?? ".", "read");
  const entries = await readdir(p.real, { withFileTypes: true }).catch(
    (e: NodeJS.ErrnoException) => {
      throw new ToolFailure(e.code === "ENOTDIR" ? "NOT_DIR" : "NOT_FOUND", `${p.rel}: ${e.code}`);
    },
  );
  entries.sort((a, b) => (a.name < b.name ? -1 : 1));
  return {
    path: p.rel,
    entries: entries.slice(0, LIST_CAP).map((e) => ({
      name: e.name,
      type: e.isDirectory()
        ? "dir"
        : e.isSymbolicLink()
          ? "symlink"
          : e.isFile()
            ? "file"
            : "other",
    })),
    truncated: entries.length > LIST_CAP,
  };
}

/** Literal (not regex: no pattern from the model can make it slow) substring search, line by line. */
export async function searchFilesTool(root: string, args: Record<string, unknown>) {
  const query = str(args, "query") as string;
  if (query === "") throw new ToolFailure("BAD_ARGUMENTS", "query: must not be empty");
  const start = await resolvePath(root, args["path"] ?? ".", "read");
  const matches: { path: string; line: number; text: string }[] = [];
  let skipped = 0;
  let seen = 0;
  const walk = async (dir: string): Promise<void> => {
    const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
    entries.sort((a, b) => (a.name < b.name ? -1 : 1));
    for (const e of entries) {
      if (matches.length >= SEARCH_CAP || seen >= SEARCH_FILES_CAP) return;
      const full = join(dir, e.name);
      if (e.isDirectory()) {
        if (!SKIP_DIRS.has(e.name)) await walk(full);
      } else if (e.isFile()) {
        // lstat-based Dirent: symbolic links are never followed
        seen++;
        const st = await lstat(full);
        if (st.size > SEARCH_FILE_MAX) {
          skipped++;
          continue;
        }
        const buf = await readFile(full);
        if (buf.includes(0)) continue;
        const lines = buf.toString("utf8").split("\n");
        for (let i = 0; i < lines.length && matches.length < SEARCH_CAP; i++) {
          const line = lines[i] as string;
          if (line.includes(query)) {
            matches.push({
              path: relative(root, full).split(sep).join("/"),
              line: i + 1,
              text: line.length > 300 ? `${line.slice(0, 300)}…` : line,
            });
          }
        }
      }
    }
  };
  const st = await stat(start.real).catch(() => undefined);
  if (st === undefined) throw new ToolFailure("NOT_FOUND", `${start.rel}: no such path`);
  await walk(start.real);
  return {
    matches,
    truncated: matches.length >= SEARCH_CAP || seen >= SEARCH_FILES_CAP,
    filesSearched: seen,
    skippedLargeFiles: skipped,
  };
}

async function atomicWrite(target: string, content: string): Promise<void> {
  await mkdir(dirname(target), { recursive: true });
  const tmp = `${target}.agentcli-${randomBytes(6).toString("hex")}.tmp`;
  await writeFile(tmp, content, { flag: "wx" });
  try {
    await rename(tmp, target);
  } catch (error) {
    await rm(tmp, { force: true });
    throw error;
  }
}

export async function writeFileTool(root: string, args: Record<string, unknown>) {
  const content = str(args, "content") as string;
  const p = await resolvePath(root, args["path"], "write");
  const st = await stat(p.real).catch(() => undefined);
  if (st?.isDirectory()) throw new ToolFailure("IS_DIR", `${p.rel}: a directory`);
  await atomicWrite(p.real, content);
  return { path: p.rel, bytesWritten: Buffer.byteLength(content), created: !p.exists };
}

/** Applies a unified diff: every file is resolved and patched in memory first; nothing is written unless all apply. */
export async function applyPatchTool(root: string, args: Record<string, unknown>) {
  const text = str(args, "patch") as string;
  let patches: ReturnType<typeof parseUnifiedDiff>;
  try {
    patches = parseUnifiedDiff(text);
  } catch (error) {
    if (error instanceof PatchError) throw new ToolFailure("BAD_PATCH", error.message);
    throw error;
  }
  const plan: { real: string; rel: string; content: string | undefined }[] = [];
  for (const fp of patches) {
    const path = fp.newPath ?? fp.oldPath;
    const p = await resolvePath(root, path, "write");
    let original: string | undefined;
    if (fp.oldPath !== undefined) {
      const src = fp.oldPath === path ? p : await resolvePath(root, fp.oldPath, "write");
      original = await readFile(src.real, "utf8").catch(() => {
        throw new ToolFailure("NOT_FOUND", `${src.rel}: no such file to patch`);
      });
      if (src.real !== p.real) plan.push({ real: src.real, rel: src.rel, content: undefined });
    } else if (p.exists) {
      throw new ToolFailure(
        "DEST_EXISTS",
        `${p.rel}: exists; the patch creates it (--- /dev/null)`,
      );
    }
    let next: string;
    try {
      next = applyHunks(original, fp);
    } catch (error) {
      if (error instanceof PatchError) throw new ToolFailure("PATCH_MISMATCH", error.message);
      throw error;
    }
    plan.push({ real: p.real, rel: p.rel, content: fp.newPath === undefined ? undefined : next });
  }
  for (const step of plan) {
    if (step.content === undefined) await rm(step.real, { force: true });
    else await atomicWrite(step.real, step.content);
  }
  return {
    files: plan.map((s) => ({
      path: s.rel,
      action: s.content === undefined ? "deleted" : "written",
    })),
  };
}
