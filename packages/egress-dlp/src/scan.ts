import { createHmac, randomBytes } from "node:crypto";
import { gunzipSync } from "node:zlib";
import { AhoCorasick } from "./aho.ts";
import { EgressDlpError } from "./errors.ts";
import { type FusedPass, type KnownSecret, KnownSecretIndex } from "./known.ts";
import { isDefaultPasswordPkcs12 } from "./pkcs12.ts";
import type { OutboundDetector } from "./route.ts";
import { looksLikePlaceholder, TOKEN_RULES, type TokenRule } from "./rules.ts";

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
  /** How many nested encodings (base64, hex, base32, escapes, separators, gzip) are decoded. Default 4. */
  maxDecodeDepth?: number;
  /** Bytes one decoded gzip blob may expand to. Default 4 MiB. */
  maxInflateBytes?: number;
}

export interface Scanner {
  /** Scans one surface. Never throws on content; over budget, returns a blocking `budget` finding. */
  scan(text: string, surface?: string): ScanResult;
  /** Fingerprint of a value under this scanner's key (for allowlists and audit). */
  fingerprint(value: string): string;
  readonly detectors: readonly OutboundDetector[];
  readonly knownSecretCount: number;
}

interface Budget {
  deadline: number;
  exceeded: boolean;
}

// Trigger regexes for the decoders: V8 scans for them natively; each is a plain character-class
// search or a fixed-length sequence (no nested quantifiers), so each pass is linear.
/** Base64 / base32 / hex candidates: runs of the base64url ∪ base64 alphabet, padding after. */
const RUN_RE = /(?:^|[^A-Za-z0-9+/_-])([A-Za-z0-9+/_-]{16,})/g;
/** Forward escapes: `\u`, `\x`, `\\`, `%XX`, `&#`. */
const ESC_RE = /\\[uUx\\]|%[0-9A-Fa-f]{2}|&#/g;
/** Reversed escapes: `Xu\\` (from `\uXXXX`) and `XX%` (from `%XX`). */
const REV_RE = /[0-9A-Fa-f]u\\|[0-9A-Fa-f]{2}%/g;
/** Characters that can follow a token keyword: [A-Za-z0-9_.+/=~-]. */
const TAIL = new Uint8Array(65536);
for (const ch of "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.+/=~-") {
  TAIL[ch.charCodeAt(0)] = 1;
}
const SEPARATOR = new Uint8Array(65536);
for (const ch of " -_.:,;|/\t") SEPARATOR[ch.charCodeAt(0)] = 1;
const ESCAPE_FOLLOW = new Uint8Array(65536);
for (const ch of "0123456789ABCDEFabcdefuUx\\") ESCAPE_FOLLOW[ch.charCodeAt(0)] = 1;

/**
 * Gate for the separated decoder: a backslash or percent sign, a separator, then an escape
 * character (`\\ u`, `% 2`). Native indexOf jumps between candidates.
 */
function hasSeparatedEscape(text: string): boolean {
  for (const lead of ["\\", "%"]) {
    for (let i = text.indexOf(lead); i !== -1; i = text.indexOf(lead, i + 1)) {
      if (SEPARATOR[text.charCodeAt(i + 1)] === 1 && ESCAPE_FOLLOW[text.charCodeAt(i + 2)] === 1)
        return true;
    }
  }
  return false;
}
/** Eight characters each followed by the same separator. */
const SEP_RE = /[^\s][ \-_.:,;|/\t][^\s][ \-_.:,;|/\t][^\s][ \-_.:,;|/\t][^\s][ \-_.:,;|/\t]/g;
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

/** Share of printable ASCII (and tab/CR/LF) in decoded bytes; rescanning binary garbage is wasted work. */
function mostlyPrintable(text: string): boolean {
  if (text.length === 0) return false;
  let ok = 0;
  const n = Math.min(text.length, 4096);
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if ((c >= 32 && c < 127) || c === 9 || c === 10 || c === 13) ok++;
  }
  return ok >= n * 0.85;
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

