import {
  createInjectionScanner,
  createStreamScanner,
  type InjectionScanner,
  type TextScanner,
} from "@bottlekit/egress-dlp";
import type { DlpFinding, InboundScan } from "./dlp-types.ts";

/**
 * Characters kept between pieces: the detector pairs a disclosure phrase with a jailbreak phrase
 * up to 500 characters apart, so 1 KiB covers the window plus the longest phrase.
 */
const CARRY = 1024;

/**
 * Characters collected before the stream scanner runs when findings only warn (half the carry):
 * a streamed answer arrives in pieces of a few characters, and scanning each with the 1 KiB carry
 * cost ~1 KiB of scanning per piece; batched, every character is scanned at most
 * 1 + CARRY / WARN_MIN_SCAN = 3 times. A finding is then reported up to this many characters
 * later (or at the end), which is fine for a warning. When findings block, every piece is
 * scanned before it is forwarded (minScan 0): nothing unscanned reaches the client.
 */
export const WARN_MIN_SCAN = CARRY / 2;

export interface InjectionScanOptions {
  /** Characters collected before a scan runs (egress-dlp's `minScan`); default 0, every piece. */
  minScan?: number;
  /** The text scanner (default: egress-dlp's injection detector); tests count its work. */
  scanner?: TextScanner;
}

let shared: InjectionScanner | undefined;

/**
 * Incremental prompt-injection scan of a response's text, on egress-dlp's injection detector and
 * streaming scanner (carry-over between pieces, each finding reported once). With `minScan` 0
 * every piece is scanned as it arrives, before it is forwarded: cost per piece O(piece + CARRY).
 * With `minScan` N, pieces are batched until N characters are pending: cost per character
 * O(1 + CARRY / N), findings reported up to N characters late (all of them by `end()`).
 */
export function createInjectionScan(options: InjectionScanOptions = {}): InboundScan {
  shared ??= createInjectionScanner({ surface: "response" });
  const scanner = options.scanner ?? shared;
  const stream = createStreamScanner(scanner, {
    surface: "response",
    carry: CARRY,
    minScan: options.minScan ?? 0,
  });
  const convert = (fs: ReturnType<typeof stream.write>): DlpFinding[] =>
    fs.map((f) => ({
      detector: f.detector,
      rule: f.rule,
      surface: "response",
      severity: f.severity,
      fingerprint: f.fingerprint,
    }));
  return {
    write: (text) => (text.length === 0 ? [] : convert(stream.write(text))),
    end: () => convert(stream.end()),
  };
}

/**
 * The same scan over one complete text, in one pass: exactly the findings of
 * `createInjectionScan()` fed the whole text then ended (the stream scanner's duplicate filter
 * included), without building a stream scanner (its UTF-8 decoder cost ~10 µs per response).
 */
export function scanInjectionOnce(text: string): DlpFinding[] {
  if (text.length === 0) return [];
  shared ??= createInjectionScanner({ surface: "response" });
  const out: DlpFinding[] = [];
  let seen: Set<string> | undefined;
  for (const f of shared.scan(text, "response").findings) {
    if (f.detector !== "budget") {
      const key = `${f.detector}\u0000${f.rule}\u0000${f.start}\u0000${f.end}`;
      seen ??= new Set();
      if (seen.has(key)) continue;
      seen.add(key);
    }
    out.push({
      detector: f.detector,
      rule: f.rule,
      surface: "response",
      severity: f.severity,
      fingerprint: f.fingerprint,
    });
  }
  return out;
}
