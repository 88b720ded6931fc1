/**
 * Unified diffs: parse (`--- a/x`, `+++ b/x`, `@@ -l,c +l,c @@` hunks, `/dev/null` for created and
 * deleted files) and apply to text. A hunk is applied at its stated line, else at the nearest
 * offset where its context and removed lines match exactly; no fuzz on content.
 * Linear in the diff size per file, plus the offset search (bounded by the file length per hunk).
 */
export interface Hunk {
  oldStart: number;
  oldLines: number;
  newStart: number;
  newLines: number;
  /** Lines with their marker: ' ', '-', '+'. */
  lines: string[];
}

export interface FilePatch {
  /** Path before (undefined for a created file). */
  oldPath: string | undefined;
  /** Path after (undefined for a deleted file). */
  newPath: string | undefined;
  hunks: Hunk[];
}

export class PatchError extends Error {}

function stripPrefix(raw: string): string | undefined {
  let p = raw.split("\t")[0]?.trim() ?? "";
  if (p === "/dev/null") return undefined;
  if (p.startsWith('"') && p.endsWith('"')) p = p.slice(1, -1);
  if (p.startsWith("a/") || p.startsWith("b/")) p = p.slice(2);
  return p;
}

const HUNK_RE = /^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@/;

/** Parses a unified diff. Throws PatchError with the 1-based line of the problem. */
export function parseUnifiedDiff(text: string): FilePatch[] {
  const lines = text.split("\n");
  if (lines.at(-1) === "") lines.pop();
  const files: FilePatch[] = [];
  let i = 0;
  while (i < lines.length) {
    const line = lines[i] as string;
    if (!line.startsWith("--- ")) {
      i++;
      continue;
    }
    const next = lines[i + 1];
    if (next === undefined || !next.startsWith("+++ ")) {
      throw new PatchError(`line ${i + 2}: expected "+++ path" after "--- path"`);
    }
    const file: FilePatch = {
      oldPath: stripPrefix(line.slice(4)),
      newPath: stripPrefix(next.slice(4)),
      hunks: [],
    };
    if (file.oldPath === undefined && file.newPath === undefined) {
      throw new PatchError(`line ${i + 1}: both sides are /dev/null`);
    }
    i += 2;
    while (i < lines.length && (lines[i] as string).startsWith("@@")) {
      const m = HUNK_RE.exec(lines[i] as string);
      if (m === null) throw new PatchError(`line ${i + 1}: malformed hunk header`);
      const hunk: Hunk = {
        oldStart: Number(m[1]),
        oldLines: m[2] === undefined ? 1 : Number(m[2]),
        newStart: Number(m[3]),
        newLines: m[4] === undefined ? 1 : Number(m[4]),
        lines: [],
      };
      i++;
      let oldSeen = 0;
      let newSeen = 0;
      while (i < lines.length && (oldSeen < hunk.oldLines || newSeen < hunk.newLines)) {
        const l = lines[i] as string;
        if (l.startsWith("\\")) {
          i++;
          continue;
        }
        const mark = l === "" ? " " : l[0];
        if (mark === " ") {
          oldSeen++;
          newSeen++;
        } else if (mark === "-") oldSeen++;
        else if (mark === "+") newSeen++;
        else throw new PatchError(`line ${i + 1}: a hunk line must start with ' ', '-' or '+'`);
        hunk.lines.push(l === "" ? " " : l);
        i++;
      }
      if (oldSeen !== hunk.oldLines || newSeen !== hunk.newLines) {
        throw new PatchError(
          `line ${i}: hunk says -${hunk.oldLines} +${hunk.newLines} lines but has -${oldSeen} +${newSeen}`,
        );
      }
      while (i < lines.length && (lines[i] as string).startsWith("\\")) i++;
      file.hunks.push(hunk);
    }
    if (file.hunks.length === 0) throw new PatchError(`line ${i}: a file patch without hunks`);
    files.push(file);
  }
  if (files.length === 0)
    throw new PatchError('no file patch found (expected "--- a/x" / "+++ b/x")');
  return files;
}

/** Applies one file's hunks to `original` (undefined when the file is created). */
export function applyHunks(original: string | undefined, patch: FilePatch): string {
  const text = original ?? "";
  const endsWithNewline = text === "" || text.endsWith("\n");
  const src = text === "" ? [] : text.replace(/\n$/, "").split("\n");
  const out: string[] = [];
  let pos = 0; // next unread line of src
  let delta = 0;
  for (const [n, h] of patch.hunks.entries()) {
    const before = h.lines.filter((l) => l[0] !== "+").map((l) => l.slice(1));
    const after = h.lines.filter((l) => l[0] !== "-").map((l) => l.slice(1));
    const want = Math.max(0, (h.oldLines === 0 ? h.oldStart : h.oldStart - 1) + delta);
    const at = locate(src, before, want, pos);
    if (at === undefined) {
      throw new PatchError(
        `hunk ${n + 1} (@@ -${h.oldStart},${h.oldLines}) does not match ${patch.oldPath ?? patch.newPath}`,
      );
    }
    for (; pos < at; pos++) out.push(src[pos] as string);
    out.push(...after);
    pos = at + before.length;
    delta = at - (h.oldLines === 0 ? h.oldStart : h.oldStart - 1);
  }
  for (; pos < src.length; pos++) out.push(src[pos] as string);
  if (out.length === 0) return "";
  return out.join("\n") + (endsWithNewline ? "\n" : "");
}

function matchesAt(src: string[], block: string[], at: number): boolean {
  if (at < 0 || at + block.length > src.length) return false;
  for (let k = 0; k < block.length; k++) if (src[at + k] !== block[k]) return false;
  return true;
}

function locate(src: string[], block: string[], want: number, min: number): number | undefined {
  if (matchesAt(src, block, want) && want >= min) return want;
  for (let d = 1; d <= src.length; d++) {
    if (want - d >= min && matchesAt(src, block, want - d)) return want - d;
    if (matchesAt(src, block, want + d) && want + d >= min) return want + d;
    if (want - d < min && want + d > src.length) break;
  }
  return undefined;
}
