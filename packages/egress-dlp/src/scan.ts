import { createHmac, randomBytes } from "node:crypto";
import { AhoCorasick, type AhoTables } from "./aho.ts";
import { type Budget, CHECK_EVERY, charge, createBudget, stop } from "./budget.ts";
import {
  binaryLayers,
  latin1Bytes,
  mostlyPrintable,
  mostlyPrintableBytes,
  plausibleDeflate,
  startsLikeBinary,
} from "./decode.ts";
import { EgressDlpError } from "./errors.ts";
import {
  createRunList,
  type FusedPass,
  type KnownSecret,
  KnownSecretIndex,
  type RunList,
} from "./known.ts";
import { isDefaultPasswordPkcs12 } from "./pkcs12.ts";
import type { OutboundDetector } from "./route.ts";
import {
  BOUNDED_PATTERNS,
  looksLikePlaceholder,
  looksSequential,
  TOKEN_RULES,
  type TokenRule,
} from "./rules.ts";

export type Severity = "block" | "warn";
export type DetectorName =
  | OutboundDetector
  | "naive_injection_detection"
  | "placeholder"
  | "budget";

/** One finding. It never carries the secret: only where it is and a keyed fingerprint. */
export interface Finding {
  detector: DetectorName;
  /** Token rule id, known-secret name, injection rule or budget kind. */
  rule: string;
  /** `host`, `path`, `query`, `header:<name>`, `body`, or what the caller passed. */
  surface: string;
  /** Offsets (UTF-16 code units) in the scanned surface text, end exclusive. */
  start: number;
  end: number;
  severity: Severity;
  /** HMAC-SHA256 (keyed per scanner) of the matched value, 16 hex characters. */
  fingerprint: string;
  /**
   * How the value was found: `raw`, `base64@1`, `hex+reversed`, `decoded:base64>raw`, ...;
   * `+casefolded` when a known secret matched only with ASCII case ignored.
   */
  encoding?: string;
}

/**
 * A finding inside one scan: the matched value rides along and is fingerprinted only if the
 * finding survives the merge of overlapping findings (a flood of overlapping matches costs one
 * keyed hash, not one per match). `value` never leaves this module.
 */
type RawFinding = Finding & { value?: string };

export interface ScanResult {
  findings: Finding[];
  /** True when a finding with severity `block` exists (budget overruns included). */
  blocked: boolean;
}

export interface ScannerOptions {
  /** Default: `token_patterns` and `known_secrets`; `entropy` is opt-in. */
  detectors?: readonly OutboundDetector[];
  knownSecrets?: readonly KnownSecret[];
  /** Shortest fragment of a known secret that counts. Default 12. */
  minSecretChars?: number;
  /** Key for finding fingerprints; random per scanner when omitted. */
  fingerprintKey?: string | Uint8Array;
  /** Replace the built-in token rules. */
  rules?: readonly TokenRule[];
  /** Largest text one scan accepts, in UTF-16 code units. Default 16 Mi. */
  maxChars?: number;
  /** Time budget of one scan in milliseconds. Default 2000. */
  maxMs?: number;
  /** How many nested encodings (base64, hex, base32, escapes, separators, gzip) are decoded. Default 4; a further encoded layer is a blocking `decode-depth-exceeded` finding. */
  maxDecodeDepth?: number;
  /** Bytes all decompressed blobs (gzip, zlib, deflate, zip) of one scan may expand to together. Default 4 MiB; more is a blocking `inflate-cap-exceeded` finding. */
  maxInflateBytes?: number;
  /**
   * Work budget of one scan, in units (characters or bytes visited by a stage, plus a fixed cost
   * per decompressor call and the bound of every regex attempt). Default
   * `maxWorkPerChar` × input length + 8 Mi. Exceeding it is a blocking `work-budget-exceeded` finding.
   */
  maxWork?: number;
  /** Work units allowed per input character when `maxWork` is not given. Default 16. */
  maxWorkPerChar?: number;
  /** Clock for the time budget (milliseconds); `performance.now` when omitted. */
  clock?: () => number;
}

export interface Scanner {
  /** Scans one surface. Never throws on content; over budget, returns a blocking `budget` finding. */
  scan(text: string, surface?: string): ScanResult;
  /** `scan`, plus the work units the scan used (for linearity tests and benchmarks). */
  measure(text: string, surface?: string): ScanResult & { work: number };
  /** Fingerprint of a value under this scanner's key (for allowlists and audit). */
  fingerprint(value: string): string;
  readonly detectors: readonly OutboundDetector[];
  readonly knownSecretCount: number;
}

// Trigger regexes for the decoders: V8 scans for them natively; each is a plain character-class
// search or a fixed-length sequence (no nested quantifiers), so each pass is linear.
/** Forward escapes: `\u`, `\x`, `\\`, `%XX`, `&#`. */
const ESC_RE = /\\[uUx\\/]|\\[0-3][0-7]{2}|%[0-9A-Fa-f]{2}|&#/g;
/** Work units charged per finding (an object, and a keyed hash if it survives the merge). */
const FINDING_COST = 1024;
/** Work units charged for a match that only extends the previous finding of its rule. */
const MERGED_COST = 16;
/**
 * Decoded segments shorter than this are scanned together, SMALL_BATCH characters at a time,
 * joined by a line feed (which ends every token, escape region and encoded run): a flood of tiny
 * decodable runs costs one layer per batch, not one layer (and its fixed cost) per run.
 */
const SMALL_SEGMENT = 4096;
const SMALL_BATCH = 65_536;
const REGION_PIECE = 65_536;
/**
 * Where the next piece of a long region starts: 2,520 × 25, so pieces overlap by 2,536 characters
 * (more than any token), and a region repeating a unit of up to 10 characters (or any divisor of
 * 2,520) gives pieces with equal text after the first: each is compared with the piece before
 * it, and an equal one reuses its decoded text (see samePiece).
 */
const REGION_STRIDE = 63_000;
/**
 * Where the next piece of a long separated run starts (in output characters): 2,520 × 19, so
 * pieces overlap by 17,656 characters, more than the longest token pattern (a one-line base64
 * private key, 16,100), and a run repeating a unit of up to 10 characters gives equal pieces.
 */
const SEPARATED_STRIDE = 47_880;
/** Largest scratch buffer (bytes) a decoder keeps for the next scan; larger ones are dropped. */
const SCRATCH_KEEP = 4 * 1024 * 1024;
/** Large decoded layers remembered per scanned layer, to reuse the findings of an equal one. */
const RECENT_LAYERS = 4;
/** Characters after a backslash that open an escape ESC_RE decodes: `u U x \\ /` and octal 0-3. */
const ESCAPE_LEAD = new Uint8Array(128);
for (const ch of "uUx\\/0123") ESCAPE_LEAD[ch.charCodeAt(0)] = 1;

/**
 * Does a backslash escape that the escape decoder handles occur? One native search per backslash
 * (prose in JSON has one every line break); it replaced six substring searches and an octal regex
 * over the whole text, which cost about 7% of a chat body's scan.
 */
function backslashEscapeLead(text: string): boolean {
  const first = text.indexOf("\\");
  let seen = 0;
  for (let i = first; i !== -1; i = text.indexOf("\\", i + 1)) {
    if (ESCAPE_LEAD[text.charCodeAt(i + 1)] === 1) return true;
    // backslashes every 16 characters or closer (a flood): one plain pass over the rest instead
    if (++seen >= 64 && i - first < 16 * seen) {
      for (let k = i + 1; k < text.length; k++) {
        if (text.charCodeAt(k) === 92 && ESCAPE_LEAD[text.charCodeAt(k + 1)] === 1) return true;
      }
      return false;
    }
  }
  return false;
}
/**
 * The first index of `needle` at or after `from` in `text`, or -1. The native search finds the
 * needle's first character with memchr, the fastest while that character is rare, but pays about
 * 15 ns a hit; `dense` (denseChar of that character) switches to `re` (global, the same needle,
 * Boyer-Moore), whose cost does not grow with the hits: the `0`s of a `\u005c` flood made a native
 * search cost 40% of the scan of the same text.
 */
export function findNeedle(
  text: string,
  needle: string,
  from: number,
  re: RegExp,
  dense: boolean,
): number {
  if (!dense) return text.indexOf(needle, from);
  re.lastIndex = from;
  return re.test(text) ? re.lastIndex - needle.length : -1;
}

/**
 * Whether character `c` occurs every DENSE characters or closer in `text`, judged on four
 * windows of 256 characters spread over it (1,024 reads). A text dense only outside the windows
 * gets the native search, whose cost is bounded by the text's length times 15 ns / DENSE.
 */
export function denseChar(text: string, c: number): boolean {
  const n = text.length;
  if (n < 4096) return false;
  let hits = 0;
  for (let w = 0; w < 4; w++) {
    const at = Math.floor(((n - 256) * w) / 3);
    for (let k = at; k < at + 256; k++) if (text.charCodeAt(k) === c) hits++;
  }
  return hits * DENSE > 1024;
}
const DENSE = 40;
const TRIPLE_ZERO_RE = /000/g;
const REVERSED_U_RE = /u\\/g;
/** The characters of an escape region (isEscapeRegionChar), from `lastIndex` on. */
const ESC_REGION_RE = /[A-Za-z0-9+/_\-\\%&#;.~= ]*/y;

/**
 * Where the escape region that goes on at `k` ends (the first character that is not
 * isEscapeRegionChar): a sticky class regex walks a long region several times faster than a
 * loop over its characters.
 */
export function escapeRegionEnd(text: string, k: number): number {
  ESC_REGION_RE.lastIndex = k;
  ESC_REGION_RE.test(text);
  return ESC_REGION_RE.lastIndex;
}
/** Reversed escapes: `Xu\\` (from `\uXXXX`) and `XX%` (from `%XX`). */
const REV_RE = /[0-9A-Fa-f]u\\|[0-9A-Fa-f]{2}%/g;
/** Characters that can follow a token keyword: [A-Za-z0-9_.+/=~-]. */
const TAIL = new Uint8Array(65536);
for (const ch of "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.+/=~-") {
  TAIL[ch.charCodeAt(0)] = 1;
}

/**
 * Start boundaries that token patterns open with (the lookbehinds `B` of rules.ts and its dashed
 * variant), with the characters each refuses before a match. Both classes are closed under case
 * folding, so the table is exact for case-insensitive patterns too.
 */
const LEAD_BOUNDARIES: [string, Uint8Array][] = ["(?<![A-Za-z0-9_-])", "(?<![A-Za-z0-9_])"].map(
  (source) => {
    const table = new Uint8Array(65536);
    for (const ch of "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_") {
      table[ch.charCodeAt(0)] = 1;
    }
    if (source.includes("_-]")) table[45] = 1;
    return [source, table];
  },
);

/**
 * Characters that may separate the characters of a token: ` -_.:,;|/`, tab, and the Unicode
 * spaces and dashes that look like them (no-break, en, em, thin, ideographic spaces; hyphens).
 */
const SEPARATOR_CLASS = new Uint8Array(65536);
for (const ch of " -_.:,;|/\t\u00a0\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u202f\u205f\u3000\u2010\u2011\u2012\u2013\u2014\u2212")
  SEPARATOR_CLASS[ch.charCodeAt(0)] = 1;
/** DER SEQUENCE, then INTEGER version 3, then the authSafe SEQUENCE: the shape of a PKCS#12 file. */
const PKCS12_HEADER = /^\x30[\x80-\x84][\s\S]{0,4}\x02\x01\x03\x30/;

function clampWindow(ws: number[], start: number, end: number): void {
  const n = ws.length;
  if (n > 0 && start <= (ws[n - 1] as number)) {
    if (start < (ws[n - 2] as number)) ws[n - 2] = start;
    if (end > (ws[n - 1] as number)) ws[n - 1] = end;
    return;
  }
  ws.push(start, end);
}

function shannon(text: string, from: number, to: number): number {
  const counts = new Map<number, number>();
  for (let i = from; i < to; i++) {
    const c = text.charCodeAt(i);
    counts.set(c, (counts.get(c) ?? 0) + 1);
  }
  const n = to - from;
  let h = 0;
  for (const k of counts.values()) {
    const p = k / n;
    h -= p * Math.log2(p);
  }
  return h;
}

/** Character classes for the decoders' linear passes (ASCII only). */
const C_B64 = 1;
const C_ESC = 2;
const C_SEP = 4;
const CLASS = new Uint8Array(65536);
for (let c = 0; c < 128; c++) {
  const alnum = (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122);
  if (alnum || c === 43 || c === 47 || c === 45 || c === 95)
    CLASS[c] = (CLASS[c] as number) | C_B64 | C_ESC;
}
for (const c of [92, 37, 38, 35, 59, 46, 126, 61, 32]) CLASS[c] = (CLASS[c] as number) | C_ESC;
for (const c of [32, 45, 95, 46, 58, 44, 59, 124, 47, 10, 13, 9])
  CLASS[c] = (CLASS[c] as number) | C_SEP;

function isB64(c: number): boolean {
  return ((CLASS[c] as number) & C_B64) !== 0;
}

/**
 * Cheap pre-checks before decoding a run: base64 of printable ASCII has every 4th character (the
 * top six bits of a byte below 0x80) in A-Z or a-f; hex of ASCII has every 2nd digit in 2-7.
 * Random tokens fail them, so near-miss floods do not pay for decoding.
 */
/** At least 80% of the characters sampled every `step` positions (at most 64) are in [lo1-hi1] or [lo2-hi2]; exits as soon as that is impossible. */
function mostlyIn(
  text: string,
  from: number,
  to: number,
  step: number,
  lo1: number,
  hi1: number,
  lo2: number,
  hi2: number,
): boolean {
  const total = Math.min(64, Math.ceil((to - from) / step));
  const allowed = Math.floor(total * 0.2);
  let misses = 0;
  for (let k = from, seen = 0; seen < total; k += step, seen++) {
    const c = text.charCodeAt(k);
    if (!((c >= lo1 && c <= hi1) || (c >= lo2 && c <= hi2)) && ++misses > allowed) return false;
  }
  return true;
}

/** Base64 alphabet index (standard or URL-safe) of a character, or -1. */
const B64_INDEX = new Int8Array(65536).fill(-1);
for (let k = 0; k < 64; k++) {
  B64_INDEX["ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".charCodeAt(k)] = k;
}
B64_INDEX[45] = 62; // -
B64_INDEX[95] = 63; // _

/**
 * The first bytes of a run, decoded into one reused scratch buffer: the plausibility checks run
 * once per run, and floods of short look-alike runs must not pay an allocation (or a read past
 * the run's end) for each.
 */
const HEAD = new Uint8Array(24);

/** Base64 `text[i, min(j, i + chars))` into HEAD; returns the number of bytes. */
function base64Head(text: string, i: number, j: number, chars = 32): number {
  const end = Math.min(j, i + chars);
  let o = 0;
  let acc = 0;
  let bits = 0;
  for (let k = i; k < end; k++) {
    const v = B64_INDEX[text.charCodeAt(k)] as number;
    if (v < 0) break;
    acc = ((acc << 6) | v) & 0xffffff;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      HEAD[o++] = (acc >> bits) & 0xff;
    }
  }
  return o;
}

/** Runs shorter than this are decoded by `decodeBase64Short` (longer ones natively). */
const SHORT_RUN = 4096;
/** Base64 (standard or URL-safe) `text[i, j)` into `out` at `o`; returns the number of bytes. */
function decodeBase64Into(text: string, i: number, j: number, out: Uint8Array, o0: number): number {
  let o = o0;
  let acc = 0;
  let bits = 0;
  for (let k = i; k < j; k++) {
    acc = ((acc << 6) | (B64_INDEX[text.charCodeAt(k)] as number)) & 0xffffff;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = (acc >> bits) & 0xff;
    }
  }
  return o - o0;
}

/** `mostlyPrintable` on `bytes[from, from + n)`: at least 85% printable ASCII (or tab, CR, LF) in the first 4 KiB. */
function printableBytes(bytes: Uint8Array, from: number, n: number): boolean {
  if (n === 0) return false;
  const m = Math.min(n, 4096);
  let ok = 0;
  for (let k = from; k < from + m; k++) {
    const c = bytes[k] as number;
    if ((c >= 32 && c < 127) || c === 9 || c === 10 || c === 13) ok++;
  }
  return ok >= m * 0.85;
}

/** True when `bytes[from, from + n)` holds 16 printable ASCII bytes in a row (what `printableStretch` keeps). */
function printableRun(bytes: Uint8Array, from: number, n: number): boolean {
  let run = 0;
  for (let k = from; k < from + n; k++) {
    const c = bytes[k] as number;
    run = c >= 32 && c < 127 ? run + 1 : 0;
    if (run >= 16) return true;
  }
  return false;
}

/** Hex `text[i, min(j, i + 32))` into HEAD; returns the number of bytes. */
function hexHead(text: string, i: number, j: number): number {
  const end = Math.min(j, i + 32);
  let o = 0;
  for (let k = i; k + 1 < end; k += 2) {
    const a = hexVal(text.charCodeAt(k));
    const b = hexVal(text.charCodeAt(k + 1));
    if (a < 0 || b < 0) break;
    HEAD[o++] = a * 16 + b;
  }
  return o;
}

/**
 * Base64 of printable ASCII, group by group: the 1st character holds the top six bits of a byte
 * below 0x80 (index < 32: A-Z, a-f) and the 2nd the top nibble of the next byte, 2-7 for
 * printable characters (index mod 16 in 2..7). Random tokens pass a group one time in ten, so
 * floods of token-like runs are not decoded; at most 16 groups are read, 20% may miss.
 */
