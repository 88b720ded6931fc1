import { createHmac, randomBytes } from "node:crypto";
import { AhoCorasick } from "./aho.ts";
import type { Finding, ScanResult } from "./scan.ts";

/**
 * `naive_injection_detection`: phrase lists, not a classifier. The text is normalised (NFKC,
 * lower case, whitespace collapsed; zero-width characters removed; Unicode tag characters decoded
 * to the ASCII they smuggle), then one Aho-Corasick pass finds disclosure phrases ("system
 * prompt", "api key", ...) and jailbreak phrases ("ignore previous instructions", ...). A two-
 * pointer merge over the two sorted hit lists finds, for every hit, the closest hit of the other
 * kind: a pair within `window` characters blocks; other hits warn.
 *
 * Bound: O(n) normalisation + O(n) automaton + O(hits) merge.
 */

export const DISCLOSURE_PHRASES: readonly string[] = [
  "system prompt",
  "system message",
  "your instructions",
  "initial instructions",
  "hidden instructions",
  "reveal your",
  "print your",
  "repeat the text above",
  "repeat everything above",
  "repeat the words above",
  "show me your prompt",
  "api key",
  "api_key",
  "apikey",
  "secret key",
  "access token",
  "auth token",
  "bearer token",
  "environment variables",
  "env vars",
  ".env file",
  "credentials",
  "password",
  "private key",
  "id_rsa",
  ".ssh/",
  "aws_secret_access_key",
  "exfiltrate",
  "send the contents",
  "upload the contents",
  "post the contents",
];

export const JAILBREAK_PHRASES: readonly string[] = [
  "ignore previous instructions",
  "ignore all previous instructions",
  "ignore prior instructions",
  "ignore all prior",
  "ignore the above",
  "ignore your instructions",
  "ignore your previous",
  "disregard previous instructions",
  "disregard all prior",
  "disregard the above",
  "disregard your instructions",
  "forget your instructions",
  "forget all previous",
  "forget everything above",
  "override your instructions",
  "new instructions:",
  "system override",
  "you are now dan",
  "do anything now",
  "developer mode",
  "jailbreak",
  "jailbroken",
  "no longer bound by",
  "without any restrictions",
  "you have no restrictions",
  "pretend you have no rules",
  "act as an unrestricted",
  "bypass your safety",
  "bypass your guidelines",
];

export interface InjectionOptions {
  /** Characters between a disclosure and a jailbreak phrase that still count as near. Default 500. */
  window?: number;
  fingerprintKey?: string | Uint8Array;
  surface?: string;
  /** Extra phrases (lower case). */
  disclosurePhrases?: readonly string[];
  jailbreakPhrases?: readonly string[];
}

interface Normalized {
  text: string;
  /** For each normalized UTF-16 unit, the offset of its source; undefined = identity. */
  map: Int32Array | undefined;
  /** Zero-width and tag characters found (offsets in the original text). */
  hidden: { start: number; end: number; kind: "zero-width" | "tag" }[];
}

function isZeroWidth(cp: number): boolean {
  return (
    (cp >= 0x200b && cp <= 0x200f) ||
    (cp >= 0x2060 && cp <= 0x2064) ||
    cp === 0xfeff ||
    cp === 0x00ad ||
    cp === 0x180e ||
    (cp >= 0x202a && cp <= 0x202e) ||
    (cp >= 0x2066 && cp <= 0x2069)
  );
}

/**
 * NFKC per non-ASCII code point, zero-width characters dropped, tag characters decoded. ASCII runs
 * are copied as slices (lower-casing and whitespace folding happen in the automaton). Linear.
 */
export function normalizeForInjection(text: string): Normalized {
  const n = text.length;
  const hidden: Normalized["hidden"] = [];
  if (!NON_ASCII.test(text)) {
    return { text, map: undefined, hidden };
  }
  const parts: string[] = [];
  const map = new Int32Array(n * 3 + 8);
  let len = 0;
  const emit = (s: string, origin: number) => {
    parts.push(s);
    for (let k = 0; k < s.length && len < map.length; k++) map[len++] = origin;
  };
  let i = 0;
  while (i < n) {
    let j = i;
    while (j < n && text.charCodeAt(j) < 128) j++;
    if (j > i) {
      parts.push(text.slice(i, j));
      for (let k = i; k < j && len < map.length; k++) map[len++] = k;
      i = j;
      continue;
    }
    const cp = text.codePointAt(i) as number;
    const width = cp > 0xffff ? 2 : 1;
    if (cp >= 0xe0000 && cp <= 0xe007f) {
      // Unicode tag characters smuggle ASCII: decode them so hidden phrases are scanned, and flag.
      const last = hidden[hidden.length - 1];
      if (last && last.kind === "tag" && last.end === i) last.end = i + width;
      else hidden.push({ start: i, end: i + width, kind: "tag" });
      const ascii = cp - 0xe0000;
      if (ascii >= 0x20 && ascii < 0x7f) emit(String.fromCharCode(ascii), i);
    } else if (isZeroWidth(cp)) {
      const last = hidden[hidden.length - 1];
      if (last && last.kind === "zero-width" && last.end === i) last.end = i + width;
      else hidden.push({ start: i, end: i + width, kind: "zero-width" });
    } else {
      emit(String.fromCodePoint(cp).normalize("NFKC").toLowerCase(), i);
    }
    i += width;
  }
  return { text: parts.join(""), map: map.subarray(0, len), hidden };
}

const NON_ASCII = /[^\x00-\x7f]/;

function lower(t: string, i: number): number {
  const c = t.charCodeAt(i);
  return c >= 65 && c <= 90 ? c | 32 : c;
}

