/**
 * Tokenizer for the Starlark subset used by Codex `.rules` files.
 *
 * Linear in the input: every character is consumed once. Indentation is turned into
 * INDENT/DEDENT tokens; newlines inside brackets are ignored (implicit line joining).
 */

export type TokenKind =
  | "name"
  | "int"
  | "string"
  | "fstring"
  | "op"
  | "newline"
  | "indent"
  | "dedent"
  | "eof";

export interface Token {
  kind: TokenKind;
  /** Identifier text, operator text, decoded string value, or integer digits. */
  value: string;
  line: number;
  col: number;
}

export class StarlarkSyntaxError extends Error {
  constructor(
    message: string,
    readonly line: number,
    readonly col: number,
  ) {
    super(message);
  }
}

const KEYWORDS_UNSUPPORTED = new Set([
  "while",
  "class",
  "import",
  "from",
  "try",
  "except",
  "finally",
  "raise",
  "with",
  "yield",
  "global",
  "nonlocal",
  "del",
  "assert",
  "async",
  "await",
  "is",
  "as",
]);

const THREE_CHAR_OPS = new Set(["//=", "**=", "<<=", ">>="]);
const TWO_CHAR_OPS = new Set([
  "==",
  "!=",
  "<=",
  ">=",
  "+=",
  "-=",
  "*=",
  "/=",
  "%=",
  "//",
  "**",
  "->",
  "|=",
  "&=",
  "<<",
  ">>",
]);
const ONE_CHAR_OPS = new Set([..."()[]{},:;.=+-*/%<>|&^~"]);