function plausibleBase64Text(text: string, from: number, to: number): boolean {
  const groups = Math.min(16, (to - from) >> 2);
  const allowed = Math.floor(groups * 0.2);
  let misses = 0;
  for (let g = 0, k = from; g < groups; g++, k += 4) {
    const first = B64_INDEX[text.charCodeAt(k)] as number;
    const nib = (B64_INDEX[text.charCodeAt(k + 1)] as number) & 15;
    if ((first < 0 || first >= 32 || nib < 2 || nib > 7) && ++misses > allowed) return false;
  }
  return groups > 0;
}

function plausibleBase32Text(text: string, from: number, to: number): boolean {
  // base32 is case-insensitive (DNS labels lowercase it): A-P or a-p
  return to - from >= 16 && mostlyIn(text, from, to, 8, 65, 80, 97, 112);
}

function plausibleHexText(text: string, from: number, to: number): boolean {
  return mostlyIn(text, from, to, 2, 50, 55, 50, 55); // 2-7
}

/** Hex digit values, -1 elsewhere. */
const HEX_VALUE = new Int8Array(65536).fill(-1);
for (let c = 0; c < 16; c++) {
  HEX_VALUE["0123456789abcdef".charCodeAt(c)] = c;
  HEX_VALUE["0123456789ABCDEF".charCodeAt(c)] = c;
}

/** The value of hex digit `c`, or -1 (also past the end of a string: `c` is NaN). */
function hexVal(c: number): number {
  return HEX_VALUE[c] ?? -1;
}

export function isEscapeRegionChar(d: number): boolean {
  return ((CLASS[d] as number) & C_ESC) !== 0;
}

/**
 * Reversed escapes (`XXXXu\\`, `XX%`): the region is reversed, then unescaped. Linear. A long
 * region is reversed and decoded in pieces of REGION_PIECE (starting REGION_STRIDE apart, from
 * its end, where the reversed text starts), like the forward escapes: the budget is charged
 * between pieces, and no piece becomes a string above about 1 MB, which Node makes an external
 * string that every later read pays for (a 1 MiB `%25` flood spent about half its scan reversing
 * and decoding one such string).
 */
function reversedEscapeSegments(text: string, segs: Segment[], budget: Budget): void {
  REV_RE.lastIndex = 0;
  for (let m = REV_RE.exec(text); m !== null; m = REV_RE.exec(text)) {
    const i = m.index + m[0].length - 1;
    let start = i;
    while (start > 0 && isEscapeRegionChar(text.charCodeAt(start - 1))) start--;
    const j = escapeRegionEnd(text, i + 1);
    if (j - start > REGION_PIECE) {
      if (!escapePieces(text, start, j, true, segs, budget)) return;
      REV_RE.lastIndex = j + 1;
      continue;
    }
    let prevFrom = -1;
    let prevTo = -1;
    let prevText = "";
    for (let to = j; to > start; to -= REGION_STRIDE) {
      const from = Math.max(start, to - REGION_PIECE);
      if (charge(budget, 2 * (to - from))) return;
      let decoded: string;
      if (samePiece(text, from, to, prevFrom, prevTo)) decoded = prevText;
      else {
        const reversed = reverseString(text, from, to);
        decoded = unescapeRegion(reversed, 0, reversed.length);
      }
      segs.push({ start: from, end: to, kind: "reversed+escapes", text: decoded });
      prevFrom = from;
      prevTo = to;
      prevText = decoded;
      if (from === start) break;
    }
    REV_RE.lastIndex = j + 1;
  }
}

/**
 * `text[from, to)` reversed by UTF-16 unit (an astral character's halves swap: none is in a token).
 * Written as bytes, a one-byte string, when every unit fits (nearly always): Node makes a string
 * from UTF-16 bytes several times slower, and above about 1 MB as an external string, slower
 * again to read.
 */
function reverseString(text: string, from: number, to: number): string {
  const n = to - from;
  const bytes = new Uint8Array(n);
  let wide = 0;
  for (let k = from, o = n - 1; k < to; k++, o--) {
    const c = text.charCodeAt(k);
    wide |= c;
    bytes[o] = c;
  }
  if (wide < 256) return Buffer.from(bytes.buffer, 0, n).toString("latin1");
  const buf = new Uint16Array(n);
  for (let k = from, o = n - 1; k < to; k++, o--) buf[o] = text.charCodeAt(k);
  return Buffer.from(buf.buffer, 0, n * 2).toString("utf16le");
}

/**
 * Characters interleaved with one repeated separator (`s-k-a-n-t`, `\ u 0 0 7 3`): the even
 * characters form a segment, so encodings hidden behind separators decode too. Linear.
 */
function separatedSegments(text: string, segs: Segment[], budget: Budget): void {
  const n = text.length;
  let buf: Uint16Array | undefined;
  let covered = 0;
  // A separated run of 16+ characters is 31+ long, and a sample at p or p + 1 (whichever holds
  // the separator) with the same separator two places before and up to four after lies anywhere
  // in 23 of its positions: every 12th position is sampled, and such a sample starts a closer
  // look. Prose costs about three character reads per sample (a regex for the same shape cost
  // 5 ns a character).
  for (let p = 2; p + 6 < n; p += 12) {
    if (p < covered) continue;
    let sp = p;
    if (SEPARATOR_CLASS[text.charCodeAt(p)] !== 1) {
      sp = p + 1;
      if (SEPARATOR_CLASS[text.charCodeAt(sp)] !== 1) continue;
    }
    const sep = text.charCodeAt(sp);
    if (
      text.charCodeAt(sp + 2) !== sep ||
      text.charCodeAt(sp - 2) !== sep ||
      text.charCodeAt(sp + 4) !== sep ||
      isSpace(text.charCodeAt(sp + 1)) ||
      isSpace(text.charCodeAt(sp - 1))
    )
      continue;
    // back to the run's first character
    let j = sp - 1;
    while (
      j >= Math.max(2, covered + 2) &&
      text.charCodeAt(j - 1) === sep &&
      !isSpace(text.charCodeAt(j - 2))
    )
      j -= 2;
    const start = j;
    buf ??= separatedBuffer((n >> 1) + 2);
    let o = 0;
    let wide = 0;
    while (j < n && !isSpace(text.charCodeAt(j))) {
      if (text.charCodeAt(j) === sep) {
        // the separator character itself, separated (`x-o-x-b---1`): a literal, then the separator
        if (text.charCodeAt(j + 1) !== sep) break;
        buf[o++] = sep;
        j += 2;
        continue;
      }
      const c = text.charCodeAt(j);
      wide |= c;
      buf[o++] = c;
      if (text.charCodeAt(j + 1) !== sep) {
        j += 1;
        break;
      }
      j += 2;
    }
    covered = j;
    if (charge(budget, j - start)) return;
    if (o < 16) continue;
    // A long run goes out in pieces of REGION_PIECE characters, SEPARATED_STRIDE apart: a string
    // above 128 KiB is allocated on fresh pages (page faults on every scan, about as costly as
    // building it), and a run repeating a short unit gives equal pieces, scanned once (see
    // scanLayer). Every output character comes from two input characters, so a piece maps back
    // to its exact span.
    for (let a = 0; a < o; a += SEPARATED_STRIDE) {
      const b = Math.min(o, a + REGION_PIECE);
      // a one-byte string when every unit fits (nearly always): made several times faster than
      // one from UTF-16, and cheaper to scan
      const out =
        (wide | sep) < 256
          ? oneByteString(buf, a, b)
          : Buffer.from(buf.buffer, 2 * a, 2 * (b - a)).toString("utf16le");
      segs.push({
        start: start + 2 * a,
        end: b === o ? j : start + 2 * b,
        kind: "separated",
        text: out,
      });
      if (b === o) break;
    }
  }
}

/**
 * Is `text[from, to)` equal to the piece `text[prevFrom, prevTo)` decoded just before it? Then it
 * decodes to the same text. One native comparison (the caller has charged the piece's length).
 */
function samePiece(
  text: string,
  from: number,
  to: number,
  prevFrom: number,
  prevTo: number,
): boolean {
  return (
    prevFrom !== -1 &&
    to - from === prevTo - prevFrom &&
    // the first and last characters before two slices: equal-length pieces that differ (a flood
    // of random blocks) nearly always differ there
    text.charCodeAt(from) === text.charCodeAt(prevFrom) &&
    text.charCodeAt(to - 1) === text.charCodeAt(prevTo - 1) &&
    text.slice(from, to) === text.slice(prevFrom, prevTo)
  );
}

/**
 * Scratch buffers of separatedSegments, reused by every scan below SCRATCH_KEEP: a fresh
 * megabyte per scan cost page faults (a third of that pass on a separated flood).
 */
let separatedScratch = new Uint16Array(4096);
let byteScratch = Buffer.alloc(4096);

function separatedBuffer(size: number): Uint16Array {
  if (separatedScratch.length >= size) return separatedScratch;
  const grown = new Uint16Array(size);
  if (2 * size <= SCRATCH_KEEP) separatedScratch = grown;
  return grown;
}

/**
 * Decoded bytes of the run `[start, end)` as one segment, or, above REGION_PIECE, as pieces
 * SEPARATED_STRIDE apart (overlap longer than any token): no string above 128 KiB (fresh pages,
 * faults on every scan), and a long run repeating a short unit gives equal pieces, scanned once.
 * `inPer` input characters decode to `outPer` bytes; a piece maps to the input that holds it.
 */
function pushDecoded(
  segs: Segment[],
  start: number,
  end: number,
  kind: string,
  bytes: Buffer,
  inPer: number,
  outPer: number,
): void {
  const n = bytes.length;
  if (n <= REGION_PIECE) {
    segs.push({ start, end, kind, text: bytes.toString("latin1") });
    return;
  }
  for (let a = 0; a < n; a += SEPARATED_STRIDE) {
    const b = Math.min(n, a + REGION_PIECE);
    segs.push({
      start: start + Math.floor(a / outPer) * inPer,
      end: b === n ? end : Math.min(end, start + Math.ceil(b / outPer) * inPer),
      kind,
      text: bytes.toString("latin1", a, b),
    });
    if (b === n) break;
  }
}

/** `units[from, to)`, every one below 256, as a one-byte string. */
function oneByteString(units: Uint16Array, from: number, to: number): string {
  const n = to - from;
  let bytes = byteScratch;
  if (bytes.length < n) {
    bytes = Buffer.alloc(n);
    if (n <= SCRATCH_KEEP) byteScratch = bytes;
  }
  for (let k = 0; k < n; k++) bytes[k] = units[from + k] as number;
  return bytes.toString("latin1", 0, n);
}

function isSpace(c: number): boolean {
  return c === 32 || (c >= 9 && c <= 13) || c === 0xa0 || c === 0x2028 || c === 0x2029;
}

interface Segment {
  start: number;
  end: number;
  kind: string;
  text: string;
  /**
   * For a segment that batches several decoded pieces (joined by a line feed): where each piece
   * starts in `text`, and the span [start, end) of the input it was decoded from.
   */
  parts?: { at: Int32Array; start: Int32Array; end: Int32Array };
}

/** The input span of the part(s) of a batched segment that `text[from, to)` lies in. */
function partSpan(seg: Segment, from: number, to: number): [number, number] {
  const parts = seg.parts;
  if (!parts) return [seg.start, seg.end];
  const find = (offset: number): number => {
    let lo = 0;
    let hi = parts.at.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if ((parts.at[mid] as number) <= offset) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  };
  const a = find(from);
  const b = find(Math.max(from, to - 1));
  return [parts.start[a] as number, Math.max(parts.end[a] as number, parts.end[b] as number)];
}

/** Characters between two equal base64 runs whose decoded piece is kept once (see encodedSegments). */
const REPEAT_GAP = 4;
/** encodedSegments takes runs of a periodic flood in one loop (off only in tests, to compare). */
let runFastForward = true;
/** For tests: turns the periodic-run fast path of encodedSegments off or on. */
export function setRunFastForward(on: boolean): void {
  runFastForward = on;
}

/**
 * Collects short decoded pieces into one batched segment (see SMALL_BATCH): bytes go into one
 * reused buffer, so a flood of small decodable runs costs one string per batch, not one string,
 * one segment and one scanned layer per run.
 */
class PieceBatch {
  private bytes = new Uint8Array(SMALL_BATCH + 4 * SHORT_RUN);
  private buf = Buffer.from(this.bytes.buffer);
  private at: Int32Array<ArrayBuffer> = new Int32Array(1024);
  private from: Int32Array<ArrayBuffer> = new Int32Array(1024);
  private to: Int32Array<ArrayBuffer> = new Int32Array(1024);
  /** Bytes used; a piece is decoded at `n` and kept by `keep`. */
  n = 0;
  private count = 0;
  constructor(private readonly kind: string) {}
  get target(): Uint8Array {
    return this.bytes;
  }
  view(from: number, to: number): Buffer {
    return this.buf.subarray(from, to);
  }
  /** Keeps the `len` bytes decoded at `n` as the piece of input span [start, end). */
  keep(len: number, start: number, end: number, segs: Segment[]): void {
    if (this.count === this.at.length) {
      const grow = (a: Int32Array): Int32Array<ArrayBuffer> => {
        const b = new Int32Array(a.length * 2);
        b.set(a);
        return b;
      };
      this.at = grow(this.at);
      this.from = grow(this.from);
      this.to = grow(this.to);
    }
    this.at[this.count] = this.n;
    this.from[this.count] = start;
    this.to[this.count] = end;
    this.count++;
    this.n += len;
    this.bytes[this.n++] = 10;
    if (this.n >= SMALL_BATCH) this.flush(segs);
  }
  /** Pieces kept since the last flush. */
  get pieces(): number {
    return this.count;
  }
  /** Input end of the last piece kept since the last flush, or -1. */
  get lastEnd(): number {
    return this.count === 0 ? -1 : (this.to[this.count - 1] as number);
  }
  /** Grows the last piece's input span to `end` (a run equal to it, see encodedSegments). */
  extendLast(end: number): void {
    this.to[this.count - 1] = end;
  }
  reset(): void {
    this.n = 0;
    this.count = 0;
  }
  flush(segs: Segment[]): void {
    if (this.count === 0) return;
    const c = this.count;
    const text = this.buf.toString("latin1", 0, this.n - 1);
    const start = this.from[0] as number;
    const end = this.to[c - 1] as number;
    segs.push(
      c === 1
        ? { start, end, kind: this.kind, text }
        : {
            start,
            end,
            kind: this.kind,
            text,
            parts: {
              at: this.at.slice(0, c),
              start: this.from.slice(0, c),
              end: this.to.slice(0, c),
            },
          },
    );
    this.n = 0;
    this.count = 0;
  }
}

/** JSON single-character escapes: `\n` is 0x0A, and so on. */
const JSON_ESCAPES: Record<number, number> = { 110: 10, 116: 9, 114: 13, 98: 8, 102: 12 };

/**
 * Decodes `\uXXXX`, `\xXX`, octal `\NNN`, JSON escapes (`\n \t \r \b \f \/ \"`), `%XX` and
 * `&#NN;` / `&#xNN;` (the `;` is optional, as browsers accept) inside one region. Every escape is
 * read with a fixed lookahead (at most 8 characters for `&#`), so the pass is linear whatever the
 * region holds (`&#` floods included).
 */
function unescapeRegion(text: string, from: number, to: number): string {
  // UTF-16 units into a typed buffer (output is never longer than the region), decoded once:
  // string concatenation per character was 400 ns a character. Bytes while every unit fits in
  // one (nearly always): a one-byte string is made several times faster than one from UTF-16,
  // and is cheaper to scan. The first wider unit moves what was written into a UTF-16 buffer.
  let bytes: Uint8Array | undefined = new Uint8Array(to - from + 1);
  let buf: Uint8Array | Uint16Array = bytes;
  let o = 0;
  let changed = false;
  const widen = (): void => {
    const wide = new Uint16Array(to - from + 1);
    for (let k = 0; k < o; k++) wide[k] = buf[k] as number;
    buf = wide;
    bytes = undefined;
  };
  const put = (v: number): void => {
    if (v > 0xff && bytes !== undefined) widen();
    buf[o++] = v;
  };
  const push = (v: number): void => {
    if (v > 0xffff) {
      put(0xd800 + ((v - 0x10000) >> 10));
      put(0xdc00 + ((v - 0x10000) & 0x3ff));
    } else put(v);
    changed = true;
  };
  let i = from;
  while (i < to) {
    const c = text.charCodeAt(i);
    if (c === 92 /* \ */ && i + 1 < to) {
      const n = text.charCodeAt(i + 1);
      if ((n === 117 || n === 85) && i + 6 <= to) {
        let v = 0;
        let k = i + 2;
        for (; k < i + 6; k++) {
          const h = hexVal(text.charCodeAt(k));
          if (h < 0) break;
          v = v * 16 + h;
        }
        if (k === i + 6) {
          push(v);
          i += 6;
          continue;
        }
      }
      if (n === 120 && i + 4 <= to) {
        const a = hexVal(text.charCodeAt(i + 2));
        const b = hexVal(text.charCodeAt(i + 3));
        if (a >= 0 && b >= 0) {
          push(a * 16 + b);
          i += 4;
          continue;
        }
      }
      if (n >= 48 && n <= 55) {
        // octal: up to three digits, value below 256
        let v = n - 48;
        let k = i + 2;
        while (k < to && k < i + 4) {
          const d = text.charCodeAt(k);
          if (d < 48 || d > 55 || v * 8 + (d - 48) > 255) break;
          v = v * 8 + (d - 48);
          k++;
        }
        push(v);
        i = k;
        continue;
      }
      push(JSON_ESCAPES[n] ?? n);
      i += 2;
      continue;
    }
    if (c === 37 /* % */ && i + 3 <= to) {
      const a = hexVal(text.charCodeAt(i + 1));
      const b = hexVal(text.charCodeAt(i + 2));
      if (a >= 0 && b >= 0) {
        push(a * 16 + b);
        i += 3;
        continue;
      }
    }
    if (c === 38 /* & */ && text.charCodeAt(i + 1) === 35 /* # */) {
      const hex = (text.charCodeAt(i + 2) | 0x20) === 120;
      let k = hex ? i + 3 : i + 2;
      const digitsFrom = k;
      let v = 0;
      while (k < to && k - digitsFrom < 7) {
        const d = hex ? hexVal(text.charCodeAt(k)) : text.charCodeAt(k) - 48;
        if (d < 0 || d > (hex ? 15 : 9)) break;
        v = v * (hex ? 16 : 10) + d;
        k++;
      }
      if (k > digitsFrom && v < 0x110000) {
        push(v);
        i = k < to && text.charCodeAt(k) === 59 /* ; */ ? k + 1 : k;
        continue;
      }
    }
    put(c);
    i++;
  }
  if (!changed) return text.slice(from, to);
  if (bytes !== undefined) return Buffer.from(bytes.buffer, 0, o).toString("latin1");
  return Buffer.from(buf.buffer, 0, o * 2).toString("utf16le");
}

