import type { AuditDecision, AuditEvent, ProxyMetrics } from "./types.ts";

/** Decision counters and the audit fan-out. O(1) per event. */

export const DECISIONS: readonly AuditDecision[] = [
  "tunnel",
  "allow",
  "redact",
  "llm",
  "websocket",
  "deny_route",
  "deny_websocket",
  "deny_cutoff",
  "deny_placeholder",
  "deny_dlp",
  "deny_injection",
  "deny_sni",
  "deny_auth",
  "deny_body_size",
  "deny_bad_request",
  "upstream_tls_error",
  "upstream_error",
  "closed_by_cutoff",
  "service",
];

export class Auditor {
  readonly decisions = Object.fromEntries(DECISIONS.map((d) => [d, 0])) as Record<
    AuditDecision,
    number
  >;
  bytesIn = 0;
  bytesOut = 0;

  constructor(private readonly sink: ((event: AuditEvent) => void) | undefined) {}

  emit(event: Omit<AuditEvent, "time">): void {
    this.decisions[event.decision]++;
    this.bytesIn += event.bytesIn;
    this.bytesOut += event.bytesOut;
    if (!this.sink) return;
    const full: AuditEvent = { time: new Date().toISOString(), ...event };
    try {
      this.sink(full);
    } catch {
      // an audit sink must not break the request path
    }
  }

  snapshot(extra: Omit<ProxyMetrics, "decisions" | "bytesIn" | "bytesOut">): ProxyMetrics {
    return {
      ...extra,
      decisions: { ...this.decisions },
      bytesIn: this.bytesIn,
      bytesOut: this.bytesOut,
    };
  }
}
