import type { SourceLocation } from "./errors.ts";

/**
 * A key path as users write it: `model_providers[0].base_url`; keys that are not identifiers are
 * quoted (`models["gpt-4.1"]`). The empty path is `(root)`.
 */
export function formatKeyPath(path: readonly PropertyKey[]): string {
  let out = "";
  for (const seg of path) {
    if (typeof seg === "number") out += `[${seg}]`;
    else {
      const s = String(seg);
      if (/^[A-Za-z_][\w-]*$/.test(s)) out += out ? `.${s}` : s;
      else out += `[${JSON.stringify(s)}]`;
    }
  }
  return out || "(root)";
}

/** `file:line:col`, `file:line`, or `file` — whatever is known. */
export function formatLocation(file: string, line?: number, col?: number): string {
  if (line === undefined) return file;
  return col === undefined ? `${file}:${line}` : `${file}:${line}:${col}`;
}

/** The same, from a {@link SourceLocation}; "" when it names no file. */
export function formatSourceLocation(loc: SourceLocation): string {
  return loc.file === undefined ? "" : formatLocation(loc.file, loc.line, loc.col);
}

/**
 * 1-based line and column of a UTF-16 `offset` in `text` (offsets past the end clamp to it).
 * Lines end at `\n`; a `\r\n` pair counts as one ending. Linear in `offset`.
 */
export function lineColAt(text: string, offset: number): { line: number; col: number } {
  const end = Math.max(0, Math.min(offset, text.length));
  let line = 1;
  let lineStart = 0;
  for (let i = text.indexOf("\n"); i !== -1 && i < end; i = text.indexOf("\n", i + 1)) {
    line++;
    lineStart = i + 1;
  }
  return { line, col: end - lineStart + 1 };
}
