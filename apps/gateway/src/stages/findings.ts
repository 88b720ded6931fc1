// DLP findings: counted in /metrics and logged (names and rules only, never the matched text).
import type { DlpFinding } from "../dlp-types.ts";
import type { Pipeline } from "./types.ts";

export function recordFindings(
  p: Pipeline,
  direction: "outbound" | "inbound",
  findings: DlpFinding[],
  action: string,
): void {
  for (const f of findings) p.metrics.dlpFindings.inc([direction, f.detector, action]);
}

/**
 * Records and logs inbound findings; true when the policy blocks the response (a blocking
 * finding and `inboundAction: block`), otherwise they are a warning.
 */
export function reportInbound(p: Pipeline, findings: DlpFinding[], requestId: string): boolean {
  const block = p.dlp.inboundAction === "block" && findings.some((f) => f.severity === "block");
  recordFindings(p, "inbound", findings, block ? "block" : "warn");
  p.log({
    level: "warn",
    event: `dlp.inbound.${block ? "blocked" : "flagged"}`,
    requestId,
    findings,
  });
  return block;
}
