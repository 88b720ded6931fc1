import { scanInbound } from "@bottlekit/egress-dlp";
import type { DlpFinding, InboundScan } from "./dlp-types.ts";

/** Characters kept between pieces so a phrase pair split across chunks is still found. */
const CARRY = 1024;

/**
 * Incremental prompt-injection scan of a response's text on top of egress-dlp's inbound detector.
 * Each piece is scanned together with the last CARRY characters before it; only findings that end
 * inside the new piece are reported, so nothing is reported twice. Cost: O(piece + CARRY) per
 * piece, linear in the response for pieces of at least a few hundred characters (pieces are
 * batched until they reach 256 characters).
 */
export function createInjectionScan(): InboundScan {
  let carry = "";
  let pending = "";
  const flush = (): DlpFinding[] => {
    if (pending.length === 0) return [];
    const text = carry + pending;
    const from = carry.length;
    pending = "";
    carry = text.length > CARRY ? text.slice(text.length - CARRY) : text;
    const out: DlpFinding[] = [];
    for (const f of scanInbound(text).findings) {
      if (f.end <= from) continue;
      out.push({
        detector: f.detector,
        rule: f.rule,
        surface: "response",
        severity: f.severity,
        fingerprint: f.fingerprint,
      });
    }
    return out;
  };
  return {
    write(text: string): DlpFinding[] {
      pending += text;
      return pending.length >= 256 ? flush() : [];
    },
    end: flush,
  };
}