export function tokenize(src: string): Token[] {
  const out: Token[] = [];
  const indents: number[] = [0];
  let i = 0;
  let line = 1;
  let lineStart = 0;
  let depth = 0; // bracket nesting
  let atLineStart = true;
  const col = () => i - lineStart + 1;
  const push = (kind: TokenKind, value: string, l = line, c = col()) =>
    out.push({ kind, value, line: l, col: c });

  while (i < src.length) {
    if (atLineStart && depth === 0) {
      // measure indentation
      let width = 0;
      let j = i;
      while (j < src.length && (src[j] === " " || src[j] === "\t")) {
        width += src[j] === "\t" ? 8 - (width % 8) : 1;
        j++;
      }
      const next = src[j];
      if (next === "\n" || next === "\r" || next === "#" || next === undefined) {
        // blank or comment-only line: no indentation change
        i = j;
        while (i < src.length && src[i] !== "\n") i++;
        if (i < src.length) {
          i++;
          line++;
          lineStart = i;
        }
        continue;
      }
      i = j;
      atLineStart = false;
      const top = indents[indents.length - 1] ?? 0;
      if (width > top) {
        indents.push(width);
        push("indent", "", line, 1);
      } else {
        while (width < (indents[indents.length - 1] ?? 0)) {
          indents.pop();
          push("dedent", "", line, col());
        }
        if (width !== (indents[indents.length - 1] ?? 0)) {
          throw new StarlarkSyntaxError(
            "unindent does not match any outer indentation level",
            line,
            col(),
          );
        }
      }
    }
    const ch = src[i] as string;
    if (ch === "\n") {
      if (depth === 0) {
        push("newline", "");
        atLineStart = true;
      }
      i++;
      line++;
      lineStart = i;
      continue;
    }
    if (ch === " " || ch === "\t" || ch === "\r") {
      i++;
      continue;
    }
    if (ch === "#") {
      while (i < src.length && src[i] !== "\n") i++;
      continue;
    }
    if (ch === "\\" && src[i + 1] === "\n") {
      i += 2;
      line++;
      lineStart = i;
      continue;
    }
    const startLine = line;
    const startCol = col();
    // strings, with optional r / f / rf prefixes
    const prefixLen = stringPrefixLength(src, i);
    if (prefixLen >= 0) {
      const prefix = src.slice(i, i + prefixLen).toLowerCase();
      if (prefix.includes("b"))
        throw new StarlarkSyntaxError("bytes literals are not supported", line, col());
      if (prefix.length === 2 && !(prefix.includes("r") && prefix.includes("f"))) {
        throw new StarlarkSyntaxError(`invalid string prefix '${prefix}'`, line, col());
      }
      i += prefix.length;
      const quote = src[i] as string;
      const triple = src[i + 1] === quote && src[i + 2] === quote;
      const delim = triple ? quote.repeat(3) : quote;
      i += delim.length;
      const raw = prefix.includes("r");
      let value = "";
      for (;;) {
        // copy the run of ordinary characters in one slice
        let j = i;
        while (j < src.length) {
          const cc = src.charCodeAt(j);
          if (cc === 92 /* \\ */ || cc === 10 /* \n */ || src[j] === quote) break;
          j++;
        }
        if (j > i) {
          value += src.slice(i, j);
          i = j;
        }
        if (i >= src.length)
          throw new StarlarkSyntaxError("unterminated string literal", startLine, startCol);
        if (src.startsWith(delim, i)) {
          i += delim.length;
          break;
        }
        const c = src[i] as string;
        if (c === quote) {
          // a lone quote inside a triple-quoted string
          value += c;
          i++;
          continue;
        }
        if (c === "\n") {
          if (!triple)
            throw new StarlarkSyntaxError("unterminated string literal", startLine, startCol);
          value += c;
          i++;
          line++;
          lineStart = i;
          continue;
        }
        if (c === "\\") {
          const n = src[i + 1];
          if (n === undefined)
            throw new StarlarkSyntaxError("unterminated string literal", startLine, startCol);
          if (raw) {
            value += c + n;
            if (n === "\n") {
              line++;
              lineStart = i + 2;
            }
            i += 2;
            continue;
          }
          i += 2;
          switch (n) {
            case "\n":
              line++;
              lineStart = i;
              break;
            case "n":
              value += "\n";
              break;
            case "t":
              value += "\t";
              break;
            case "r":
              value += "\r";
              break;
            case "a":
              value += "\x07";
              break;
            case "b":
              value += "\b";
              break;
            case "f":
              value += "\f";
              break;
            case "v":
              value += "\v";
              break;
            case "\\":
            case "'":
            case '"':
              value += n;
              break;
            case "x":
            case "u":
            case "U": {
              const len = n === "x" ? 2 : n === "u" ? 4 : 8;
              const hex = src.slice(i, i + len);
              if (!new RegExp(`^[0-9a-fA-F]{${len}}$`).test(hex)) {
                throw new StarlarkSyntaxError(
                  `invalid \\${n} escape: expected ${len} hex digits`,
                  line,
                  col() - 2,
                );
              }
              const cp = Number.parseInt(hex, 16);
              if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
                throw new StarlarkSyntaxError(
                  `invalid code point in \\${n} escape`,
                  line,
                  col() - 2,
                );
              }
              value += String.fromCodePoint(cp);
              i += len;
              break;
            }
            default:
              if (n >= "0" && n <= "7") {
                let digits = n;
                while (digits.length < 3 && /[0-7]/.test(src[i] ?? "")) digits += src[i++];
                value += String.fromCharCode(Number.parseInt(digits, 8));
              } else {
                // like Python: unknown escapes keep their backslash
                value += c + n;
              }
          }
          continue;
        }
        value += c;
        i++;
      }
      push(prefix.includes("f") ? "fstring" : "string", value, startLine, startCol);
      continue;
    }
    if (isIdentStart(src.charCodeAt(i))) {
      let j = i + 1;
      while (j < src.length && isIdentPart(src.charCodeAt(j))) j++;
      const word = src.slice(i, j);
      if (KEYWORDS_UNSUPPORTED.has(word)) {
        throw new StarlarkSyntaxError(`'${word}' is not supported in policy files`, line, col());
      }
      push("name", word);
      i = j;
      continue;
    }
    if (ch >= "0" && ch <= "9") {
      let j = i + 1;
      while (j < src.length && /[0-9A-Za-z_.]/.test(src[j] as string)) j++;
      const lit = src.slice(i, j);
      if (!/^(0|[1-9][0-9]*)$/.test(lit)) {
        throw new StarlarkSyntaxError(
          `unsupported number literal '${lit}' (only decimal integers)`,
          line,
          col(),
        );
      }
      push("int", lit);
      i = j;
      continue;
    }
    // Brackets, commas and colons never start a longer operator: the most common tokens of a
    // rules file skip the two- and three-character lookups.
    if (
      ch === "," ||
      ch === "[" ||
      ch === "]" ||
      ch === "(" ||
      ch === ")" ||
      ch === "{" ||
      ch === "}" ||
      ch === ":"
    ) {
      if (ch === "(" || ch === "[" || ch === "{") depth++;
      else if (ch === ")" || ch === "]" || ch === "}") depth = Math.max(0, depth - 1);
      push("op", ch);
      i++;
      continue;
    }
    const three = src.slice(i, i + 3);
    const two = src.slice(i, i + 2);
    const op = THREE_CHAR_OPS.has(three)
      ? three
      : TWO_CHAR_OPS.has(two)
        ? two
        : ONE_CHAR_OPS.has(ch)
          ? ch
          : "";
    if (op === "") throw new StarlarkSyntaxError(`unexpected character '${ch}'`, line, col());
    if (op === "(" || op === "[" || op === "{") depth++;
    if (op === ")" || op === "]" || op === "}") depth = Math.max(0, depth - 1);
    push("op", op);
    i += op.length;
  }
  if (!atLineStart) push("newline", "");
  while (indents.length > 1) {
    indents.pop();
    push("dedent", "");
  }
  push("eof", "");
  return out;
}

function isIdentStart(c: number): boolean {
  return (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95;
}

function isIdentPart(c: number): boolean {
  return isIdentStart(c) || (c >= 48 && c <= 57);
}

/** Length of the string prefix (r, f, rf, b, …) when a string literal starts at `i`, else -1. */
function stringPrefixLength(src: string, i: number): number {
  for (let k = 0; k < 3; k++) {
    const c = src[i + k];
    if (c === '"' || c === "'") return k;
    if (k === 2 || c === undefined || !"rRfFbB".includes(c)) return -1;
  }
  return -1;
}