function hexVal(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}

function isEscapeRegionChar(d: number): boolean {
  return ((CLASS[d] as number) & C_ESC) !== 0;
}

/** Reversed escapes (`XXXXu\\`, `XX%`): the region is reversed, then unescaped. Linear. */
function reversedEscapeSegments(text: string, segs: Segment[]): void {
  const n = text.length;
  REV_RE.lastIndex = 0;
  for (let m = REV_RE.exec(text); m !== null; m = REV_RE.exec(text)) {
    const i = m.index + m[0].length - 1;
    let start = i;
    while (start > 0 && isEscapeRegionChar(text.charCodeAt(start - 1))) start--;
    let j = i + 1;
    while (j < n && isEscapeRegionChar(text.charCodeAt(j))) j++;
    const reversed = [...text.slice(start, j)].reverse().join("");
    segs.push({
      start,
      end: j,
      kind: "reversed+escapes",
      text: unescapeRegion(reversed, 0, reversed.length),
    });
    REV_RE.lastIndex = j + 1;
  }
}

/**
 * Characters interleaved with one repeated separator (`s-k-a-n-t`, `\ u 0 0 7 3`): the even
 * characters form a segment, so encodings hidden behind separators decode too. Linear.
 */
function separatedSegments(text: string, segs: Segment[]): void {
  SEP_RE.lastIndex = 0;
  for (let m = SEP_RE.exec(text); m !== null; m = SEP_RE.exec(text)) {
    const sep = text.charCodeAt(m.index + 1);
    let j = m.index;
    let out = "";
    const n = text.length;
    while (j < n && text.charCodeAt(j) !== sep && !/\s/.test(text[j] as string)) {
      out += text[j];
      if (text.charCodeAt(j + 1) !== sep) {
        j += 1;
        break;
      }
      j += 2;
    }
    if (out.length >= 16) segs.push({ start: m.index, end: j, kind: "separated", text: out });
    SEP_RE.lastIndex = Math.max(j, m.index + 1);
  }
}

interface Segment {
  start: number;
  end: number;
  kind: string;
  text: string;
}