/**
 * Long escape regions are cut in *decoded* characters: pieces of ESCAPE_PIECE decoded units,
 * ESCAPE_STRIDE apart, overlap 17,640 decoded units, more than the longest token pattern (a
 * one-line base64 private key, 16,100). Cut in input characters, an overlap had to be 16,100
 * times the longest escape (11 characters for `&#x…;`), and a token written entirely as escapes
 * could straddle a cut. Both are multiples of 2,520: a region repeating a unit that decodes to
 * up to 10 characters gives equal pieces, whose findings the recent-layer check reuses.
 */
const ESCAPE_PIECE = 131_040;
const ESCAPE_STRIDE = 113_400;

/**
 * Input characters of a long escape region copied and decoded at a time (budget charged between):
 * 2,520 × 26, so a region repeating a unit of up to 10 characters gives equal chunks, and a chunk
 * equal to the last decoded one, from the same phase, copies its units instead of decoding.
 */
const ESCAPE_CHUNK = 65_520;
/** The longest escape (`&#x`, 7 digits, `;`) reads at most 10 characters past its first. */
const ESCAPE_LOOKAHEAD = 12;

/**
 * Scratch of escapePieces: a chunk of region units (reversed for a reversed region), and a window
 * of decoded units (one piece plus a chunk), where each one's escape starts in the region, and
 * whether it was decoded from an escape. About 1.4 MB, made on the first long region.
 */
let escSrc: Uint16Array | undefined;
let escOut: Uint16Array | undefined;
let escAt: Int32Array | undefined;
let escChg: Uint8Array | undefined;
/** The last decoded chunk's units, region indices and decoded flags, for an equal chunk to copy. */
let escLastOut: Uint16Array | undefined;
let escLastAt: Int32Array | undefined;
let escLastChg: Uint8Array | undefined;
/** Where decodeEscapesInto stopped in the region (the first escape not decoded). */
const ESC_STATE = { next: 0 };

/**
 * `unescapeRegion` over the chunk `src[0, stop)` of a region (the chunk starts at region index
 * `base`; escapes starting before `stop` may read up to `limit`), appending to the window at `o`:
 * each unit, the region index where its escape starts, and 1 if an escape was decoded. Returns the
 * new window length; ESC_STATE.next is where the next chunk starts. Chunks decoded one after
 * another decode exactly as unescapeRegion over the whole region: no cut splits an escape.
 */
function decodeEscapesInto(
  src: Uint16Array,
  base: number,
  stop: number,
  limit: number,
  out: Uint16Array,
  at: Int32Array,
  chg: Uint8Array,
  o0: number,
): number {
  let o = o0;
  let i = 0;
  const n = limit;
  while (i < stop) {
    const c = src[i] as number;
    const from = base + i;
    let v = -1;
    if (c === 92 /* \ */ && i + 1 < n) {
      const d = src[i + 1] as number;
      if ((d === 117 || d === 85) && i + 6 <= n) {
        let u = 0;
        let k = i + 2;
        for (; k < i + 6; k++) {
          const h = hexVal(src[k] as number);
          if (h < 0) break;
          u = u * 16 + h;
        }
        if (k === i + 6) {
          v = u;
          i += 6;
        }
      }
      if (v < 0 && d === 120 && i + 4 <= n) {
        const a = hexVal(src[i + 2] as number);
        const b = hexVal(src[i + 3] as number);
        if (a >= 0 && b >= 0) {
          v = a * 16 + b;
          i += 4;
        }
      }
      if (v < 0 && d >= 48 && d <= 55) {
        let u = d - 48;
        let k = i + 2;
        while (k < n && k < i + 4) {
          const e = src[k] as number;
          if (e < 48 || e > 55 || u * 8 + (e - 48) > 255) break;
          u = u * 8 + (e - 48);
          k++;
        }
        v = u;
        i = k;
      }
      if (v < 0) {
        v = JSON_ESCAPES[d] ?? d;
        i += 2;
      }
    } else if (c === 37 /* % */ && i + 3 <= n) {
      const a = hexVal(src[i + 1] as number);
      const b = hexVal(src[i + 2] as number);
      if (a >= 0 && b >= 0) {
        v = a * 16 + b;
        i += 3;
      }
    } else if (c === 38 /* & */ && i + 1 < n && src[i + 1] === 35 /* # */) {
      const hex = i + 2 < n && ((src[i + 2] as number) | 0x20) === 120;
      let k = hex ? i + 3 : i + 2;
      const digitsFrom = k;
      let u = 0;
      while (k < n && k - digitsFrom < 7) {
        const d = hex ? hexVal(src[k] as number) : (src[k] as number) - 48;
        if (d < 0 || d > (hex ? 15 : 9)) break;
        u = u * (hex ? 16 : 10) + d;
        k++;
      }
      if (k > digitsFrom && u < 0x110000) {
        v = u;
        i = k < n && src[k] === 59 /* ; */ ? k + 1 : k;
      }
    }
    if (v < 0) {
      at[o] = from;
      chg[o] = 0;
      out[o++] = c;
      i++;
    } else if (v > 0xffff) {
      at[o] = from;
      chg[o] = 1;
      out[o++] = 0xd800 + ((v - 0x10000) >> 10);
      at[o] = from;
      chg[o] = 1;
      out[o++] = 0xdc00 + ((v - 0x10000) & 0x3ff);
    } else {
      at[o] = from;
      chg[o] = 1;
      out[o++] = v;
    }
  }
  ESC_STATE.next = base + i;
  at[o] = base + i;
  return o;
}

/** `units[0, n)` as a string: one-byte when every unit fits (nearly always), else UTF-16. */
function unitsString(units: Uint16Array, n: number): string {
  let bytes = byteScratch;
  if (bytes.length < n) {
    bytes = Buffer.alloc(n);
    if (n <= SCRATCH_KEEP) byteScratch = bytes;
  }
  let wide = 0;
  for (let k = 0; k < n; k++) {
    const u = units[k] as number;
    wide |= u;
    bytes[k] = u;
  }
  if (wide < 256) return bytes.toString("latin1", 0, n);
  return Buffer.from(units.buffer, units.byteOffset, 2 * n).toString("utf16le");
}

/**
 * A long escape region `text[start, end)` (forwards, or `reversed`: read from its end) decoded a
 * chunk at a time into a window, and cut into pieces in decoded characters (see ESCAPE_PIECE),
 * each mapped to the input span its escapes came from. A forward piece in which no escape
 * decoded is the input itself (scanned already) and is left out. Returns false when the budget
 * ran out. Memory is one window, whatever the region's length.
 */
function escapePieces(
  text: string,
  start: number,
  end: number,
  reversed: boolean,
  segs: Segment[],
  budget: Budget,
): boolean {
  const n = end - start;
  if (escSrc === undefined || escOut === undefined || escAt === undefined || escChg === undefined) {
    escSrc = new Uint16Array(ESCAPE_CHUNK + ESCAPE_LOOKAHEAD);
    escOut = new Uint16Array(ESCAPE_PIECE + ESCAPE_CHUNK + 2);
    escAt = new Int32Array(ESCAPE_PIECE + ESCAPE_CHUNK + 2);
    escChg = new Uint8Array(ESCAPE_PIECE + ESCAPE_CHUNK + 2);
    escLastOut = new Uint16Array(ESCAPE_CHUNK + 2);
    escLastAt = new Int32Array(ESCAPE_CHUNK + 2);
    escLastChg = new Uint8Array(ESCAPE_CHUNK + 2);
  }
  const src = escSrc;
  const out = escOut;
  const at = escAt;
  const chg = escChg;
  const lastOut = escLastOut as Uint16Array;
  const lastAt = escLastAt as Int32Array;
  const lastChg = escLastChg as Uint8Array;
  // the last chunk decoded: where it started, its length with lookahead, its units, where it ended
  let lastI = -1;
  let lastLimit = -1;
  let lastM = 0;
  let lastNext = 0;
  const kind = reversed ? "reversed+escapes" : "escapes";
  const emit = (b: number, o: number): void => {
    if (!reversed && chg.subarray(0, b).indexOf(1) === -1) return;
    const s0 = at[0] as number;
    // the last unit's input ends where the next unit's escape starts (past a split surrogate
    // pair; at[o] is where the next chunk starts)
    let e = b;
    while (e < o && at[e] === at[b - 1]) e++;
    const s1 = at[e] as number;
    const t = unitsString(out, b);
    if (reversed) segs.push({ start: end - s1, end: end - s0, kind, text: t });
    else segs.push({ start: start + s0, end: start + s1, kind, text: t });
  };
  let o = 0;
  // units of the window that no piece has held yet
  let fresh = 0;
  let i = 0;
  while (i < n) {
    const stop = Math.min(n, i + ESCAPE_CHUNK);
    const limit = Math.min(n, stop + ESCAPE_LOOKAHEAD);
    if (charge(budget, 2 * (stop - i))) return false;
    const before = o;
    if (
      lastI !== -1 &&
      stop - i === ESCAPE_CHUNK &&
      limit - i === lastLimit - lastI &&
      (reversed
        ? text.slice(end - limit, end - i) === text.slice(end - lastLimit, end - lastI)
        : text.slice(start + i, start + limit) === text.slice(start + lastI, start + lastLimit))
    ) {
      // the same input from the same phase decodes to the same units, shifted in the region
      out.set(lastOut.subarray(0, lastM), o);
      chg.set(lastChg.subarray(0, lastM), o);
      const shift = i - lastI;
      for (let k = 0; k < lastM; k++) at[o + k] = (lastAt[k] as number) + shift;
      o += lastM;
      i = lastNext + shift;
      at[o] = i;
    } else {
      if (reversed) for (let k = i; k < limit; k++) src[k - i] = text.charCodeAt(end - 1 - k);
      else for (let k = i; k < limit; k++) src[k - i] = text.charCodeAt(start + k);
      o = decodeEscapesInto(src, i, stop - i, limit - i, out, at, chg, o);
      if (stop - i === ESCAPE_CHUNK) {
        lastM = o - before;
        lastOut.set(out.subarray(before, o));
        lastAt.set(at.subarray(before, o));
        lastChg.set(chg.subarray(before, o));
        lastI = i;
        lastLimit = limit;
        lastNext = ESC_STATE.next;
      }
      i = ESC_STATE.next;
    }
    fresh += o - before;
    while (o > ESCAPE_PIECE || (o === ESCAPE_PIECE && i < n)) {
      if (charge(budget, ESCAPE_PIECE)) return false;
      emit(ESCAPE_PIECE, o);
      out.copyWithin(0, ESCAPE_STRIDE, o);
      at.copyWithin(0, ESCAPE_STRIDE, o + 1);
      chg.copyWithin(0, ESCAPE_STRIDE, o);
      o -= ESCAPE_STRIDE;
      fresh = o - (ESCAPE_PIECE - ESCAPE_STRIDE);
    }
  }
  if (fresh > 0 && o > 0) {
    if (charge(budget, o)) return false;
    emit(o, o);
  }
  return true;
}

function decodeBase32(run: string): string {
  let bits = 0;
  let value = 0;
  let out = "";
  for (let i = 0; i < run.length; i++) {
    const c = run.charCodeAt(i);
    const v =
      c >= 65 && c <= 90 ? c - 65 : c >= 97 && c <= 122 ? c - 97 : c >= 50 && c <= 55 ? c - 24 : -1;
    if (v < 0) break;
    value = ((value << 5) | v) & 0xfff;
    bits += 5;
    if (bits >= 8) {
      out += String.fromCharCode((value >>> (bits - 8)) & 0xff);
      bits -= 8;
    }
  }
  return out;
}

/** Prefixes of tokens found wherever they start, reversed and lower-cased: `ghp_` → `_phg`. */
const REVERSED_PREFIXES = [
  "ghp_",
  "gho_",
  "ghu_",
  "ghs_",
  "ghr_",
  "github_pat_",
  "glpat-",
  "akia",
  "asia",
  "aiza",
  "xoxb-",
  "xoxp-",
  "xapp-",
  "sk_live_",
  "sk_test_",
  "rk_live_",
  "sk-proj-",
  "sk-ant-",
  "sk-svcacct-",
  "npm_",
  "pypi-",
  "gsk_",
  "dop_v1_",
  "hvs.",
  "sg.",
  "whsec_",
  "dckr_pat_",
].map((p) => [...p].reverse().join(""));

/**
 * Can the last 16 characters before `j` hold a reversed prefix? Every one has `_`, `-` or `.`,
 * or `ai` (`aika`, `aisa`, `azia`): a check without allocation before the real one.
 */
function reversedHint(text: string, j: number): boolean {
  for (let k = j - 16; k < j; k++) {
    const c = text.charCodeAt(k);
    if (c === 95 || c === 45 || c === 46) return true;
    if ((c | 32) === 97) {
      const d = text.charCodeAt(k + 1) | 32;
      if (d === 105 || d === 122) return true; // ai, az
    }
  }
  return false;
}

/** Zero-width and soft-hyphen characters: invisible joiners an agent can sprinkle into a token. */
const INVISIBLE = ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad"];
const INVISIBLE_SET = new Set(INVISIBLE.map((c) => c.charCodeAt(0)));
/** The invisible joiners above U+00FF (every one but the soft hyphen). */
const WIDE_JOINER = /[\u200b-\u200d\u2060\ufeff]/g;
/** A JSON `\n`, `\t` or `\r` followed by a letter or digit (joinedSegments checks the one before). */
const JOIN_ESCAPE = /\\[ntr](?=[A-Za-z0-9])/g;
const ALNUM_CLASS = new Uint8Array(65536);
for (let c = 48; c < 123; c++) {
  if ((c <= 57 || c >= 97 || (c >= 65 && c <= 90)) && !(c > 90 && c < 97)) ALNUM_CLASS[c] = 1;
}
/** 1: token character ([A-Za-z0-9_.+/=~-]); 2: invisible joiner. */
const JOIN_CLASS = new Uint8Array(65536);
// TAIL holds 0 and 1 only: a copy (a loop over 65,536 characters cost 2-5 ms of every process's
// start-up, interpreted).
JOIN_CLASS.set(TAIL);
for (const c of INVISIBLE_SET) JOIN_CLASS[c] = 2;

/** Of the last joinRun call: invisible joiners, JSON whitespace escapes, and the output's end. */
const RUN_COUNTS = new Int32Array(3);
/** Output of joinedSegments, reused by every scan below SCRATCH_KEEP (fresh pages cost faults). */
let joinScratch = new Uint8Array(65_536);

function joinBuffer(size: number): Uint8Array {
  if (joinScratch.length >= size) return joinScratch;
  const grown = new Uint8Array(size);
  if (size <= SCRATCH_KEEP) joinScratch = grown;
  return grown;
}

/**
 * One pass over the run of token characters and joiners that starts at `k` (see
 * joinedSegments): its token characters go to `out` from `o`, and the run's end is returned
 * (counts and the output's end in RUN_COUNTS). One pass instead of two (a read to find the run's
 * end, then a copy); written as a module function, outside joinedSegments' closures (moving it
 * out alone measured no faster: the gain is the single pass and the reused output buffer).
 */
function joinRun(text: string, k: number, n: number, out: Uint8Array, o: number): number {
  let invisible = 0;
  let escapes = 0;
  while (k < n) {
    const c = text.charCodeAt(k);
    const cl = JOIN_CLASS[c] as number;
    if (cl === 1) {
      out[o++] = c;
      k++;
    } else if (cl === 2) {
      invisible++;
      k++;
    } else if (c === 92) {
      // a JSON `\n`, `\t` or `\r` before a token character
      const d = text.charCodeAt(k + 1);
      if ((d === 110 || d === 116 || d === 114) && JOIN_CLASS[text.charCodeAt(k + 2)] === 1) {
        escapes++;
        k += 2;
      } else break;
    } else break;
  }
  RUN_COUNTS[0] = invisible;
  RUN_COUNTS[1] = escapes;
  RUN_COUNTS[2] = o;
  return k;
}

/**
 * The first invisible joiner or JSON `\n`, `\t`, `\r` between two letters or digits in
 * text[from, stop), or -1: joinedSegments' plain pass where candidates come close together. A
 * module function: inside joinedSegments' closures every character read cost a context load (a
 * `\u005c` flood spent about a fifth of its scan here).
 */
function denseJoiner(text: string, from: number, stop: number): number {
  for (let i = from; i < stop; i++) {
    const c = text.charCodeAt(i);
    if (JOIN_CLASS[c] === 2) return i;
    if (c === 92) {
      const d = text.charCodeAt(i + 1);
      if (
        (d === 110 || d === 116 || d === 114) &&
        ALNUM_CLASS[text.charCodeAt(i - 1)] === 1 &&
        ALNUM_CLASS[text.charCodeAt(i + 2)] === 1
      )
        return i;
    }
  }
  return -1;
}

