import type { IncomingHttpHeaders } from "node:http";

/** A DLP finding as the gateway reports it: names and fingerprints, never the matched text. */
export interface DlpFinding {
  detector: string;
  rule: string;
  /** `header:<name>` or `body`. */
  surface: string;
  severity: "block" | "warn";
  fingerprint?: string;
}

export interface OutboundVerdict {
  /** `no_route`: egress routes are configured and none covers the upstream (fail closed). */
  action: "allow" | "block" | "redact" | "no_route";
  /** The body to forward (redacted when `action` is "redact", else the input unchanged). */
  body: string;
  findings: DlpFinding[];
}

/** Incremental inbound scanner for one response (streamed or not). */
export interface InboundScan {
  /** Feeds the next piece of the model's text; returns new findings (usually none). */
  write(text: string): DlpFinding[];
  end(): DlpFinding[];
}

/** The DLP policy the gateway applies to every call. */
export interface GatewayDlp {
  /**
   * Scans the client's headers (minus its gateway credential) and body before forwarding, with the
   * policy of the egress route that covers `upstream` (or the config's `dlp.outbound` policy),
   * made stricter by the `dlp` of the calling bottle's manifest route for that host, if any.
   */
  outbound(
    headers: IncomingHttpHeaders,
    body: string,
    skipHeader: string | undefined,
    upstream: { origin: string; path: string },
    bottle?: string,
  ): OutboundVerdict;
  /** A fresh inbound scanner for one response to `upstream` (a no-op when its route disables it). */
  inbound(upstream: { origin: string; path: string }, bottle?: string): InboundScan;
  /**
   * Scans one complete response text for `upstream`: the same findings as `inbound(upstream)`
   * fed `text` then ended, in one pass. Optional; the gateway falls back to `inbound`.
   */
  inboundOnce?(
    upstream: { origin: string; path: string },
    text: string,
    bottle?: string,
  ): DlpFinding[];
  /** What an inbound finding of severity "block" does: flag it only, or end the response. */
  readonly inboundAction: "warn" | "block";
  /**
   * Whether `value` is a real provider credential: one the gateway holds, or anything matching a
   * provider token pattern. Clients must never present one unless the provider is passthrough.
   */
  isProviderCredential(value: string): boolean;
}