/** Decodes `\uXXXX`, `\xXX`, `%XX`, `&#NN;`/`&#xNN;` inside one region. */
function unescapeRegion(text: string, from: number, to: number): string {
  let out = "";
  let i = from;
  while (i < to) {
    const c = text.charCodeAt(i);
    if (c === 92 /* \ */ && i + 1 < to) {
      const n = text.charCodeAt(i + 1);
      if ((n === 117 || n === 85) && i + 5 < to + 0 && i + 6 <= to) {
        const v = Number.parseInt(text.slice(i + 2, i + 6), 16);
        if (!Number.isNaN(v) && /^[0-9a-fA-F]{4}$/.test(text.slice(i + 2, i + 6))) {
          out += String.fromCharCode(v);
          i += 6;
          continue;
        }
      }
      if (n === 120 && i + 4 <= to) {
        const a = hexVal(text.charCodeAt(i + 2));
        const b = hexVal(text.charCodeAt(i + 3));
        if (a >= 0 && b >= 0) {
          out += String.fromCharCode(a * 16 + b);
          i += 4;
          continue;
        }
      }
      out += text[i + 1];
      i += 2;
      continue;
    }
    if (c === 37 /* % */ && i + 3 <= to) {
      const a = hexVal(text.charCodeAt(i + 1));
      const b = hexVal(text.charCodeAt(i + 2));
      if (a >= 0 && b >= 0) {
        out += String.fromCharCode(a * 16 + b);
        i += 3;
        continue;
      }
    }
    if (c === 38 /* & */ && text.charCodeAt(i + 1) === 35 /* # */) {
      const semi = text.indexOf(";", i);
      if (semi !== -1 && semi < to && semi - i <= 10) {
        const body = text.slice(i + 2, semi);
        const v =
          body[0] === "x" || body[0] === "X"
            ? Number.parseInt(body.slice(1), 16)
            : Number.parseInt(body, 10);
        if (Number.isFinite(v) && v >= 0 && v < 0x110000) {
          out += String.fromCodePoint(v);
          i = semi + 1;
          continue;
        }
      }
    }
    out += text[i];
    i++;
  }
  return out;
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

/**
 * Finds encoded regions in one linear pass: escape regions, base64/base32/hex runs.
 * Bound: O(n) to find runs; decoding output is at most the run length.
 */
export function encodedSegments(text: string, maxInflate: number, knownRuns?: number[]): Segment[] {
  const segs: Segment[] = [];
  const n = text.length;
  // Separated letters and digits need no decoding (the known-secret projection drops the
  // separators); only separated escape sequences (`\\ u 0 0 7 3`, `% 2 F`) do.
  if (hasSeparatedEscape(text)) separatedSegments(text, segs);
  // Native substring searches decide whether the escape passes can find anything at all.
  const pct = text.indexOf("%") !== -1;
  if (pct || text.indexOf("u\\") !== -1) reversedEscapeSegments(text, segs);
  let covered = 0;
  const maybeEscapes =
    pct ||
    text.indexOf("\\u") !== -1 ||
    text.indexOf("\\U") !== -1 ||
    text.indexOf("\\x") !== -1 ||
    text.indexOf("\\\\") !== -1 ||
    text.indexOf("&#") !== -1;
  ESC_RE.lastIndex = maybeEscapes ? 0 : n;
  for (let m = ESC_RE.exec(text); m !== null; m = ESC_RE.exec(text)) {
    if (m.index < covered) continue;
    let start = m.index;
    while (start > covered && isEscapeRegionChar(text.charCodeAt(start - 1))) start--;
    let j = m.index + 1;
    while (j < n && isEscapeRegionChar(text.charCodeAt(j))) j++;
    segs.push({ start, end: j, kind: "escapes", text: unescapeRegion(text, start, j) });
    covered = j;
    ESC_RE.lastIndex = j;
  }
  let runs = knownRuns;
  if (!runs) {
    runs = [];
    RUN_RE.lastIndex = 0;
    for (let m = RUN_RE.exec(text); m !== null; m = RUN_RE.exec(text)) {
      const start = m.index + m[0].length - (m[1] as string).length;
      runs.push(start, start + (m[1] as string).length);
    }
  }
  for (let r = 0; r < runs.length; r += 2) {
    const i = runs[r] as number;
    const j = runs[r + 1] as number;
    const len = j - i;
    const maybeB64 = text.startsWith("H4sI", i) || plausibleBase64Text(text, i, j);
    const maybeHex = len >= 24 && plausibleHexText(text, i, j);
    const maybeB32 = plausibleBase32Text(text, i, j);
    if (!maybeB64 && !maybeHex && !maybeB32) continue;
    const run = text.slice(i, j);
    let end = j;
    while (end < n && end - j < 2 && text.charCodeAt(end) === 61) end++;
    let upper = 0;
    let lower = 0;
    let digit = 0;
    let hexOnly = true;
    let b32 = true;
    for (let k = 0; k < len; k++) {
      const d = run.charCodeAt(k);
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
    // Binary results (random-looking runs decode to garbage) are not rescanned: secrets, their
    // encodings and nested encodings all decode to printable text.
    // hex and base32 alphabets are case-insensitive: mixed-case hex and lowercase base32 decode too
    if (maybeHex && hexOnly) {
      const decoded = Buffer.from(run.slice(0, len & ~1), "hex").toString("latin1");
      if (mostlyPrintable(decoded)) segs.push({ start: i, end, kind: "hex", text: decoded });
    }
    if (maybeB32 && b32 && (upper === 0) !== (lower === 0) && digit > 0) {
      const decoded = decodeBase32(run);
      if (mostlyPrintable(decoded)) segs.push({ start: i, end, kind: "base32", text: decoded });
    }
    if (maybeB64 && upper > 0 && lower > 0) {
      const bytes = Buffer.from(run.replace(/-/g, "+").replace(/_/g, "/"), "base64");
      if (bytes.length > 2 && bytes[0] === 0x1f && bytes[1] === 0x8b) {
        try {
          const inflated = gunzipSync(bytes, { maxOutputLength: maxInflate });
          segs.push({ start: i, end, kind: "base64+gzip", text: inflated.toString("latin1") });
        } catch {
          segs.push({ start: i, end, kind: "base64+gzip-undecodable", text: "" });
        }
      } else {
        const decoded = bytes.toString("latin1");
        if (mostlyPrintable(decoded)) segs.push({ start: i, end, kind: "base64", text: decoded });
      }
    }
  }
  return segs;
}

/** Exercises keyword hits, base64/hex runs, escapes and a decoded layer; contains no secret. */
const WARMUP =
  '{"token":"abcdefghijklmnopqrstuvwx","b":"aHR0cHM6Ly9leGFtcGxlLmNvbS9wYXRoP3E9MQ==",' +
  '"h":"68747470733a2f2f6578616d706c652e636f6d","u":"https://example.com/a%41b\\u0041"}';

/** Builds a scanner. Construction does the expensive work (automaton, variant index) once. */
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
  const secrets = options.knownSecrets ?? [];
  const index =
    useKnown && secrets.length > 0
      ? new KnownSecretIndex(secrets, { minChars: options.minSecretChars ?? 12 })
      : undefined;

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
  let hitBuffer: Int32Array = new Int32Array(4096);
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
  const anchored = rules.map((r) =>
    r.window ? undefined : new RegExp(r.pattern.source, `${r.pattern.flags.replace("g", "")}yd`),
  );
  const regexes = rules.map(
    (r) =>
      new RegExp(
        r.pattern.source,
        r.pattern.flags.includes("d") ? r.pattern.flags : `${r.pattern.flags}d`,
      ),
  );

  function fingerprint(value: string): string {
    return createHmac("sha256", key).update(value).digest("hex").slice(0, 16);
  }

  function scanTokens(
    text: string,
    surface: string,
    out: Finding[],
    encoding: string,
    budget: Budget,
    hits?: Int32Array,
    nHits = 0,
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
        fingerprint: fingerprint(text.slice(0, 4096)),
        encoding,
      });
    }
    const windows: number[][] = rules.map(() => []);
    const record = (ri: number, m: RegExpExecArray, offset: number): void => {
      const rule = rules[ri] as TokenRule;
      const group = rule.secret ?? 0;
      const idx = m.indices?.[group] ?? m.indices?.[0];
      const value = m[group] ?? m[0];
      if (!idx) return;
      if (rule.placeholderCheck && looksLikePlaceholder(value)) return;
      out.push({
        detector: "token_patterns",
        rule: rule.id,
        surface,
        start: offset + idx[0],
        end: offset + idx[1],
        severity: "block",
        fingerprint: fingerprint(value),
        encoding,
      });
    };
    // Token characters after a keyword, up to what any of its rules needs. Hits arrive in text
    // order, so the run of token characters measured for one hit is reused by the next hits
    // inside it: every character is read at most once per scan, however the hits overlap.
    const n = text.length;
    let runFrom = 0;
    let runTo = -1; // text[runFrom, runTo) are all token characters
    let runClosed = false; // runTo is the run's real end (a non-token character or the text end)
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
          const set = ruleAfter[ri];
          if (set && !afterWithin(set, end, start + (rules[ri] as TokenRule).maxLength)) continue;
          // The match starts at the keyword: one sticky attempt, bounded by the rule's maxLength.
          sticky.lastIndex = start;
          const m = sticky.exec(text);
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
            runTo = k;
            runClosed = k < stop || k === n;
          }
          tail = Math.min(cap, runTo - end);
          if (tail < (kwMinTail[id] as number)) continue;
        }
        onHit(id, end, tail);
      }
    } else {
      ac.search(text, (id, end) => {
        const cap = kwMaxTail[id] as number;
        const tail = cap > 0 ? tailAfter(end, cap) : 0;
        if (tail >= (kwMinTail[id] as number)) onHit(id, end, tail);
      });
    }
    for (let ri = 0; ri < rules.length; ri++) {
      const ws = windows[ri] as number[];
      if (ws.length === 0) continue;
      const re = regexes[ri] as RegExp;
      for (let w = 0; w < ws.length; w += 2) {
        if (performance.now() > budget.deadline) {
          budget.exceeded = true;
          return;
        }
        const ws0 = ws[w] as number;
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

  function scanKnown(
    text: string,
    surface: string,
    out: Finding[],
    encoding: string,
    runs?: number[],
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
        fingerprint: fingerprint(s.value),
        encoding: encoding === "raw" ? m.variant : `${encoding}>${m.variant}`,
      });
    }
  }

  function scanEntropy(text: string, surface: string, out: Finding[]): void {
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
          fingerprint: fingerprint(text.slice(i, j)),
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
  ): Finding[] {
    const out: Finding[] = [];
    const runs: number[] | undefined = index && depth < maxDepth ? [] : undefined;
    // With a known-secret index the keyword automaton runs inside its projection pass.
    const fused: FusedPass | undefined =
      index && runs && useTokens ? { ac: acTables, hits: hitBuffer, nHits: 0 } : undefined;
    if (useKnown) scanKnown(text, surface, out, encoding, runs, fused);
    if (fused) hitBuffer = fused.hits; // keep a grown buffer for the next scan
    if (useTokens) scanTokens(text, surface, out, encoding, budget, fused?.hits, fused?.nHits);
    if (useEntropy && depth === 0) scanEntropy(text, surface, out);
    if (performance.now() > budget.deadline) budget.exceeded = true;
    if (budget.exceeded || depth >= maxDepth || (!useTokens && !useKnown)) return out;
    for (const seg of encodedSegments(text, maxInflate, runs)) {
      if (seg.kind.endsWith("undecodable")) continue;
      if (seg.text.length === 0) continue;
      const enc = encoding === "raw" ? `decoded:${seg.kind}` : `${encoding}>${seg.kind}`;
      for (const f of scanLayer(seg.text, surface, depth + 1, enc, budget)) {
        out.push({ ...f, start: seg.start, end: seg.end });
      }
      if (budget.exceeded) break;
    }
    return out;
  }

  function scan(text: string, surface = "body"): ScanResult {
    if (typeof text !== "string") {
      throw new EgressDlpError("E_INVALID_INPUT", "scan() takes a string; decode bytes first");
    }
    if (text.length > maxChars) {
      return {
        findings: [budgetFinding(surface, "bytes", text.length)],
        blocked: true,
      };
    }
    const budget: Budget = { deadline: performance.now() + maxMs, exceeded: false };
    const raw = scanLayer(text, surface, 0, "raw", budget);
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
      const copy = { ...f };
      open.set(k, copy);
      findings.push(copy);
    }
    if (budget.exceeded) findings.push(budgetFinding(surface, "time", text.length));
    return { findings, blocked: findings.some((f) => f.severity === "block") };
  }

  // Prime V8's type feedback on every path of the hot loops (keyword hits, base64 runs, decoded
  // layers, code after the loops) with a small sample before real input arrives. Without it, the
  // first large scan gets its loops compiled mid-flight (on-stack replacement) with no feedback
  // for code that only runs after them; that code then deoptimises on every later scan and the
  // process can stay at about half speed (seen as bimodal bench runs).
  scan(WARMUP, "warmup");

  return {
    scan,
    fingerprint,
    detectors: [...detectors],
    knownSecretCount: secrets.length,
  };
}

export function budgetFinding(surface: string, kind: "time" | "bytes", length: number): Finding {
  return {
    detector: "budget",
    rule: kind === "time" ? "time-budget-exceeded" : "byte-budget-exceeded",
    surface,
    start: 0,
    end: length,
    severity: "block",
    fingerprint: "",
  };
}