/**
 * Tokens cut by invisible characters (any number) or by JSON whitespace escapes (`\n`, `\t`,
 * `\r`, at least two in one run of token characters): each such run, with the joiners dropped,
 * goes into ONE segment (runs separated by a space, each mapped back to its own span), so a body
 * full of them costs one more layer, not one layer per run.
 *
 * Bound: linear. Joiners are found by native searches (a backslash, and each invisible
 * character, which a one-byte string cannot even hold), each needle searched again only once
 * the scan has passed its last hit; where joiners come close together (floods), the search
 * switches to one plain pass until 1 Ki characters go by without one, so no joiner costs a
 * native call of its own. Only the runs around joiners are read, each character once, and the
 * pieces are written into one buffer (one string for the whole segment).
 */
function joinedSegments(text: string, segs: Segment[], budget: Budget): void {
  const n = text.length;
  /** A JSON `\n`, `\t` or `\r` between two letters or digits starts a run. */
  const escapeStarts = (i: number): boolean => {
    const d = text.charCodeAt(i + 1);
    return (
      (d === 110 || d === 116 || d === 114) &&
      ALNUM_CLASS[text.charCodeAt(i - 1)] === 1 &&
      ALNUM_CLASS[text.charCodeAt(i + 2)] === 1
    );
  };
  /** 1 for an invisible joiner at k, 2 for a JSON whitespace escape before a token character, else 0. */
  const joinerAt = (k: number): number => {
    const c = text.charCodeAt(k);
    if (JOIN_CLASS[c] === 2) return 1;
    if (c === 92) {
      const d = text.charCodeAt(k + 1);
      if ((d === 110 || d === 116 || d === 114) && JOIN_CLASS[text.charCodeAt(k + 2)] === 1)
        return 2;
    }
    return 0;
  };
  // next hit of: the soft hyphen, the other invisible joiners, a backslash escape; -1: not searched
  const memo = new Float64Array(3).fill(-1);
  let dense = 0; // candidates found close together in a row
  let visited = 0;
  /** The next candidate at or after `from`, or -1. */
  const next = (from: number): number => {
    let pos = from;
    for (;;) {
      if (dense >= 8) {
        const stop = Math.min(n, pos + 1024);
        const i = denseJoiner(text, pos, stop);
        if (i !== -1) {
          visited += i - pos;
          return i;
        }
        visited += stop - pos;
        dense = 0;
        if (stop >= n) return -1;
        pos = stop;
      }
      // The soft hyphen (Latin-1) by a native search; the other joiners (above U+00FF) by one
      // class regex: V8 answers it at once for a one-byte string, and on a two-byte string one
      // regex pass cost a fifth of five native searches for characters above U+00FF.
      let best = memo[0] as number;
      if (best < pos) {
        best = text.indexOf("\u00ad", pos);
        if (best === -1) best = Number.POSITIVE_INFINITY;
        memo[0] = best;
      }
      let wide = memo[1] as number;
      if (wide < pos) {
        WIDE_JOINER.lastIndex = pos;
        wide = WIDE_JOINER.test(text) ? WIDE_JOINER.lastIndex - 1 : Number.POSITIVE_INFINITY;
        memo[1] = wide;
      }
      if (wide < best) best = wide;
      let b = memo[2] as number;
      if (b < pos) {
        let at = text.indexOf("\\", pos);
        let misses = 0;
        let from = pos;
        let viaRegex = false;
        while (at !== -1 && !escapeStarts(at)) {
          if (++misses >= 8 && at - from < 16 * misses) {
            // backslashes that start nothing, one every 16 characters or closer: first one
            // regex search that skips every backslash not followed by `n`, `t` or `r` and a
            // letter or digit natively (an escape flood such as `\u005c` costs one search);
            // if what it finds also starts nothing that often (`\n\n\n…`), read by hand
            if (viaRegex) break;
            viaRegex = true;
            misses = 0;
            from = at;
          }
          if (viaRegex) {
            JOIN_ESCAPE.lastIndex = at + 1;
            at = JOIN_ESCAPE.test(text) ? JOIN_ESCAPE.lastIndex - 2 : -1;
          } else at = text.indexOf("\\", at + 1);
        }
        if (at !== -1 && !escapeStarts(at)) {
          dense = 8;
          continue;
        }
        b = at === -1 ? Number.POSITIVE_INFINITY : at;
        memo[2] = b;
      }
      if (b < best) best = b;
      if (best === Number.POSITIVE_INFINITY) return -1;
      dense = best - from < 64 ? dense + 1 : 0;
      return best;
    }
  };
  // every character kept is a token character (ASCII): bytes, made into a one-byte string
  let out: Uint8Array | undefined;
  let o = 0;
  const partAt: number[] = [];
  const partStart: number[] = [];
  const partEnd: number[] = [];
  let covered = 0;
  for (let at = next(0); at !== -1; at = next(covered)) {
    // the run: token characters and joiners around `at`
    let start = at;
    while (start > covered) {
      // an escape first: the `n` of `\\n` is also a token character
      if (start >= 2 + covered && joinerAt(start - 2) === 2) start -= 2;
      else if (JOIN_CLASS[text.charCodeAt(start - 1)] !== 0) start--;
      else break;
    }
    // token characters are written as the run is read, and dropped if it joins nothing
    out ??= joinBuffer(n + 1);
    const from = o;
    const k = joinRun(text, start, n, out, o);
    const invisible = RUN_COUNTS[0] as number;
    const escapes = RUN_COUNTS[1] as number;
    o = RUN_COUNTS[2] as number;
    covered = Math.max(k, at + 1);
    visited += k - start;
    if (visited >= CHECK_EVERY) {
      if (charge(budget, visited)) return;
      visited = 0;
    }
    if (invisible === 0 && escapes < 2) {
      o = from;
      continue;
    }
    if (o - from < 8) {
      o = from;
      continue;
    }
    out[o++] = 32;
    partAt.push(from);
    partStart.push(start);
    partEnd.push(k);
  }
  if (charge(budget, visited)) return;
  if (out === undefined || o === 0) return;
  // Long output goes out in pieces of REGION_PIECE characters, SEPARATED_STRIDE apart (overlap
  // longer than any token), like separated runs: no string above 128 KiB (fresh pages, faults
  // on every scan), and a flood repeating a short unit gives equal pieces, scanned once. Each
  // piece keeps the runs it overlaps (a piece of one run maps to that whole run).
  const total = o - 1;
  let p0 = 0;
  for (let a = 0; a < total; a += SEPARATED_STRIDE) {
    const b = Math.min(total, a + REGION_PIECE);
    while (p0 + 1 < partAt.length && (partAt[p0 + 1] as number) <= a) p0++;
    let p1 = p0;
    while (p1 + 1 < partAt.length && (partAt[p1 + 1] as number) < b) p1++;
    const text = Buffer.from(out.buffer, a, b - a).toString("latin1");
    const start = partStart[p0] as number;
    const end = partEnd[p1] as number;
    if (p0 === p1) segs.push({ start, end, kind: "joined", text });
    else {
      const c = p1 - p0 + 1;
      const parts = { at: new Int32Array(c), start: new Int32Array(c), end: new Int32Array(c) };
      for (let q = 0; q < c; q++) {
        parts.at[q] = Math.max(0, (partAt[p0 + q] as number) - a);
        parts.start[q] = partStart[p0 + q] as number;
        parts.end[q] = partEnd[p0 + q] as number;
      }
      segs.push({ start, end, kind: "joined", text, parts });
    }
    if (b === total) break;
  }
}

/** Base64-alphabet runs of 16+ characters, for scanners without a known-secret index (whose projection pass collects them). */
function findRuns(text: string): RunList {
  const n = text.length;
  const runs = createRunList(Math.max(16, 2 * Math.ceil(n / 17) + 4));
  const at = runs.at;
  let nr = 0;
  let k = 0;
  while (k < n) {
    if (!isB64(text.charCodeAt(k))) {
      k++;
      continue;
    }
    const from = k;
    while (k < n && isB64(text.charCodeAt(k))) k++;
    if (k - from >= 16) {
      at[nr++] = from;
      at[nr++] = k;
    }
  }
  runs.n = nr;
  return runs;
}

const SMALL_BASE64 = new PieceBatch("base64");

/** Bytes one hex-dump line holds at most (`xxd -c 256` is the widest a tool prints by default). */
const DUMP_LINE_BYTES = 256;

/** Output of hexDumpSegments, reused by every scan below SCRATCH_KEEP (fresh pages cost faults). */
let dumpScratch = new Uint8Array(4096);

/** Where dumpLine reads, writes and what it saw. */
const DUMP = { out: dumpScratch, o: 0, wide: true };

/**
 * The hex bytes of the dump line at `k` (an offset of 6 to 16 hex digits, an optional `:`, then
 * groups of 2 to 8 hex digits, one to three spaces apart), written to DUMP.out from DUMP.o;
 * returns the line's end (its line feed, or n), or -1 when the line is not one. The text column
 * (`|…|`, `>…<`, or after the groups) is not read: a group must end at a space, a tab or the
 * line's end. DUMP.wide stays set while every group has 4 digits and no `:` follows an offset
 * (`hexdump`, `od -x`: little-endian 16-bit words).
 */
function dumpLine(text: string, k: number, n: number): number {
  let m = k;
  while (m < n && (text.charCodeAt(m) === 32 || text.charCodeAt(m) === 9)) m++;
  const o = m;
  while (m < n && m - o <= 16 && hexVal(text.charCodeAt(m)) >= 0) m++;
  if (m - o < 6 || m - o > 16) return -1;
  const colon = text.charCodeAt(m) === 58;
  if (colon) m++;
  const out = DUMP.out;
  let w = DUMP.o;
  const limit = w + DUMP_LINE_BYTES;
  let fours = 0;
  let groups = 0;
  while (w < limit) {
    let sp = 0;
    while (m < n && sp < 4 && (text.charCodeAt(m) === 32 || text.charCodeAt(m) === 9)) {
      m++;
      sp++;
    }
    if (sp === 0 || sp > 3) break;
    const g = m;
    while (m < n && m - g <= 8 && hexVal(text.charCodeAt(m)) >= 0) m++;
    const len = m - g;
    const c = m < n ? text.charCodeAt(m) : 10;
    if (len < 2 || len > 8 || (len & 1) !== 0 || !(c === 32 || c === 9 || c === 10 || c === 13)) {
      m = g;
      break;
    }
    if (len === 4) fours++;
    groups++;
    for (let q = g; q < m; q += 2) {
      out[w++] = (hexVal(text.charCodeAt(q)) << 4) | hexVal(text.charCodeAt(q + 1));
    }
  }
  if (groups === 0) return -1;
  DUMP.o = w;
  DUMP.wide = DUMP.wide && !colon && fours === groups;
  // the rest of the line (the text column)
  const eol = text.indexOf("\n", m);
  return eol === -1 ? n : eol;
}

/**
 * Hex dumps (`xxd`, `hexdump -C`, `hexdump`, `od -A x -t x1z`, `od -x`): the bytes of three or
 * more consecutive dump lines, decoded as one layer (and, for 16-bit little-endian words, also
 * byte-swapped), so a token cut across lines of the dump (16 bytes each) is found. Found from
 * the zeros of the offsets (`000`, in every offset below 16 MiB) by a native search; a line that
 * is not a dump line is passed at its first `000`. Lines whose groups would read the text column
 * as hex (its first characters hex digits and a space) are cut to the bytes of the first line.
 */
function hexDumpSegments(text: string, segs: Segment[], budget: Budget, zeros: boolean): void {
  const n = text.length;
  let covered = 0;
  for (
    let z = findNeedle(text, "000", 0, TRIPLE_ZERO_RE, zeros);
    z !== -1;
    z = findNeedle(text, "000", Math.max(z + 3, covered), TRIPLE_ZERO_RE, zeros)
  ) {
    // an offset starts its line (after a few spaces): the line start is at most 24 characters back
    let start = z;
    const limit = Math.max(covered, z - 24);
    while (start > limit && text.charCodeAt(start - 1) !== 10) start--;
    if (start > 0 && text.charCodeAt(start - 1) !== 10) {
      // not an offset: on to the next line (a line of zeros is looked at once)
      const eol = text.indexOf("\n", z);
      if (eol === -1) return;
      covered = eol + 1;
      continue;
    }
    // room for every byte the rest of the text can hold (two digits each)
    const room = ((n - start) >> 1) + DUMP_LINE_BYTES;
    if (dumpScratch.length < room) {
      const grown = new Uint8Array(room);
      if (room <= SCRATCH_KEEP) dumpScratch = grown;
      DUMP.out = grown;
    } else DUMP.out = dumpScratch;
    DUMP.o = 0;
    DUMP.wide = true;
    let lines = 0;
    let k = start;
    let end = start;
    let perLine = -1;
    while (k < n) {
      const before = DUMP.o;
      const e = dumpLine(text, k, n);
      if (e === -1) break;
      // a line that read more than the first line did: its text column looked like hex
      if (perLine === -1) perLine = DUMP.o - before;
      else if (DUMP.o - before > perLine) DUMP.o = before + perLine;
      lines++;
      end = e;
      k = e + 1;
    }
    covered = Math.max(end + 1, z + 3);
    if (charge(budget, end - start)) return;
    if (lines < 3) continue;
    const decoded = Buffer.from(DUMP.out.buffer, 0, DUMP.o);
    const variants = [Buffer.from(decoded)];
    if (DUMP.wide) variants.push(Buffer.from(decoded.subarray(0, DUMP.o & ~1)).swap16());
    for (const b of variants) {
      if (mostlyPrintableBytes(b)) pushDecoded(segs, start, end, "hexdump", b, 1, 1);
      else {
        for (const layer of binaryLayers(b, budget, true)) {
          segs.push({ start, end, kind: `hexdump+${layer.kind}`, text: layer.text });
        }
        if (budget.exceeded) return;
      }
    }
  }
}

/**
 * Full lines decoded again without a wrapped block's last line (see wrappedSegments): 24 lines
 * of 48 or more characters hold the encoding of any token (the longest is under 300 characters,
 * 400 encoded, 800 in UTF-16).
 */
const WRAP_TAIL_LINES = 24;

/** The narrowest line width of a wrapped block (see wrappedSegments). */
const MIN_WRAP_WIDTH = 48;

/**
 * The end of the line break at `k`, or -1: `\n` or `\r\n`, as characters or as JSON escapes
 * (a wrapped block in a JSON string), then spaces or tabs of indentation.
 */
function lineBreakEnd(text: string, k: number, n: number): number {
  let m = k;
  if (text.charCodeAt(m) === 92) {
    if (text.charCodeAt(m + 1) === 114 && text.charCodeAt(m + 2) === 92) m += 2;
    if (text.charCodeAt(m + 1) !== 110) return -1;
    m += 2;
  } else {
    if (text.charCodeAt(m) === 13) m++;
    if (text.charCodeAt(m) !== 10) return -1;
    m++;
  }
  while (m < n && m - k <= 66) {
    const c = text.charCodeAt(m);
    if (c !== 32 && c !== 9) return m;
    m++;
  }
  return m < n ? m : -1;
}

/**
 * The index in `at` of the run that starts the line at `s`, or -1: the run must start there, or
 * one character before when that is the `n` of an escaped line break (`\nQUJD…` is one run).
 */
function runAtLine(at: Int32Array, q: number, nr: number, text: string, s: number): number {
  if (q >= nr) return -1;
  const i = at[q] as number;
  if (i === s) return q;
  if (i === s - 1 && text.charCodeAt(i) === 110 && text.charCodeAt(i - 1) === 92) return q;
  return -1;
}

/**
 * Base64 or hex wrapped on lines of one width (`base64` and MIME at 76, PEM and `openssl` at 64,
 * `xxd -p` at 60, indented or not): two or more lines, each a run of the same width (48 or more,
 * a multiple of 4), then a last line no wider, are joined and decoded as ONE run (see
 * encodedSegments, called on the joined text before this call's own batch starts), so a token
 * whose encoding crosses a line break is found. Each line on its own would decode to a part of
 * a token, found in neither; the block's lines are then not decoded one by one (`blocks`: their
 * spans), since every line holds whole quanta of the block and decodes to a part of it.
 *
 * Bound: linear. Each run is looked at once (a chain continues only through a line break to the
 * next run), each block is joined once, and a block equal to the one just before it (a flood of
 * one block) is not decoded again. A decoded segment maps back to its whole block.
 */
