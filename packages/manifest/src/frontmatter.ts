import { isMap, isScalar, isSeq, LineCounter, type Node, parseDocument, visit } from "yaml";
import type { ManifestIssue } from "./errors.ts";

/** A key path into the frontmatter: map keys and list indexes. */
export type KeyPath = readonly (string | number)[];

/** Renders a key path as `egress.routes[0].host`; keys that are not identifiers are quoted. */
export function pathToString(path: KeyPath): string {
  let out = "";
  for (const seg of path) {
    if (typeof seg === "number") out += `[${seg}]`;
    else if (/^[A-Za-z_][A-Za-z0-9_-]*$/.test(seg)) out += out === "" ? seg : `.${seg}`;
    else out += `[${JSON.stringify(seg)}]`;
  }
  return out;
}

export interface Position {
  line: number;
  col: number;
}

/** A parsed manifest file: the frontmatter value, the body, and a way to locate key paths. */
export interface ParsedFile {
  readonly file: string;
  /** The frontmatter as plain data (`{}` when empty); undefined when it could not be parsed. */
  readonly data: unknown;
  /** The markdown after the frontmatter. */
  readonly body: string;
  readonly issues: ManifestIssue[];
  /** Where a key path is in the file. `at: "key"` points at the key, otherwise at the value. */
  locate(path: KeyPath, at?: "key" | "value"): Position;
}

/** Largest manifest accepted (characters), so one file cannot stall listing or validation. */
export const MAX_MANIFEST_CHARS = 1024 * 1024;

const OPEN = /^---[ \t]*$/;
const CLOSE = /^(---|\.\.\.)[ \t]*$/;

/**
 * Splits `---` frontmatter from the markdown body and parses it as YAML.
 * Never throws: every problem becomes an issue with a line and column. Linear in the input.
 */
export function parseManifestText(file: string, text: string): ParsedFile {
  const issues: ManifestIssue[] = [];
  if (text.length > MAX_MANIFEST_CHARS) {
    const pos = { line: 1, col: 1 };
    issues.push({
      code: "E_FRONTMATTER",
      severity: "error",
      file,
      ...pos,
      path: "",
      message: `the file has ${text.length} characters; manifests are limited to ${MAX_MANIFEST_CHARS}`,
      hint: "move long notes or prompts out of the manifest, or split it",
    });
    return { file, data: undefined, body: "", issues, locate: () => pos };
  }
  const src = text.startsWith("\uFEFF") ? text.slice(1) : text;
  const lines = src.split(/\r?\n/);
  const top = (): Position => ({ line: 1, col: 1 });
  const fail = (code: ManifestIssue["code"], message: string, hint: string, pos = top()) => {
    issues.push({ code, severity: "error", file, ...pos, path: "", message, hint });
    return { file, data: undefined, body: "", issues, locate: () => pos };
  };
  if (!OPEN.test(lines[0] ?? "")) {
    return fail(
      "E_FRONTMATTER",
      "the file does not start with a `---` frontmatter block",
      "start the file with a line `---`, the YAML settings, and another `---` line; the markdown body follows",
    );
  }
  let close = -1;
  for (let i = 1; i < lines.length; i++) {
    if (CLOSE.test(lines[i] ?? "")) {
      close = i;
      break;
    }
  }
  if (close < 0) {
    return fail(
      "E_FRONTMATTER",
      "the frontmatter block opened on line 1 is never closed",
      "add a line `---` after the YAML settings",
    );
  }
  const yamlText = lines.slice(1, close).join("\n");
  const body = lines
    .slice(close + 1)
    .join("\n")
    .replace(/^\n+/, "");
  const lineOffset = 1; // frontmatter line 1 is file line 2
  const counter = new LineCounter();
  const doc = parseDocument(yamlText, {
    lineCounter: counter,
    uniqueKeys: true,
    prettyErrors: false,
    merge: false,
    strict: true,
    logLevel: "error",
  });
  const posOf = (offset: number): Position => {
    const p = counter.linePos(Math.max(0, Math.min(offset, yamlText.length)));
    return { line: p.line + lineOffset, col: p.col };
  };
  const locate = (path: KeyPath, at: "key" | "value" = "value"): Position => {
    let node: unknown = doc.contents;
    let best: Position = { line: 2, col: 1 };
    const rangeOf = (n: unknown): Position | undefined => {
      const r = (n as Node | null)?.range;
      return r ? posOf(r[0]) : undefined;
    };
    best = rangeOf(node) ?? best;
    for (let i = 0; i < path.length; i++) {
      const seg = path[i];
      const last = i === path.length - 1;
      if (isMap(node)) {
        const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === String(seg));
        if (!pair) return best;
        if (last && at === "key") return rangeOf(pair.key) ?? best;
        best = rangeOf(pair.value) ?? rangeOf(pair.key) ?? best;
        node = pair.value;
      } else if (isSeq(node) && typeof seg === "number") {
        const item = node.items[seg];
        if (item === undefined) return best;
        best = rangeOf(item) ?? best;
        node = item;
      } else {
        return best;
      }
    }
    return best;
  };
  const MAX_YAML_ERRORS = 20;
  for (const err of doc.errors.slice(0, MAX_YAML_ERRORS)) {
    issues.push({
      code: "E_YAML",
      severity: "error",
      file,
      ...posOf(err.pos[0]),
      path: "",
      message: `invalid YAML: ${firstLine(err.message)}`,
      hint: "fix the YAML syntax in the frontmatter (indentation, quotes, `key: value` pairs)",
    });
  }
  if (doc.errors.length > MAX_YAML_ERRORS) {
    issues.push({
      code: "E_YAML",
      severity: "error",
      file,
      ...posOf(doc.errors[MAX_YAML_ERRORS]?.pos[0] ?? 0),
      path: "",
      message: `${doc.errors.length - MAX_YAML_ERRORS} more YAML errors not shown`,
      hint: "fix the first errors and validate again",
    });
  }
  if (issues.length === 0) {
    visit(doc, {
      Pair(_, pair) {
        if (pair.key === null || isScalar(pair.key)) return;
        const r = (pair.key as Node).range;
        issues.push({
          code: "E_YAML",
          severity: "error",
          file,
          ...(r ? posOf(r[0]) : { line: 2, col: 1 }),
          path: "",
          message: "a mapping key must be plain text, not a list or a mapping",
          hint: "write keys as `name: value`; a `? ` or `[`/`{` before the colon makes a complex key",
        });
      },
    });
  }
  if (issues.length > 0) return { file, data: undefined, body, issues, locate };
  let data: unknown;
  try {
    data = doc.toJS({ maxAliasCount: 50 });
  } catch (error) {
    issues.push({
      code: "E_YAML",
      severity: "error",
      file,
      line: 2,
      col: 1,
      path: "",
      message: `invalid YAML: ${firstLine(error instanceof Error ? error.message : String(error))}`,
      hint: "remove excessive or recursive YAML aliases from the frontmatter",
    });
    return { file, data: undefined, body, issues, locate };
  }
  if (data === null || data === undefined) data = {};
  if (typeof data !== "object" || Array.isArray(data)) {
    issues.push({
      code: "E_FRONTMATTER",
      severity: "error",
      file,
      line: 2,
      col: 1,
      path: "",
      message: `the frontmatter must be a mapping of keys to values, not ${Array.isArray(data) ? "a list" : typeof data}`,
      hint: "write the settings as `key: value` lines",
    });
    return { file, data: undefined, body, issues, locate };
  }
  return { file, data, body, issues, locate };
}

function firstLine(message: string): string {
  return (message.split("\n")[0] ?? message).trim();
}
