import {
  createInjectionScanner,
  createStreamScanner,
  type InjectionScanner,
} from "@bottlekit/egress-dlp";
import type { DlpFinding, InboundScan } from "./dlp-types.ts";

/**
 * Characters kept between pieces: the detector pairs a disclosure phrase with a jailbreak phrase
 * up to 500 characters apart, so 1 KiB covers the window plus the longest phrase.
 */
const CARRY = 1024;

let shared: InjectionScanner | undefined;

/**
 * Incremental prompt-injection scan of a response's text, on egress-dlp's injection detector and
 * streaming scanner (carry-over between pieces, each finding reported once). Every piece is
 * scanned as it arrives, before it is forwarded. Cost per piece: O(piece + CARRY).
 */
export function createInjectionScan(): InboundScan {
  shared ??= createInjectionScanner({ surface: "response" });
  const stream = createStreamScanner(shared, { surface: "response", carry: CARRY });
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