function wrappedSegments(
  text: string,
  runs: RunList,
  segs: Segment[],
  budget: Budget,
  blocks: RunList,
): void {
  const at = runs.at;
  const nr = runs.n;
  const n = text.length;
  let prevFrom = -1;
  let prevTo = -1;
  // the block's lines: [lineStart[l], lineEnd[l]) for l < nl (plain arrays, reused: set by
  // index, never truncated)
  const lineStart: number[] = [];
  const lineEnd: number[] = [];
  let nl = 0;
  // the joined runs (in `out`, each followed by a space), where each starts, the block each
  // comes from, and the blocks with a last line that is not theirs (their joined text's start,
  // where its last WRAP_TAIL_LINES full lines start, where its full lines end, where it ends,
  // and its span)
  const room = 2 * n + (n >> 4) + 64;
  let out = wrapScratch;
  if (out.length < room || wrapBusy) {
    out = Buffer.alloc(room);
    if (room <= SCRATCH_KEEP && !wrapBusy) wrapScratch = out;
  }
  let o = 0;
  // typed arrays sized for the most blocks the runs can make (each block takes a run or more;
  // each tail adds one more joined run), allocated with the first block
  let starts = EMPTY_INTS;
  let runSpans = EMPTY_INTS;
  let tails = EMPTY_INTS;
  let ns = 0;
  let nt = 0;
  let r = 0;
  while (r < nr) {
    const i0 = at[r] as number;
    const first = (at[r + 1] as number) - i0;
    let next = lineBreakEnd(text, i0 + first, n);
    if (next === -1) {
      r += 2;
      continue;
    }
    // The lines' width: the first run's, or the second's when that is longer: then the first
    // line has something before the block on it (`data: QUJD…`).
    const q2 = runAtLine(at, r + 2, nr, text, next);
    const second = q2 === -1 ? 0 : (at[q2 + 1] as number) - next;
    const width = Math.max(first, second);
    // encoders wrap at 60 (`xxd -p`), 64 (PEM, `openssl`) or 76 (`base64`, MIME) characters, on a
    // whole base64 quantum; shorter lines of one length are prose or code as often as data, and
    // joining them would make tokens of their words
    if (width < MIN_WRAP_WIDTH || (width & 3) !== 0) {
      r += 2;
      continue;
    }
    lineStart[0] = i0;
    lineEnd[0] = i0 + first;
    nl = 1;
    // the chain: each next run right after a line break, none wider, the first narrower one last
    let last = r;
    while (next !== -1) {
      const q = runAtLine(at, last + 2, nr, text, next);
      if (q === -1) break;
      const e = at[q + 1] as number;
      const w = e - next;
      if (w > width) break;
      last = q;
      lineStart[nl] = next;
      lineEnd[nl++] = e;
      if (w < width) {
        next = -1;
        break;
      }
      next = lineBreakEnd(text, e, n);
    }
    if (charge(budget, 8 + nl)) return;
    // then a last line too short to be a run (of hex digits only, after lines of hex: a word
    // after a hex block would make it base64), then padding
    let end = lineEnd[nl - 1] as number;
    const full = nl;
    if (next !== -1) {
      let hex = true;
      for (let k = i0 + first - 1; k >= i0 && hex; k--) hex = hexVal(text.charCodeAt(k)) >= 0;
      let k = next;
      while (k < n && k - next < width && isB64(text.charCodeAt(k))) {
        if (hex && hexVal(text.charCodeAt(k)) < 0) break;
        k++;
      }
      if (k > next && (k === n || !isB64(text.charCodeAt(k)))) {
        lineStart[nl] = next;
        lineEnd[nl++] = k;
        end = k;
      }
    }
    if (nl === 1) {
      r += 2; // one line: nothing wrapped
      continue;
    }
    let pad = 0;
    while (pad < 2 && end < n && text.charCodeAt(end) === 61) {
      end++;
      pad++;
    }
    lineEnd[nl - 1] = end;
    if (charge(budget, end - i0)) return;
    if (!samePiece(text, i0, end, prevFrom, prevTo)) {
      // the lines without their breaks, decoded here as one run: what the block's lines decode
      // to, in the same layer; written into one buffer (base64 and hex are ASCII), one string
      // for every block at the end
      const at0 = o;
      let fullEnd = o;
      let tailFrom = o;
      for (let l = 0; l < nl; l++) {
        if (l === full - WRAP_TAIL_LINES) tailFrom = o;
        for (let k = lineStart[l] as number, e = lineEnd[l] as number; k < e; k++) {
          out[o++] = text.charCodeAt(k);
        }
        if (l === full - 1) fullEnd = o;
      }
      if (starts.length === 0) {
        const most = (nr >> 1) + 1;
        if (wrapBusy || wrapStarts.length < 2 * most) {
          starts = new Int32Array(2 * most);
          runSpans = new Int32Array(4 * most);
          tails = new Int32Array(6 * most);
          if (!wrapBusy && 24 * most <= SCRATCH_KEEP) {
            wrapStarts = starts;
            wrapSpans = runSpans;
            wrapTails = tails;
          }
        } else {
          starts = wrapStarts;
          runSpans = wrapSpans;
          tails = wrapTails;
        }
      }
      if (nl > full) {
        tails[nt++] = at0;
        tails[nt++] = tailFrom;
        tails[nt++] = fullEnd;
        tails[nt++] = o;
        tails[nt++] = i0;
        tails[nt++] = end;
      }
      out[o++] = 32;
      runSpans[2 * ns] = i0;
      runSpans[2 * ns + 1] = end;
      starts[ns++] = at0;
    }
    prevFrom = i0;
    prevTo = end;
    blocks.at[blocks.n++] = i0;
    blocks.at[blocks.n++] = end;
    while (r < nr && (at[r] as number) < end) r += 2;
  }
  if (ns === 0 || budget.exceeded) return;
  // The joined runs decode in chunks of about WRAP_CHUNK characters, a space between runs (it
  // ends every run, and is no line break: the joined runs must not be taken for a wrapped block
  // themselves): a flood of small blocks costs a few calls, not one call's fixed cost per block,
  // and no string of a megabyte (V8 allocates those outside its young generation, several times
  // slower per byte). Each segment is mapped back to the block(s) its text came from.
  const blockCount = ns;
  const blocksEnd = o;
  const spanOf = (from: number, to: number, e0: number, e1: number): [number, number] => {
    const a = entryOf(starts, e0, e1, from);
    const b = entryOf(starts, e0, e1, Math.max(from, to - 1));
    return [
      Math.min(runSpans[2 * a] as number, runSpans[2 * b] as number),
      Math.max(runSpans[2 * a + 1] as number, runSpans[2 * b + 1] as number),
    ];
  };
  const decodeChunk = (e0: number, e1: number, chunk: string, base: number) => {
    for (const seg of encodedSegments(chunk, budget)) {
      const [start, end] = spanOf(base + seg.start, base + seg.end, e0, e1);
      const mapped: Segment = { start, end, kind: `wrapped:${seg.kind}`, text: seg.text };
      const inner = seg.parts;
      if (inner) {
        const c = inner.at.length;
        const parts = { at: inner.at, start: new Int32Array(c), end: new Int32Array(c) };
        for (let q = 0; q < c; q++) {
          const span = spanOf(
            base + (inner.start[q] as number),
            base + (inner.end[q] as number),
            e0,
            e1,
          );
          parts.start[q] = span[0];
          parts.end[q] = span[1];
        }
        mapped.parts = parts;
      }
      segs.push(mapped);
    }
  };
  wrapBusy = true;
  try {
    let t = 0;
    for (let e0 = 0; e0 < blockCount && !budget.exceeded; ) {
      const cs = starts[e0] as number;
      let e1 = e0 + 1;
      while (e1 < blockCount && (starts[e1] as number) - cs < WRAP_CHUNK) e1++;
      const ce = e1 < blockCount ? (starts[e1] as number) : blocksEnd;
      const chunk = latin1String(out, cs, ce);
      // A last line that is not the block's (a word on the next line) spoils the end of a
      // container (its trailer) or of UTF-16 text (its last character) when decoded with it:
      // for those the full lines also decode alone, all of them for a container, the last few (a
      // token at the end) for UTF-16. Plain text loses nothing: full lines hold whole quanta, so
      // the word only adds bytes after the block's own. They decode after every block, each
      // mapped to its block's span.
      for (; t < nt && (tails[t] as number) < ce; t += 6) {
        const at0 = (tails[t] as number) - cs;
        const fullEnd = tails[t + 2] as number;
        const blockEnd = (tails[t + 3] as number) - cs;
        const container = containerHead(chunk, at0);
        if (
          container ||
          plausibleBase64Binary(chunk, at0, blockEnd) ||
          (blockEnd - at0 >= 24 && plausibleHexBinary(chunk, at0))
        ) {
          const from = container ? (tails[t] as number) : (tails[t + 1] as number);
          runSpans[2 * ns] = tails[t + 4] as number;
          runSpans[2 * ns + 1] = tails[t + 5] as number;
          starts[ns++] = o;
          out.copyWithin(o, from, fullEnd);
          o += fullEnd - from;
          out[o++] = 32;
        }
      }
      decodeChunk(e0, e1, chunk, cs);
      e0 = e1;
    }
    for (let e0 = blockCount; e0 < ns && !budget.exceeded; ) {
      const cs = starts[e0] as number;
      let e1 = e0 + 1;
      while (e1 < ns && (starts[e1] as number) - cs < WRAP_CHUNK) e1++;
      const ce = e1 < ns ? (starts[e1] as number) : o;
      decodeChunk(e0, e1, latin1String(out, cs, ce), cs);
      e0 = e1;
    }
  } finally {
    wrapBusy = false;
  }
}

/**
 * `bytes[from, to)` as a string. Above 64 KiB it is joined from 64 KiB pieces: Node returns a
 * string of a megabyte as an external string, which its own base64 decoder then reads several
 * times slower than a string of V8's heap.
 */
function latin1String(bytes: Buffer, from: number, to: number): string {
  if (to - from <= 65_536) return bytes.toString("latin1", from, to);
  const pieces: string[] = [];
  for (let k = from; k < to; k += 65_536) {
    pieces.push(bytes.toString("latin1", k, Math.min(to, k + 65_536)));
  }
  return pieces.join("");
}

/** Characters of joined text wrappedSegments decodes in one call (see there). */
const WRAP_CHUNK = 60_000;