function isWordChar(c: number): boolean {
  return (c >= 97 && c <= 122) || (c >= 48 && c <= 57) || c === 95;
}

interface Hit {
  start: number;
  end: number;
  phrase: number;
}

export interface InjectionScanner {
  scan(text: string, surface?: string): ScanResult;
  /** `scan`, plus the work it counted (for linearity tests). */
  measure(text: string, surface?: string): ScanResult & { work: number };
}

export function createInjectionScanner(options: InjectionOptions = {}): InjectionScanner {
  const windowSize = options.window ?? 500;
  const disclosure = [...DISCLOSURE_PHRASES, ...(options.disclosurePhrases ?? [])];
  const jailbreak = [...JAILBREAK_PHRASES, ...(options.jailbreakPhrases ?? [])];
  const phrases = [...disclosure, ...jailbreak];
  const ac = new AhoCorasick(phrases);
  const key =
    options.fingerprintKey === undefined
      ? randomBytes(32)
      : typeof options.fingerprintKey === "string"
        ? Buffer.from(options.fingerprintKey, "utf8")
        : options.fingerprintKey;
  const fp = (s: string) => createHmac("sha256", key).update(s).digest("hex").slice(0, 16);

  function scan(text: string, surface = options.surface ?? "body"): ScanResult {
    const { findings, blocked } = measure(text, surface);
    return { findings, blocked };
  }

  /** The scan, plus its counted work: characters normalised and searched, hits merged and sorted. */
  function measure(
    text: string,
    surface = options.surface ?? "body",
  ): ScanResult & { work: number } {
    const norm = normalizeForInjection(text);
    const t = norm.text;
    const dHits: Hit[] = [];
    const jHits: Hit[] = [];
    ac.searchCollapsed(t, (id, start, end) => {
      // whole-word boundaries (phrases that start/end with punctuation need none there)
      if (start > 0 && isWordChar(lower(t, start - 1)) && isWordChar(lower(t, start))) return;
      if (end < t.length && isWordChar(lower(t, end)) && isWordChar(lower(t, end - 1))) return;
      (id < disclosure.length ? dHits : jHits).push({ start, end, phrase: id });
    });
    dHits.sort((a, b) => a.start - b.start);
    jHits.sort((a, b) => a.start - b.start);
    const findings: Finding[] = [];
    const map = norm.map;
    const orig = (i: number) => (map ? (map[Math.min(i, map.length - 1)] ?? 0) : i);
    const origEnd = (i: number) => {
      if (!map) return i;
      const o = map[i - 1] ?? 0;
      const cp = text.codePointAt(o) ?? 0;
      return o + (cp > 0xffff ? 2 : 1);
    };
    // Two-pointer merge: for each hit, the nearest hit of the other kind. O(|D| + |J|).
    const nearD = new Int32Array(dHits.length).fill(-1);
    const nearJ = new Int32Array(jHits.length).fill(-1);
    const gap = (a: Hit, b: Hit) =>
      a.end <= b.start ? b.start - a.end : b.end <= a.start ? a.start - b.end : 0;
    let j = 0;
    let steps = 0;
    for (let i = 0; i < dHits.length; i++) {
      const d = dHits[i] as Hit;
      steps++;
      while (j + 1 < jHits.length && (jHits[j + 1] as Hit).start <= d.start) {
        j++;
        steps++;
      }
      for (const k of [j, j + 1]) {
        const jh = jHits[k];
        if (!jh) continue;
        const g = gap(d, jh);
        if (g <= windowSize) {
          const best = nearD[i] as number;
          if (best === -1 || g < gap(d, jHits[best] as Hit)) nearD[i] = k;
          const bj = nearJ[k] as number;
          if (bj === -1 || g < gap(dHits[bj] as Hit, jh)) nearJ[k] = i;
        }
      }
    }
    dHits.forEach((d, i) => {
      const k = nearD[i] as number;
      if (k === -1) {
        findings.push(finding("disclosure-phrase", d.start, d.end, "warn", d.phrase));
        return;
      }
      const jh = jHits[k] as Hit;
      findings.push(
        finding(
          "disclosure-near-jailbreak",
          Math.min(d.start, jh.start),
          Math.max(d.end, jh.end),
          "block",
          d.phrase,
        ),
      );
    });
    jHits.forEach((jh, k) => {
      if (nearJ[k] === -1)
        findings.push(finding("jailbreak-phrase", jh.start, jh.end, "warn", jh.phrase));
    });
    for (const h of norm.hidden) {
      findings.push({
        detector: "naive_injection_detection",
        rule: h.kind === "tag" ? "unicode-tag-characters" : "zero-width-characters",
        surface,
        start: h.start,
        end: h.end,
        severity: "warn",
        fingerprint: fp(text.slice(h.start, h.end)),
      });
    }
    findings.sort((a, b) => a.start - b.start || b.end - a.end);
    const hits = dHits.length + jHits.length;
    const work = text.length + t.length + steps + Math.ceil(hits * Math.log2(hits + 2));
    return { findings, blocked: findings.some((f) => f.severity === "block"), work };

    function finding(
      rule: string,
      s: number,
      e: number,
      severity: "block" | "warn",
      phrase: number,
    ): Finding {
      return {
        detector: "naive_injection_detection",
        rule,
        surface,
        start: orig(s),
        end: origEnd(e),
        severity,
        fingerprint: fp(phrases[phrase] as string),
      };
    }
  }

  return { scan, measure };
}

let defaultScanner: InjectionScanner | undefined;

/** Scans inbound text (a response body) with the default phrase lists. */
export function scanInbound(text: string, options?: InjectionOptions): ScanResult {
  if (options) return createInjectionScanner(options).scan(text);
  defaultScanner ??= createInjectionScanner();
  return defaultScanner.scan(text);
}