/** The entry of `starts[e0, e1)` (ascending) whose text holds `offset`. */
function entryOf(starts: Int32Array, e0: number, e1: number, offset: number): number {
  let lo = e0;
  let hi = e1 - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if ((starts[mid] as number) <= offset) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

/**
 * A container's magic at `i`: base64 of gzip (`H4sI`), zip (`UEsDB`) or zlib (`e` and A-P), or
 * hex of gzip (`1f8b`), zip (`504b`) or zlib (`78`), in either case.
 */
function containerHead(text: string, i: number): boolean {
  if (base64Magic(text, i)) return true;
  const h0 = hexVal(text.charCodeAt(i));
  const h1 = hexVal(text.charCodeAt(i + 1));
  if (h0 === 7) return h1 === 8;
  if (h0 === 1) return h1 === 15 && hexVal(text.charCodeAt(i + 2)) === 8;
  if (h0 === 5) return h1 === 0 && hexVal(text.charCodeAt(i + 2)) === 4;
  return false;
}

/** Set while wrappedSegments decodes from wrapScratch: a nested call must not write to it. */
let wrapBusy = false;

const EMPTY_INTS = new Int32Array(0);

/** Joined lines of wrappedSegments and its spans, reused by every scan below SCRATCH_KEEP. */
let wrapStarts = EMPTY_INTS;
let wrapSpans = EMPTY_INTS;
let wrapTails = EMPTY_INTS;
let wrapScratch = Buffer.alloc(65_536);

/** runMay's answer: the run may decode as base64, as hex, as base32 (0: none of them). */
const MAY_B64 = 1;
const MAY_HEX = 2;
const MAY_B32 = 4;

/**
 * Which decodings of the run `text[i, j)` are worth trying (MAY_* bits; 0 for none), from its
 * first characters and a few sampled groups: text, a container (gzip, zlib, zip, UTF-16), text
 * behind a few binary or non-ASCII bytes, or raw deflate (no magic: its first block header is
 * checked in JS on the first 9 bytes only). A line of a wrapped block (`inBlock`) decodes with
 * its block, unless it opens like a container or UTF-16 itself. A function of its own so that
 * V8 can inline these small checks here: inside encodedSegments its inlining budget was spent,
 * and each was a call for each run of a flood.
 */
function runMay(text: string, i: number, j: number, inBlock: boolean): number {
  const len = j - i;
  const b64Binary = plausibleBase64Binary(text, i, j);
  if (inBlock && !b64Binary && !(len >= 24 && plausibleHexBinary(text, i))) return 0;
  const maybeB64 =
    b64Binary ||
    (len >= 24 && embeddedGzip(text, i, j, false)) ||
    plausibleBase64Text(text, i, j) ||
    (len >= 24 && plausibleBase64Text(text, i + 8, j)) ||
    // (the last 24 characters: from 36 on, as below that they start at 8, checked just above)
    (len >= 36 && plausibleBase64Text(text, i + ((len - 24) & ~3), j)) ||
    (len >= 28 && plausibleDeflate(HEAD, 0, Math.min(9, base64Head(text, i, j, 12))));
  const maybeHex =
    len >= 24 &&
    (plausibleHexText(text, i, j) ||
      embeddedGzip(text, i, j, true) ||
      plausibleHexBinary(text, i) ||
      (len >= 40 &&
        hexVal(text.charCodeAt(i)) >= 0 &&
        plausibleDeflate(HEAD, 0, Math.min(8, hexHead(text, i, j)))));
  const maybeB32 = plausibleBase32Text(text, i, j);
  return (maybeB64 ? MAY_B64 : 0) | (maybeHex ? MAY_HEX : 0) | (maybeB32 ? MAY_B32 : 0);
}

/**
 * Finds encoded regions in one linear pass: escape regions, base64/base32/hex runs, binary
 * containers (gzip, zlib, zip, UTF-16, raw deflate) at the start of the text or inside a decoded
 * run, and joined (invisible-character or JSON-escape cut) tokens. Every pass is charged to the
 * budget; when it runs out, what was found so far is returned and the budget says why.
 * Bound: O(n) to find runs; decoding output is at most the run length, except decompression,
 * which is capped for the whole scan.
 */
export function encodedSegments(text: string, budget: Budget, knownRuns?: RunList): Segment[] {
  const segs: Segment[] = [];
  const n = text.length;
  if (charge(budget, n)) return segs;
  // A layer that is itself a container (a gzip body without Content-Encoding, a zip, UTF-16).
  if (startsLikeBinary(text)) {
    for (const layer of binaryLayers(latin1Bytes(text), budget, false)) {
      segs.push({ start: 0, end: n, kind: layer.kind, text: layer.text });
    }
    if (budget.exceeded) return segs;
  }
  joinedSegments(text, segs, budget);
  const zeros = denseChar(text, 48);
  if (findNeedle(text, "000", 0, TRIPLE_ZERO_RE, zeros) !== -1) {
    hexDumpSegments(text, segs, budget, zeros);
  }
  // Characters interleaved with one separator (`g-h-p-_-…`, `\\ u 0 0 7 3`): known secrets
  // survive them through the projection, token patterns need the joined text.
  separatedSegments(text, segs, budget);
  // Native substring searches decide whether the escape passes can find anything at all.
  const pct = text.indexOf("%") !== -1;
  if (pct || findNeedle(text, "u\\", 0, REVERSED_U_RE, denseChar(text, 117)) !== -1) {
    reversedEscapeSegments(text, segs, budget);
  }
  if (charge(budget, n)) return segs;
  let covered = 0;
  const maybeEscapes = pct || text.indexOf("&#") !== -1 || backslashEscapeLead(text);
  ESC_RE.lastIndex = maybeEscapes ? 0 : n;
  for (let m = ESC_RE.exec(text); m !== null; m = ESC_RE.exec(text)) {
    if (m.index < covered) continue;
    let start = m.index;
    while (start > covered && isEscapeRegionChar(text.charCodeAt(start - 1))) start--;
    const j = escapeRegionEnd(text, m.index + 1);
    // a long region is cut in decoded characters (see ESCAPE_PIECE): a token written entirely
    // as escapes straddles no cut unseen
    if (j - start > REGION_PIECE) {
      if (!escapePieces(text, start, j, false, segs, budget)) return segs;
      covered = j;
      ESC_RE.lastIndex = j;
      continue;
    }
    let prevFrom = -1;
    let prevTo = -1;
    let prevText: string | undefined;
    for (let from = start; from < j; from += REGION_STRIDE) {
      const to = Math.min(j, from + REGION_PIECE);
      if (charge(budget, 2 * (to - from))) return segs;
      let decoded: string | undefined;
      if (samePiece(text, from, to, prevFrom, prevTo)) decoded = prevText;
      else {
        decoded = unescapeRegion(text, from, to);
        // a region with nothing to decode (`&#&#&#…`) is not a layer: rescanning it repeats work
        if (decoded.length === to - from && decoded === text.slice(from, to)) decoded = undefined;
      }
      if (decoded !== undefined)
        segs.push({ start: from, end: to, kind: "escapes", text: decoded });
      prevFrom = from;
      prevTo = to;
      prevText = decoded;
      if (to === j) break;
    }
    covered = j;
    ESC_RE.lastIndex = j;
  }
  let runs = knownRuns;
  if (!runs) {
    // runs of the base64url ∪ base64 alphabet, 16 or more: a plain loop (a regex with `{16,}`
    // overflowed V8's backtracking stack on runs of millions of characters)
    runs = findRuns(text);
    if (charge(budget, n)) return segs;
  }
  // Wrapped blocks decode joined (next layer), not line by line: each line's decoding is a part
  // of the block's (every line holds whole quanta), and per-line pieces cost several times more.
  const blocks = createRunList(runs.n);
  wrappedSegments(text, runs, segs, budget, blocks);
  // (after the nested call in wrappedSegments, which uses them for its own text)
  EMBEDDED_HITS.fill(-1);
  if (budget.exceeded) return segs;
  let block = 0;
  const runAt = runs.at;
  // one batch per module: encodedSegments never runs inside itself (decoded layers are scanned
  // after it returns), and every call starts it empty
  const small = SMALL_BASE64;
  small.reset();
  // A run equal to the run just before it, a few characters after it, whose only outcome was a
  // piece in the batch (a flood repeating one run: JWT headers chained by dots) has the same
  // outcome: that piece's input span grows over it instead of decoding and scanning it again, so
  // a finding in the piece covers every copy. Equal text costs one comparison, not five passes.
  let repeatAt = -1;
  let repeatLen = -1;
  // The last run that came to nothing (no segment, no piece), and the state before the run just
  // processed: a run's outcome depends on its own text only, so a later run equal to one that
  // came to nothing, however far after it (gzip/zlib/zip magic floods, a PEM body repeated under
  // each header), comes to nothing again without being looked at.
  let emptyAt = -1;
  let emptyLen = -1;
  let lastAt = -1;
  let lastLen = -1;
  let segsAt = 0;
  let piecesAt = 0;
  let lastEndAt = -1;
  for (let r = 0; r < runs.n; r += 2) {
    const i = runAt[r] as number;
    const j = runAt[r + 1] as number;
    const len = j - i;
    if (charge(budget, 64)) return segs;
    if (
      lastLen !== -1 &&
      segs.length === segsAt &&
      small.pieces === piecesAt &&
      small.lastEnd === lastEndAt
    ) {
      emptyAt = lastAt;
      emptyLen = lastLen;
    }
    lastLen = -1;
    let emptyCost = 0;
    if (emptyLen === len) {
      let k = 0;
      while (k < len && text.charCodeAt(emptyAt + k) === text.charCodeAt(i + k)) k++;
      if (charge(budget, k)) return segs;
      if (k === len) {
        repeatLen = -1;
        continue;
      }
      emptyCost = k;
    }
    const previous = repeatLen;
    repeatLen = -1;
    if (previous === len && i - small.lastEnd <= REPEAT_GAP && i - repeatAt >= len) {
      let k = 0;
      while (k < len && text.charCodeAt(repeatAt + k) === text.charCodeAt(i + k)) k++;
      if (charge(budget, k)) return segs;
      if (k === len) {
        let end = j;
        while (end < n && end - j < 2 && text.charCodeAt(end) === 61) end++;
        small.extendLast(end);
        // A periodic flood (JWT headers chained by dots): every later run that starts `period`
        // after the one before, with the same length and the same text, goes through exactly the
        // steps this run went through (the empty-run comparison stops at the same character, the
        // repeat comparison matches, the piece grows over it). Taken here in one tight loop: its
        // characters compared once against the copy a period before, the same work charged per
        // run, and nothing else read.
        if (runFastForward) {
          const period = i - repeatAt;
          let cur = i;
          let curEnd = end;
          let verified = j;
          while (r + 2 < runs.n) {
            const i2 = runAt[r + 2] as number;
            const j2 = runAt[r + 3] as number;
            if (i2 - cur !== period || j2 - i2 !== len || i2 - curEnd > REPEAT_GAP) break;
            if (verified < i2) verified = i2;
            while (
              verified < j2 &&
              text.charCodeAt(verified) === text.charCodeAt(verified - period)
            )
              verified++;
            if (verified < j2) break;
            if (charge(budget, 64 + emptyCost + len)) return segs;
            let e2 = j2;
            while (e2 < n && e2 - j2 < 2 && text.charCodeAt(e2) === 61) e2++;
            small.extendLast(e2);
            cur = i2;
            curEnd = e2;
            r += 2;
          }
          repeatAt = cur;
        } else {
          repeatAt = i;
        }
        repeatLen = len;
        continue;
      }
    }
    const segsBefore = segs.length;
    lastAt = i;
    lastLen = len;
    segsAt = segsBefore;
    piecesAt = small.pieces;
    lastEndAt = small.lastEnd;
    // A token written backwards ends with its prefix reversed (`…_phg`, `…AIKA`, `…-bxox`),
    // give or take a few characters stuck after it: only the last 16 characters are looked at.
    if (len >= 20 && reversedHint(text, j)) {
      const tail = text.slice(j - 16, j).toLowerCase();
      if (REVERSED_PREFIXES.some((p) => tail.includes(p))) {
        const from = Math.max(i, j - 4096);
        segs.push({ start: from, end: j, kind: "reversed", text: reverseString(text, from, j) });
      }
    }
    // A line of a wrapped block is decoded with the block, unless it opens like a container or
    // UTF-16 itself: then also on its own, as before, so that a line put before or after a
    // one-line container (joined with it into one block) cannot hide it.
    while (block < blocks.n && (blocks.at[block + 1] as number) <= i) block += 2;
    const inBlock = block < blocks.n && (blocks.at[block] as number) <= i;
    const may = runMay(text, i, j, inBlock);
    if (may === 0) continue;
    const maybeB64 = (may & MAY_B64) !== 0;
    const maybeHex = (may & MAY_HEX) !== 0;
    const maybeB32 = (may & MAY_B32) !== 0;
    if (charge(budget, 3 * len)) return segs;
    let end = j;
    while (end < n && end - j < 2 && text.charCodeAt(end) === 61) end++;
    let upper = 0;
    let lower = 0;
    let digit = 0;
    let hexOnly = true;
    let b32 = true;
    for (let k = i; k < j; k++) {
      const d = text.charCodeAt(k);
      if (d >= 65 && d <= 90) {
        upper++;
        if (d > 70) hexOnly = false;
      } else if (d >= 97 && d <= 122) {
        lower++;
        if (d > 102) hexOnly = false;
      } else if (d >= 48 && d <= 57) {
        digit++;
        if (d < 50 || d > 55) b32 = false;
      } else {
        hexOnly = false;
        b32 = false;
      }
      // nothing left to learn: not hex, not base32, both cases seen (base64 wants exactly that)
      if (!hexOnly && !b32 && upper > 0 && lower > 0) break;
    }
    // Binary results (random-looking runs decode to garbage) are not rescanned unless they open
    // as a container (gzip, zlib, zip, UTF-16) or inflate as raw deflate: secrets, their encodings
    // and nested encodings all decode to printable text.
    // hex and base32 alphabets are case-insensitive: mixed-case hex and lowercase base32 decode too
    if (maybeHex && hexOnly) {
      const bytes = Buffer.from(text.slice(i, i + (len & ~1)), "hex");
      if (mostlyPrintableBytes(bytes)) {
        pushDecoded(segs, i, end, "hex", bytes, 2, 1);
      } else {
        for (const layer of binaryLayers(bytes, budget, true)) {
          segs.push({ start: i, end, kind: `hex+${layer.kind}`, text: layer.text });
        }
        if (budget.exceeded) return segs;
      }
    }
    if (maybeB32 && b32 && (upper === 0) !== (lower === 0) && digit > 0) {
      const decoded = decodeBase32(text.slice(i, j));
      if (mostlyPrintable(decoded)) segs.push({ start: i, end, kind: "base32", text: decoded });
    }
    if (maybeB64 && upper > 0 && lower > 0 && len < SHORT_RUN) {
      // short runs (floods of them) are decoded in JS straight into one batch buffer
      const at = small.n;
      const o = decodeBase64Into(text, i, j, small.target, at);
      if (printableBytes(small.target, at, o)) {
        small.keep(o, i, end, segs);
        if (segs.length === segsBefore && small.lastEnd === end) {
          repeatAt = i;
          repeatLen = len;
        }
      } else {
        for (const layer of binaryLayers(small.view(at, at + o), budget, true)) {
          segs.push({ start: i, end, kind: `base64+${layer.kind}`, text: layer.text });
        }
        if (budget.exceeded) return segs;
        if (printableRun(small.target, at, o)) {
          const tail = printableStretch(small.view(at, at + o).toString("latin1"));
          if (tail !== undefined) segs.push({ start: i, end, kind: "base64", text: tail });
        }
      }
    } else if (maybeB64 && upper > 0 && lower > 0) {
      // Node's base64 decoder also reads the URL-safe alphabet (`-`, `_`): no rewriting pass
      const bytes = Buffer.from(text.slice(i, j), "base64");
      if (mostlyPrintableBytes(bytes)) {
        pushDecoded(segs, i, end, "base64", bytes, 4, 3);
      } else {
        for (const layer of binaryLayers(bytes, budget, true)) {
          segs.push({ start: i, end, kind: `base64+${layer.kind}`, text: layer.text });
        }
        if (budget.exceeded) return segs;
        // binary or non-ASCII bytes before a base64'd token: the printable stretches decode too
        // (judged on the bytes first: a megabyte of garbage is not made a string to find none)
        if (printableRun(bytes, 0, bytes.length)) {
          const tail = printableStretch(bytes.toString("latin1"));
          if (tail !== undefined) segs.push({ start: i, end, kind: "base64", text: tail });
        }
      }
    }
  }
  small.flush(segs);
  return segs;
}

/**
 * The printable ASCII part of mostly-binary decoded bytes (each stretch of at least 16 printable
 * characters, joined by a space), when there is one: a token base64'd behind a few binary or
 * non-ASCII bytes.
 */
function printableStretch(decoded: string): string | undefined {
  let out = "";
  let from = -1;
  const n = decoded.length;
  for (let k = 0; k <= n; k++) {
    const c = k < n ? decoded.charCodeAt(k) : -1;
    const printable = c >= 32 && c < 127;
    if (printable && from === -1) from = k;
    if (!printable && from !== -1) {
      if (k - from >= 16) out += `${decoded.slice(from, k)} `;
      from = -1;
    }
  }
  return out.length > 0 ? out : undefined;
}

/**
 * Base64 whose bytes hold a gzip member after other bytes (`(echo hi; gzip -c f) | base64`): the
 * magic 1F 8B 08 encodes as `H4sI` at a quantum's start, `+LC` (`-LC`) one byte in, `fiw` two
 * bytes in; in hex, `1f8b08` at an even offset. binaryLayers then finds the member. Native
 * searches whose next hit is remembered per needle (EMBEDDED_HITS, reset by encodedSegments for
 * each text): a needle is searched again only once the runs have passed its last hit, so the
 * searches of one text cost one pass over it, not one pass per run.
 */
function embeddedGzip(text: string, i: number, j: number, hex: boolean): boolean {
  const from = hex ? 4 : 0;
  const to = hex ? 6 : 4;
  const step = hex ? 2 : 4;
  for (let q = from; q < to; q++) {
    const needle = EMBEDDED_NEEDLES[q] as string;
    const phase = EMBEDDED_PHASE[q] as number;
    let at = EMBEDDED_HITS[q] as number;
    if (at === -2) continue; // none left in this text
    if (at <= i) at = text.indexOf(needle, i + 1);
    while (at !== -1 && at + needle.length <= j) {
      if ((at - i) % step === phase) {
        EMBEDDED_HITS[q] = at;
        return true;
      }
      at = text.indexOf(needle, at + 1);
    }
    EMBEDDED_HITS[q] = at === -1 ? -2 : at;
  }
  return false;
}
const EMBEDDED_NEEDLES = ["H4sI", "+LC", "-LC", "fiw", "1f8b08", "1F8B08"];
const EMBEDDED_PHASE = [0, 2, 2, 3, 0, 0];
/** The next hit of each needle at or after the run being looked at; -1: not searched; -2: none. */
const EMBEDDED_HITS = new Float64Array(EMBEDDED_NEEDLES.length);

/** Base64 of a container: gzip (`H4sI`), zlib (`eJ`, `eN`, `eF`, `eA`), zip (`UEsDB`), UTF-16 BOMs. */
function plausibleBase64Binary(text: string, i: number, j: number): boolean {
  if (j - i < 12) return false;
  // one switch on the first character, then at most one header decode: floods of `H4sIAAAA…`,
  // `eJwAAAA…` or JWT headers (`eyJ…`) cost a few character reads each, never a zlib call
  const magic = base64Magic(text, i);
  if (!magic) {
    // a UTF-16 byte-order mark, standard or URL-safe
    const c0 = text.charCodeAt(i);
    if (c0 === 47 /* / */ && (text.startsWith("//4", i) || text.startsWith("/v8", i))) return true;
    if (c0 === 95 /* _ */ && (text.startsWith("_v8", i) || text.startsWith("__4", i))) return true;
  }
  // a container's header is checked on its first 24 bytes before the run is decoded
  if (magic && plausibleContainer(HEAD, base64Head(text, i, j))) return true;
  return utf16Base64(text, i, j);
}

/** Base64 of a gzip (`H4sI`), zip (`UEsDB`) or zlib (`e` and A-P) header at `i`. */
function base64Magic(text: string, i: number): boolean {
  const c0 = text.charCodeAt(i);
  if (c0 === 72) return text.startsWith("H4sI", i);
  if (c0 === 85) return text.startsWith("UEsDB", i);
  return c0 === 101 && ZLIB_SECOND[text.charCodeAt(i + 1)] === 1;
}

/**
 * Second characters of a base64 zlib header: CMF 0x78 is `e` plus two zero bits, so the second
 * character is A-P (`eJ`, `eN`, `eF`, `eA`, …); `ey` (a JWT's `{"`) can never start one.
 */
const ZLIB_SECOND = new Uint8Array(65536);
for (const ch of "ABCDEFGHIJKLMNOP") ZLIB_SECOND[ch.charCodeAt(0)] = 1;

/** The first bytes of a gzip, zlib or zip blob (`head[0, n)`): a header whose deflate stream can hold text. */
function plausibleContainer(head: Uint8Array, n: number): boolean {
  if (n < 2) return false;
  const b0 = head[0] as number;
  const b1 = head[1] as number;
  if (b0 === 0x1f && b1 === 0x8b) {
    if (n < 4 || head[2] !== 8) return false;
    return head[3] !== 0 || plausibleDeflate(head, 10, n);
  }
  if (b0 === 0x50 && b1 === 0x4b) {
    // a local file header: stored or deflated, and something in it (or sized later: flag bit 3)
    if (n < 22) return false;
    const method = (head[8] as number) | ((head[9] as number) << 8);
    const sizedLater = ((head[6] as number) & 8) !== 0;
    const size =
      (head[18] as number) |
      ((head[19] as number) << 8) |
      ((head[20] as number) << 16) |
      ((head[21] as number) << 24);
    return (method === 0 || method === 8) && (sizedLater || size !== 0);
  }
  return (b0 & 0x0f) === 8 && ((b0 << 8) | b1) % 31 === 0 && plausibleDeflate(head, 2, n);
}

/**
 * Base64 of ASCII UTF-16: every group of 8 characters (6 bytes, 3 code units) has zero bits where
 * the zero bytes fall. Zero bytes at odd offsets (UTF-16LE, or BE after one stray byte): the 2nd
 * character's low 4 bits or the 3rd's high 4 (`YQBi` for 61 00 62); at even offsets (UTF-16BE,
 * or LE after one stray byte): the 1st or the 4th character is `A` (`AGEA` for 00 61 00).
 */
export function utf16Base64(text: string, i: number, j: number): boolean {
  if (j - i < 16) return false;
  let odd = 0;
  let even = 0;
  const groups = Math.min(8, (j - i) >> 3);
  // at most a quarter of the groups may miss: stop once both counts have missed more
  const misses = groups >> 2;
  for (let g = 0, k = i; g < groups; g++, k += 8) {
    const c0 = B64_INDEX[text.charCodeAt(k)] as number;
    const c1 = B64_INDEX[text.charCodeAt(k + 1)] as number;
    const c2 = B64_INDEX[text.charCodeAt(k + 2)] as number;
    const c3 = B64_INDEX[text.charCodeAt(k + 3)] as number;
    if ((c1 >= 0 && (c1 & 15) === 0) || (c2 >= 0 && c2 >> 2 === 0)) odd++;
    if (c0 === 0 || c3 === 0) even++;
    if (g + 1 - odd > misses && g + 1 - even > misses) return false;
  }
  return groups >= 2 && (odd >= groups * 0.75 || even >= groups * 0.75);
}

/**
 * Hex of a container: gzip `1f8b`, zlib `78..`, zip `504b0304`, UTF-16 BOMs or NUL-interleaved
 * ASCII (`4100 4200`, `0041 0042`), in either case. Reads the first 8 digits' values: called on
 * every run of a text, it allocates nothing.
 */
export function plausibleHexBinary(text: string, i: number): boolean {
  const h0 = hexVal(text.charCodeAt(i));
  const h1 = hexVal(text.charCodeAt(i + 1));
  if (h0 < 0 || h1 < 0) return false;
  if (h0 === 7 && h1 === 8) return true; // zlib
  const h2 = hexVal(text.charCodeAt(i + 2));
  const h3 = hexVal(text.charCodeAt(i + 3));
  if (h2 < 0 || h3 < 0) return false;
  const w0 = (h0 << 12) | (h1 << 8) | (h2 << 4) | h3;
  if (w0 === 0x1f8b || w0 === 0xfffe || w0 === 0xfeff) return true;
  const h4 = hexVal(text.charCodeAt(i + 4));
  const h5 = hexVal(text.charCodeAt(i + 5));
  const h6 = hexVal(text.charCodeAt(i + 6));
  const h7 = hexVal(text.charCodeAt(i + 7));
  if (h4 < 0 || h5 < 0 || h6 < 0 || h7 < 0) return false;
  const w1 = (h4 << 12) | (h5 << 8) | (h6 << 4) | h7;
  if (w0 === 0x504b && w1 === 0x0304) return true; // zip
  // ASCII with a NUL after (LE) or before (BE) each character: [2-7]x00 twice, or 00[2-7]x twice
  const le = (w: number) => (w & 0xff) === 0 && w >> 12 >= 2 && w >> 12 <= 7;
  const be = (w: number) => w >> 8 === 0 && (w & 0xf0) >> 4 >= 2 && (w & 0xf0) >> 4 <= 7;
  return (le(w0) && le(w1)) || (be(w0) && be(w1));
}

/**
 * Everything a scanner derives from its rule set alone: the keyword automaton and the per-keyword
 * and per-rule tables of the hot hit loop. Immutable once built, so every scanner of a process
 * with the same rules shares one (`ruleTables`); what depends on a scanner's known secrets and
 * options, and the stateful RegExp objects, are built per scanner.
 */
interface RuleTables {
  rules: readonly TokenRule[];
  /** The rule objects when built: a rules array changed in place since then is built again. */
  members: readonly TokenRule[];
  keywords: string[];
  keywordRules: number[][];
  ac: AhoCorasick;
  acTables: AhoTables;
  kwLen: number[];
  pairMinTail: Int32Array[];
  kwMaxTail: Int32Array;
  kwMinTail: Int32Array;
  afterChars: string[];
  ruleAfter: (Int32Array | undefined)[];
  boundedSources: ({ source: string; flags: string } | undefined)[];
  leadBlocked: (Uint8Array | undefined)[];
  memoKeyword: Int32Array;
  kwLeadBlocked: (Uint8Array | undefined)[];
}

const ruleTableCache = new WeakMap<readonly TokenRule[], RuleTables>();
let ruleTableBuildCount = 0;

/** How many times this process built rule tables (for tests: a second scanner reuses them). */
export function ruleTableBuilds(): number {
  return ruleTableBuildCount;
}

function ruleTables(rules: readonly TokenRule[]): RuleTables {
  const cached = ruleTableCache.get(rules);
  if (
    cached !== undefined &&
    cached.members.length === rules.length &&
    cached.members.every((r, i) => r === rules[i])
  ) {
    return cached;
  }
  const built = buildRuleTables(rules);
  ruleTableCache.set(rules, built);
  return built;
}

function buildRuleTables(rules: readonly TokenRule[]): RuleTables {
  ruleTableBuildCount++;
  // keyword -> rules
  const keywords: string[] = [];
  const keywordRules: number[][] = [];
  const kwIndex = new Map<string, number>();
  rules.forEach((r, ri) => {
    for (const k of r.keywords) {
      let id = kwIndex.get(k);
      if (id === undefined) {
        id = keywords.length;
        kwIndex.set(k, id);
        keywords.push(k);
        keywordRules.push([]);
      }
      keywordRules[id]?.push(ri);
    }
  });
  const ac = new AhoCorasick(keywords);
  const acTables = ac.tables();
  const kwLen = keywords.map((k) => k.length);
  // Per (keyword, rule) pair: the token characters a match needs after that keyword (the rule's
  // `minTail`, raised by `keywordMinTail` for keywords that only start the stricter alternative).
  const pairMinTail: Int32Array[] = keywordRules.map((ris, id) =>
    Int32Array.from(ris, (ri) => {
      const r = rules[ri] as TokenRule;
      return Math.max(r.minTail ?? 0, r.keywordMinTail?.[keywords[id] as string] ?? 0);
    }),
  );
  const kwMaxTail = Int32Array.from(pairMinTail, (t) => Math.max(0, ...t));
  const kwMinTail = Int32Array.from(pairMinTail, (t) => Math.min(...t));
  // afterAny: per distinct character, the next occurrence a native indexOf found for one hit is
  // reused by later hits (hits come in text order): one pass per character and scan at most.
  const afterChars = [
    ...new Set(rules.flatMap((r) => (r.window || !r.afterAny ? [] : [...r.afterAny]))),
  ];
  const ruleAfter = rules.map((r) =>
    r.afterAny && !r.window
      ? Int32Array.from(r.afterAny, (ch) => afterChars.indexOf(ch))
      : undefined,
  );
  // For rules found wherever they start: the source of their pattern with its boundaries.
  const boundedSources = rules.map((r) => {
    const p = BOUNDED_PATTERNS.get(r.id);
    return p && p.source !== r.pattern.source
      ? { source: p.source, flags: `${p.flags.replace(/[gy]/g, "")}y` }
      : undefined;
  });
  // Rules whose pattern opens with a start boundary (`(?<![A-Za-z0-9_])` and the like): a hit
  // right after a character of that class cannot match, which one table read tells without a
  // regex call (a flood of `eyJeyJ…` made one sticky attempt per keyword).
  const leadBlocked = rules.map((r) => {
    for (const [source, table] of LEAD_BOUNDARIES) {
      if (r.pattern.source.startsWith(source)) return table;
    }
    return undefined;
  });
  // Per keyword: the characters before it that every rule of the keyword refuses (each rule
  // anchored at the keyword with a start boundary), or undefined. A hit after one of them does
  // nothing in onHit, so the hot hit loop drops it before measuring its tail (`eyJeyJ…`: a hit
  // every three characters, each after a `J`).
  // Per keyword: the rule index when the keyword's only rule is a repeatMemo rule that onHit and
  // recordSpan would treat plainly (no tail characters or body run to look for, no placeholder or
  // boundary check on the value), else -1: the hot hit loop merges such a hit itself when its
  // window equals the rule's last match's and it overlaps the rule's last finding.
  const memoKeyword = Int32Array.from(keywordRules, (ris) => {
    if (ris.length !== 1) return -1;
    const ri = ris[0] as number;
    const r = rules[ri] as TokenRule;
    const plain =
      r.repeatMemo === true &&
      (r.secret ?? 0) === 0 &&
      !r.window &&
      !r.placeholderCheck &&
      boundedSources[ri] === undefined &&
      ruleAfter[ri] === undefined &&
      r.bodyRun === undefined;
    return plain ? ri : -1;
  });
  const kwLeadBlocked: (Uint8Array | undefined)[] = keywordRules.map((ris) => {
    const tables = ris.map((ri) => (rules[ri]?.window ? undefined : leadBlocked[ri]));
    // the boundary tables are shared objects: one table for every rule, or no early drop
    const first = tables[0];
    return first !== undefined && tables.every((t) => t === first) ? first : undefined;
  });
  return {
    rules,
    members: [...rules],
    keywords,
    keywordRules,
    ac,
    acTables,
    kwLen,
    pairMinTail,
    kwMaxTail,
    kwMinTail,
    afterChars,
    ruleAfter,
    boundedSources,
    leadBlocked,
    memoKeyword,
    kwLeadBlocked,
  };
}

// Match indices (the `d` flag) cost an allocation per match: only rules whose secret is a
// capture group ask for them; for the others the match itself is the secret.
function flagsOf(r: TokenRule, sticky: boolean): string {
  const base = r.pattern.flags.replace(/[dgy]/g, "");
  return `${base}${sticky ? "y" : "g"}${(r.secret ?? 0) !== 0 ? "d" : ""}`;
}

/** The token_patterns part of a layer's scan, and the keyword automaton for the fused pass. */
interface TokenPass {
  acTables: AhoTables;
  scanTokens(
    text: string,
    surface: string,
    out: RawFinding[],
    encoding: string,
    budget: Budget,
    hits?: Int32Array,
    nHits?: number,
    runs?: RunList,
  ): void;
}

/** Exercises keyword hits, base64/hex runs, escapes and a decoded layer; contains no secret. */
const WARMUP =
  '{"token":"abcdefghijklmnopqrstuvwx","b":"aHR0cHM6Ly9leGFtcGxlLmNvbS9wYXRoP3E9MQ==",' +
  '"h":"68747470733a2f2f6578616d706c652e636f6d","u":"https://example.com/a%41b\\u0041"}';

/**
 * Builds a scanner. Construction builds the known-secret index (and so rejects a secret too short
 * to protect); the token rules' tables are built once per process, by the first scan that needs
 * them (or here, for a rule set of the caller's).
 */
export function createScanner(options: ScannerOptions = {}): Scanner {
  const detectors = options.detectors ?? (["token_patterns", "known_secrets"] as const);
  const useTokens = detectors.includes("token_patterns");
  const useKnown = detectors.includes("known_secrets");
  const useEntropy = detectors.includes("entropy");
  const rules = options.rules ?? TOKEN_RULES;
  const key =
    options.fingerprintKey === undefined
      ? randomBytes(32)
      : typeof options.fingerprintKey === "string"
        ? Buffer.from(options.fingerprintKey, "utf8")
        : options.fingerprintKey;
  const maxChars = options.maxChars ?? 16 * 1024 * 1024;
  const maxMs = options.maxMs ?? 2000;
  const maxDepth = options.maxDecodeDepth ?? 4;
  const maxInflate = options.maxInflateBytes ?? 4 * 1024 * 1024;
  const workPerChar = options.maxWorkPerChar ?? 16;
  const workBase = 8 * 1024 * 1024;
  const now = () => performance.now();
  const clock = options.clock ?? now;
  const secrets = options.knownSecrets ?? [];
  const index =
    useKnown && secrets.length > 0
      ? new KnownSecretIndex(secrets, { minChars: options.minSecretChars ?? 12 })
      : undefined;

  let hitBuffer: Int32Array = new Int32Array(4096);
  // Reused by every layer: a layer's runs are consumed (encodedSegments) before its children run.
  const runBuffer = createRunList(4096);
  function fingerprint(value: string): string {
    return createHmac("sha256", key).update(value).digest("hex").slice(0, 16);
  }

  /**
   * The token_patterns pass: the rule set's tables (built once per process and rule set, see
   * ruleTables) and this scanner's own regexes.
   */
  function buildTokenPass(): TokenPass {
    const {
      keywordRules,
      ac,
      acTables,
      kwLen,
      pairMinTail,
      kwMaxTail,
      kwMinTail,
      afterChars,
      ruleAfter,
      boundedSources,
      leadBlocked,
      memoKeyword,
      kwLeadBlocked,
    } = ruleTables(rules);
    // RegExp objects carry lastIndex: each scanner has its own (V8 shares their compiled code).
    const boundedSticky = boundedSources.map((b) =>
      b === undefined ? undefined : new RegExp(b.source, b.flags),
    );
    const anchored = rules.map((r) =>
      r.window ? undefined : new RegExp(r.pattern.source, flagsOf(r, true)),
    );
    const regexes = rules.map((r) => new RegExp(r.pattern.source, flagsOf(r, false)));

    function scanTokens(
      text: string,
      surface: string,
      out: RawFinding[],
      encoding: string,
      budget: Budget,
      hits?: Int32Array,
      nHits = 0,
      runs?: RunList,
    ): void {
      // PKCS#12 key stores are binary (DER), so no ASCII keyword can announce them: check the header.
      if (
        PKCS12_HEADER.test(text.slice(0, 24)) &&
        isDefaultPasswordPkcs12(Buffer.from(text, "latin1"))
      ) {
        out.push({
          detector: "token_patterns",
          rule: "pkcs12-keystore",
          surface,
          start: 0,
          end: text.length,
          severity: "block",
          fingerprint: "",
          value: text.slice(0, 4096),
          encoding,
        });
      }
      const windows: number[][] = rules.map(() => []);
      // The last finding of each rule in this layer: an overlapping match extends it.
      const last: (RawFinding | undefined)[] = [];
      /**
       * A match of rule `ri` on `input` at [from, to) (the secret's span), `input` starting at
       * `offset` in the layer; `group` is the secret when it is a capture group. The value is only
       * sliced when a check or a new finding needs it: a match that extends the previous finding
       * of its rule allocates nothing.
       */
      const recordSpan = (
        ri: number,
        input: string,
        matchAt: number,
        from: number,
        to: number,
        offset: number,
        group: string | undefined,
      ): void => {
        const rule = rules[ri] as TokenRule;
        let value = group;
        if (rule.placeholderCheck) {
          value ??= input.slice(from, to);
          if (looksLikePlaceholder(value)) return;
        }
        // A prefix-anchored token with a word character stuck to it is reported (issue 17: `x` +
        // token must not hide a token), unless its value is a documentation placeholder
        // (`xsk_live_AAAA…`, `wordgsk_aBcDeF…`): a real token is random, and stuck or not, one
        // that stands on a word boundary is reported whatever its value.
        const bounded = boundedSticky[ri];
        if (bounded !== undefined) {
          value ??= input.slice(from, to);
          if (looksSequential(value)) {
            bounded.lastIndex = matchAt;
            if (!bounded.test(input)) return;
          }
        }
        const start = offset + from;
        const end = offset + to;
        // Overlapping matches of one rule become one finding anyway (see scanWithBudget): a flood
        // of overlapping matches (JWT headers chained by dots) extends one finding
        const prev = last[ri];
        if (prev !== undefined && start < prev.end && end > prev.start) {
          if (start < prev.start) prev.start = start;
          if (end > prev.end) prev.end = end;
          charge(budget, MERGED_COST);
          return;
        }
        // a new finding costs an object and, if it survives the merge, a keyed hash: floods of
        // matches run out of work budget instead of holding the event loop
        charge(budget, FINDING_COST);
        const f: RawFinding = {
          detector: "token_patterns",
          rule: rule.id,
          surface,
          start,
          end,
          severity: "block",
          fingerprint: "",
          value: value ?? input.slice(from, to),
          encoding,
        };
        last[ri] = f;
        out.push(f);
      };
      const record = (ri: number, m: RegExpExecArray, offset: number): void => {
        const group = (rules[ri] as TokenRule).secret ?? 0;
        const idx = group === 0 ? undefined : m.indices?.[group];
        const value = idx ? m[group] : undefined;
        if (idx && value !== undefined)
          recordSpan(ri, m.input, m.index, idx[0], idx[1], offset, value);
        else recordSpan(ri, m.input, m.index, m.index, m.index + m[0].length, offset, m[0]);
      };
      // Token characters after a keyword, up to what any of its rules needs. Hits arrive in text
      // order, so the run of token characters measured for one hit is reused by the next hits
      // inside it: every character is read at most once per scan, however the hits overlap.
      const n = text.length;
      let runFrom = 0;
      let runTo = -1; // text[runFrom, runTo) are all token characters
      let runClosed = false; // runTo is the run's real end (a non-token character or the text end)
      let visited = 0; // tail characters read, charged to the budget
      const tailAfter = (end: number, cap: number): number => {
        if (end < runFrom || end > runTo) {
          runFrom = end;
          runTo = end;
          runClosed = false;
        }
        if (!runClosed && runTo - end < cap) {
          const stop = Math.min(n, end + cap);
          let k = runTo;
          while (k < stop && TAIL[text.charCodeAt(k)] === 1) k++;
          visited += k - runTo + 1;
          runTo = k;
          runClosed = k < stop || k === n;
        }
        return Math.min(cap, runTo - end);
      };
      const nextAt = new Float64Array(afterChars.length).fill(-1); // -1: not searched yet
      const afterWithin = (set: Int32Array, from: number, limit: number): boolean => {
        for (let x = 0; x < set.length; x++) {
          const ch = set[x] as number;
          let at = nextAt[ch] as number;
          if (at < from) {
            at = text.indexOf(afterChars[ch] as string, from);
            if (at === -1) at = Number.POSITIVE_INFINITY;
            nextAt[ch] = at;
          }
          if (at < limit) return true;
        }
        return false;
      };
      // bodyRun rules: the layer's base64 runs at least that long, found on the first hit that
      // needs them; hits come in text order, so one pointer walks them once per scan.
      let longRuns: Int32Array | undefined;
      let longN = 0;
      let longLength = -1;
      let lp = 0;
      const bodyRunWithin = (need: { length: number; within: number }, end: number): boolean => {
        if (!runs) return true;
        if (longLength !== need.length) {
          longLength = need.length;
          longRuns = new Int32Array(runs.n);
          longN = 0;
          lp = 0;
          for (let x = 0; x < runs.n; x += 2) {
            const s0 = runs.at[x] as number;
            const e0 = runs.at[x + 1] as number;
            if (e0 - s0 >= need.length) {
              longRuns[longN++] = s0;
              longRuns[longN++] = e0;
            }
          }
        }
        const lr = longRuns as Int32Array;
        // runs ending too early for this hit end too early for every later one
        while (lp < longN && (lr[lp + 1] as number) < end + need.length) lp += 2;
        // the first run left has the earliest start of those long enough after `end`
        return lp < longN && (lr[lp] as number) <= end + need.within;
      };
      // repeatMemo rules: the window of the last regex match (the character before it, the match,
      // the character after it) at memoAt, memoLen long; the last window found equal to it; and a
      // period d the memo window is known to have (0: none checked)
      const memoAt: number[] = [];
      const memoLen: number[] = [];
      const lastWin: number[] = [];
      const period: number[] = [];
      // Per repeatMemo rule: the keyword whose tail was last checked inside the memo window (-1:
      // none since the memo was set), and whether that keyword's least tail lies inside the window
      // in token characters. Then a hit whose window equals the memo window has that tail too.
      // Per repeatMemo rule: the memo window's last d characters as a string, for that period d.
      const memoSub: string[] = [];
      const memoSubD: number[] = [];
      const memoTailKw: number[] = [];
      const memoTailOk: boolean[] = [];
      const memoTailFits = (ri: number, id: number): boolean => {
        if (memoTailKw[ri] !== id) {
          const need = kwMinTail[id] as number;
          const base = (memoAt[ri] as number) + 1 + (kwLen[id] as number);
          const room = (memoLen[ri] as number) - 1 - (kwLen[id] as number);
          let k = 0;
          while (k < need && k < room && TAIL[text.charCodeAt(base + k)] === 1) k++;
          memoTailKw[ri] = id;
          memoTailOk[ri] = k >= need;
        }
        return memoTailOk[ri] === true;
      };
      /**
       * Is text[w, w + memoLen) equal to rule ri's memo window? When the last equal window is d
       * characters before w (0 < d < memoLen) and the memo window has period d, only the d
       * characters past the last window are compared: a periodic flood costs a comparison per
       * character, not per character of every window.
       */
      const sameWindow = (ri: number, w: number): boolean => {
        const at = memoAt[ri] ?? -1;
        if (at === -1) return false;
        const len = memoLen[ri] as number;
        if (w + len > n) return false;
        const prev = lastWin[ri] as number;
        const d = w - prev;
        let from = 0;
        if (prev !== -1 && d > 0 && d < len) {
          if (period[ri] !== d) {
            let z = 0;
            while (z < len - d && text.charCodeAt(at + z) === text.charCodeAt(at + z + d)) z++;
            visited += z;
            period[ri] = z === len - d ? d : -1;
          }
          if (period[ri] === d) {
            from = len - d;
            // the d characters past the last equal window, compared natively with the memo
            // window's last d (one string per memo and period); a mismatch is measured below
            if (memoSubD[ri] !== d) {
              memoSub[ri] = text.slice(at + from, at + len);
              memoSubD[ri] = d;
            }
            if (text.startsWith(memoSub[ri] as string, w + from)) {
              visited += d;
              lastWin[ri] = w;
              return true;
            }
          }
        }
        let x = from;
        while (x < len && text.charCodeAt(w + x) === text.charCodeAt(at + x)) x++;
        visited += x - from;
        if (x < len) return false;
        lastWin[ri] = w;
        return true;
      };
      /** A keyword hit whose tail (token characters after it, up to what its rules need) is known. */
      const onHit = (id: number, end: number, tail: number): void => {
        const start = end - (kwLen[id] as number);
        const ris = keywordRules[id] as number[];
        const need = pairMinTail[id] as Int32Array;
        for (let x = 0; x < ris.length; x++) {
          const ri = ris[x] as number;
          if (tail < (need[x] as number)) continue;
          const sticky = anchored[ri];
          if (sticky) {
            const lead = leadBlocked[ri];
            if (lead !== undefined && start > 0 && lead[text.charCodeAt(start - 1)] === 1) continue;
            const set = ruleAfter[ri];
            if (set && !afterWithin(set, end, start + (rules[ri] as TokenRule).maxLength)) continue;
            const body = (rules[ri] as TokenRule).bodyRun;
            if (body && !bodyRunWithin(body, end)) continue;
            // The match starts at the keyword: one sticky attempt, bounded by the rule's maxLength.
            // Charged by what it read: the match, or for a miss the keyword's token tail (rules
            // with minTail match token characters only) or at most 256 characters (a miss of the
            // others fails within its fixed header: `PRIVATE KEY-----`, `Bearer `, `key`).
            sticky.lastIndex = start;
            const r = rules[ri] as TokenRule;
            const miss = r.minTail !== undefined ? end - start + tail + 16 : 256;
            if ((r.secret ?? 0) === 0) {
              if (r.repeatMemo && start > 0 && sameWindow(ri, start - 1)) {
                const to = start + (memoLen[ri] as number) - 2;
                if (charge(budget, to - start)) return;
                recordSpan(ri, text, start, start, to, 0, undefined);
                continue;
              }
              // the whole match is the secret: `test` leaves its end in lastIndex, no match array
              const hit = sticky.test(text);
              const to = hit ? sticky.lastIndex : start;
              if (r.repeatMemo) {
                const keep = hit && start > 0 && to < n;
                memoAt[ri] = keep ? start - 1 : -1;
                memoLen[ri] = keep ? to - start + 2 : 0;
                lastWin[ri] = keep ? start - 1 : -1;
                period[ri] = 0;
                memoTailKw[ri] = -1;
                memoSubD[ri] = -1;
              }
              if (charge(budget, hit ? to - start : Math.min(miss, r.maxLength))) return;
              if (hit) recordSpan(ri, text, start, start, to, 0, undefined);
              continue;
            }
            const m = sticky.exec(text);
            if (charge(budget, m ? m[0].length : Math.min(miss, r.maxLength))) return;
            if (m) record(ri, m, 0);
            continue;
          }
          const r = rules[ri] as TokenRule;
          if (r.minHead !== undefined) {
            let k = start - 1;
            const stop = Math.max(-1, start - 1 - r.minHead);
            while (k > stop && TAIL[text.charCodeAt(k)] === 1) k--;
            if (k > start - 1 - r.minHead) continue;
          }
          clampWindow(
            windows[ri] as number[],
            Math.max(0, start - r.maxLength - 1),
            Math.min(text.length, end + r.maxLength + 1),
          );
        }
      };
      if (hits) {
        // The hot loop of keyword floods: tails measured inline (the same memo as `tailAfter`), and
        // hits too short for every rule of their keyword dropped before any call.
        for (let h = 0; h < nHits; h += 2) {
          const id = hits[h] as number;
          const end = hits[h + 1] as number;
          const lead = kwLeadBlocked[id];
          const before = end - (kwLen[id] as number) - 1;
          if (lead !== undefined && before >= 0 && lead[text.charCodeAt(before)] === 1) continue;
          const mr = memoKeyword[id] as number;
          let memoTried = false;
          if (mr !== -1) {
            // onHit's memo path and recordSpan's merge, without the calls: a flood of equal JWT
            // headers pays one comparison per character and a few reads per hit. Taken before the
            // tail is measured when the keyword's least tail lies inside the memo window in token
            // characters (memoTailFits): an equal window then has that tail, so the hit would not
            // have been dropped for it, and the flood is not read a second time for tails.
            const start = end - (kwLen[id] as number);
            const prev = last[mr];
            if (prev !== undefined && start > 0 && start < prev.end && memoTailFits(mr, id)) {
              memoTried = true;
              if (sameWindow(mr, start - 1)) {
                const to = start + (memoLen[mr] as number) - 2;
                if (charge(budget, to - start)) return;
                if (to > prev.end) prev.end = to;
                if (charge(budget, MERGED_COST)) return;
                continue;
              }
            }
          }
          const cap = kwMaxTail[id] as number;
          let tail = 0;
          if (cap > 0) {
            if (end < runFrom || end > runTo) {
              runFrom = end;
              runTo = end;
              runClosed = false;
            }
            if (!runClosed && runTo - end < cap) {
              const stop = Math.min(n, end + cap);
              let k = runTo;
              while (k < stop && TAIL[text.charCodeAt(k)] === 1) k++;
              visited += k - runTo + 1;
              runTo = k;
              runClosed = k < stop || k === n;
            }
            tail = Math.min(cap, runTo - end);
            if (tail < (kwMinTail[id] as number)) continue;
          }
          if (mr !== -1 && !memoTried) {
            const start = end - (kwLen[id] as number);
            const prev = last[mr];
            if (prev !== undefined && start > 0 && start < prev.end && sameWindow(mr, start - 1)) {
              const to = start + (memoLen[mr] as number) - 2;
              if (charge(budget, to - start)) return;
              if (to > prev.end) prev.end = to;
              if (charge(budget, MERGED_COST)) return;
              continue;
            }
          }
          onHit(id, end, tail);
          if (budget.exceeded) return;
        }
        if (charge(budget, (nHits >> 1) + visited)) return;
      } else {
        if (charge(budget, n)) return;
        ac.search(text, (id, end) => {
          if (budget.exceeded) return;
          const cap = kwMaxTail[id] as number;
          const tail = cap > 0 ? tailAfter(end, cap) : 0;
          charge(budget, 1);
          if (tail >= (kwMinTail[id] as number)) onHit(id, end, tail);
        });
        if (budget.exceeded || charge(budget, visited)) return;
      }
      for (let ri = 0; ri < rules.length; ri++) {
        const ws = windows[ri] as number[];
        if (ws.length === 0) continue;
        const re = regexes[ri] as RegExp;
        for (let w = 0; w < ws.length; w += 2) {
          const ws0 = ws[w] as number;
          // a window regex may try every start position, each for up to maxLength characters
          const r = rules[ri] as TokenRule;
          if (charge(budget, ((ws[w + 1] as number) - ws0) * Math.min(64, r.maxLength >> 2)))
            return;
          const sub = text.slice(ws0, ws[w + 1]);
          re.lastIndex = 0;
          for (let m = re.exec(sub); m !== null; m = re.exec(sub)) {
            if (m[0].length === 0) {
              re.lastIndex++;
              continue;
            }
            record(ri, m, ws0);
          }
        }
      }
    }

    return { acTables, scanTokens };
  }

  // A scanner of the built-in rules builds its token pass at its first scan, not here: the
  // gateway and each proxy session build their scanners before the agent starts (a known secret
  // too short to protect must refuse the run then), while the rules' automaton and regexes
  // (tens of ms and hundreds of fresh pages) serve only a model call. A scan never runs without
  // it. Another rule set is built here, so one that cannot be built still fails construction.
  let tokenPass: TokenPass | undefined =
    useTokens && rules !== TOKEN_RULES ? buildTokenPass() : undefined;
  let primed = false;
  /** Before the first scan: the token pass, then the warm-up sample (see the end of createScanner). */
  function prime(): void {
    if (useTokens) tokenPass ??= buildTokenPass();
    primed = true;
    // A scanner that can find nothing but a budget overrun (known_secrets with no known secret)
    // has no hot loop of its own to prime.
    // It reads the process clock, not options.clock: a caller's clock counts the reads of its
    // own scans (the warm-up used to run in the constructor, before any of them).
    if (useTokens || useEntropy || index !== undefined) scanWithBudget(WARMUP, "warmup", now);
  }

  function scanKnown(
    text: string,
    surface: string,
    out: RawFinding[],
    encoding: string,
    runs?: RunList,
    fused?: FusedPass,
  ): void {
    if (!index) return;
    for (const m of index.scan(text, runs, fused)) {
      const s = secrets[m.secret] as KnownSecret;
      out.push({
        detector: "known_secrets",
        rule: s.name,
        surface,
        start: m.start,
        end: m.end,
        severity: "block",
        fingerprint: "",
        value: s.value,
        encoding: encoding === "raw" ? m.variant : `${encoding}>${m.variant}`,
      });
    }
  }

  function scanEntropy(text: string, surface: string, out: RawFinding[]): void {
    const n = text.length;
    let i = 0;
    while (i < n) {
      if (!isB64(text.charCodeAt(i))) {
        i++;
        continue;
      }
      let j = i;
      while (j < n && (isB64(text.charCodeAt(j)) || text.charCodeAt(j) === 61)) j++;
      if (j - i >= 32 && j - i <= 4096 && shannon(text, i, j) >= 4.5) {
        out.push({
          detector: "entropy",
          rule: "high-entropy-string",
          surface,
          start: i,
          end: j,
          severity: "warn",
          fingerprint: "",
          value: text.slice(i, j),
        });
      }
      i = j;
    }
  }

  function scanLayer(
    text: string,
    surface: string,
    depth: number,
    encoding: string,
    budget: Budget,
  ): RawFinding[] {
    const out: RawFinding[] = [];
    if (charge(budget, text.length)) return out;
    const runs: RunList | undefined = index ? runBuffer : undefined;
    if (runs) runs.n = 0;
    // With a known-secret index the keyword automaton runs inside its projection pass.
    const tokens = tokenPass;
    const fused: FusedPass | undefined =
      index && runs && tokens ? { ac: tokens.acTables, hits: hitBuffer, nHits: 0 } : undefined;
    if (useKnown) scanKnown(text, surface, out, encoding, runs, fused);
    if (fused) hitBuffer = fused.hits; // keep a grown buffer for the next scan
    if (tokens && !charge(budget, text.length))
      tokens.scanTokens(
        text,
        surface,
        out,
        encoding,
        budget,
        fused?.hits,
        fused?.nHits,
        fused && runs,
      );
    if (useEntropy && depth === 0 && !charge(budget, text.length)) scanEntropy(text, surface, out);
    if (budget.exceeded || (!useTokens && !useKnown)) return out;
    const segments = encodedSegments(text, budget, runs);
    if (depth >= maxDepth) {
      // one more encoded layer than may be decoded: fail closed
      if (segments.some((seg) => seg.text.length > 0 && seg.text !== text)) stop(budget, "depth");
      return out;
    }
    // A layer's findings depend on its text, its kind and its depth only. The pieces of a long
    // escape region repeat with the region's period (a `%25` flood decodes to three distinct
    // 64 Ki pieces, not 17), so a large layer equal to one of the last few of its kind scanned
    // here reuses their findings, mapped to its own span: one comparison instead of a scan.
    const recent: { kind: string; text: string; found: RawFinding[] }[] = [];
    const layer = (seg: Segment): void => {
      const enc = encoding === "raw" ? `decoded:${seg.kind}` : `${encoding}>${seg.kind}`;
      const reusable = seg.parts === undefined && seg.text.length >= SMALL_SEGMENT;
      let found: RawFinding[] | undefined;
      if (reusable) {
        for (const r of recent) {
          if (r.kind !== seg.kind || r.text.length !== seg.text.length) continue;
          if (charge(budget, seg.text.length)) return;
          if (r.text === seg.text) {
            found = r.found;
            break;
          }
        }
      }
      if (found === undefined) {
        found = scanLayer(seg.text, surface, depth + 1, enc, budget);
        if (reusable && !budget.exceeded) {
          recent.push({ kind: seg.kind, text: seg.text, found });
          if (recent.length > RECENT_LAYERS) recent.shift();
        }
      }
      for (const f of found) {
        const [start, end] = partSpan(seg, f.start, f.end);
        out.push({ ...f, start, end });
      }
    };
    // Small segments of one kind are scanned as one batch (see SMALL_SEGMENT); a finding is
    // mapped back to the segment(s) it lies in.
    let batch: Segment[] = [];
    let batchChars = 0;
    const flush = (): void => {
      if (batch.length === 1) layer(batch[0] as Segment);
      else if (batch.length > 1) {
        const c = batch.length;
        const parts = { at: new Int32Array(c), start: new Int32Array(c), end: new Int32Array(c) };
        const texts: string[] = [];
        let pos = 0;
        for (let b = 0; b < c; b++) {
          const seg = batch[b] as Segment;
          parts.at[b] = pos;
          parts.start[b] = seg.start;
          parts.end[b] = seg.end;
          texts.push(seg.text);
          pos += seg.text.length + 1;
        }
        const first = batch[0] as Segment;
        layer({
          start: first.start,
          end: (batch[c - 1] as Segment).end,
          kind: first.kind,
          text: texts.join("\n"),
          parts,
        });
      }
      batch = [];
      batchChars = 0;
    };
    for (const seg of segments) {
      if (budget.exceeded) break;
      if (seg.text.length === 0) continue;
      if (seg.text.length >= SMALL_SEGMENT || seg.parts) {
        layer(seg);
        continue;
      }
      if (
        batch.length > 0 &&
        ((batch[0] as Segment).kind !== seg.kind || batchChars >= SMALL_BATCH)
      )
        flush();
      batch.push(seg);
      batchChars += seg.text.length + 1;
    }
    if (!budget.exceeded) flush();
    return out;
  }

  function scanWithBudget(
    text: string,
    surface: string,
    time = clock,
  ): ScanResult & { work: number } {
    if (typeof text !== "string") {
      throw new EgressDlpError("E_INVALID_INPUT", "scan() takes a string; decode bytes first");
    }
    if (text.length > maxChars) {
      return {
        findings: [budgetFinding(surface, "bytes", text.length)],
        blocked: true,
        work: 0,
      };
    }
    if (!primed) prime();
    const budget = createBudget(
      maxMs,
      options.maxWork ?? workPerChar * text.length + workBase,
      maxInflate,
      time,
    );
    let raw: RawFinding[];
    try {
      raw = scanLayer(text, surface, 0, "raw", budget);
    } catch (error) {
      // content must never make a scan throw; if some engine limit does, fail closed
      if (!(error instanceof RangeError)) throw error;
      raw = [];
      stop(budget, "error");
    }
    // One finding per (detector, rule) and overlapping span: the same secret seen raw and through
    // a decoded layer becomes one finding covering both spans.
    const findings: Finding[] = [];
    const open = new Map<string, Finding>();
    for (const f of raw.sort((x, y) => x.start - y.start || y.end - x.end)) {
      const k = `${f.detector}\u0000${f.rule}`;
      const prev = open.get(k);
      if (prev && f.start < prev.end) {
        if (f.end > prev.end) prev.end = f.end;
        continue;
      }
      const copy: Finding = {
        detector: f.detector,
        rule: f.rule,
        surface: f.surface,
        start: f.start,
        end: f.end,
        severity: f.severity,
        fingerprint: f.value === undefined ? f.fingerprint : fingerprint(f.value),
      };
      if (f.encoding !== undefined) copy.encoding = f.encoding;
      open.set(k, copy);
      findings.push(copy);
    }
    // The clock is read every CHECK_EVERY units of work, so a scan descheduled by a busy
    // machine after its last read could end past its deadline unnoticed: one last read, after
    // everything but the return, makes "over budget" always mean "blocked".
    if (!budget.exceeded && budget.now() > budget.deadline) stop(budget, "time");
    if (budget.exceeded) {
      findings.push(budgetFinding(surface, budget.reason ?? "time", text.length));
    }
    return {
      findings,
      blocked: findings.some((f) => f.severity === "block"),
      work: budget.work,
    };
  }

  function scan(text: string, surface = "body"): ScanResult {
    const { findings, blocked } = scanWithBudget(text, surface);
    return { findings, blocked };
  }

  // Prime V8's type feedback on every path of the hot loops (keyword hits, base64 runs, decoded
  // layers, code after the loops) with a small sample before real input arrives. Without it, the
  // first large scan gets its loops compiled mid-flight (on-stack replacement) with no feedback
  // for code that only runs after them; that code then deoptimises on every later scan and the
  // process can stay at about half speed (seen as bimodal bench runs).
  // It runs at the first scan (prime), with the token pass that scan needs anyway.

  return {
    scan,
    measure: (text, surface = "body") => scanWithBudget(text, surface),
    fingerprint,
    detectors: [...detectors],
    knownSecretCount: secrets.length,
  };
}

const BUDGET_RULES = {
  time: "time-budget-exceeded",
  bytes: "byte-budget-exceeded",
  work: "work-budget-exceeded",
  inflate: "inflate-cap-exceeded",
  depth: "decode-depth-exceeded",
  error: "scan-failed",
} as const;

/** The blocking finding of a scan stopped by a limit. */
export function budgetFinding(
  surface: string,
  kind: keyof typeof BUDGET_RULES,
  length: number,
): Finding {
  return {
    detector: "budget",
    rule: BUDGET_RULES[kind],
    surface,
    start: 0,
    end: length,
    severity: "block",
    fingerprint: "",
  };
}
