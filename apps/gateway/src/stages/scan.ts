// Stage 5, outbound DLP: the request's headers and body scanned once, linearly, against the
// egress route of the upstream; blocked (403), redacted (the body re-parsed), or passed as is.
import { recordFindings } from "./findings.ts";
import { sendError } from "./reply.ts";
import type { Call, Pipeline } from "./types.ts";

export function scanOutbound(call: Call, p: Pipeline): boolean {
  const { res, api, target, requestId } = call;
  const upstreamRef = { origin: target.origin, path: target.pathname };
  call.upstreamRef = upstreamRef;
  const verdict = p.dlp.outbound(
    call.req.headers,
    call.text,
    call.credentialHeader,
    upstreamRef,
    call.identity.bottle,
  );
  if (verdict.action === "no_route") {
    sendError(
      res,
      api,
      403,
      "permission_error",
      `no egress route covers ${target.origin}${target.pathname}; add a route for this host to the gateway config's routes`,
    );
    return false;
  }
  if (verdict.findings.length > 0) recordFindings(p, "outbound", verdict.findings, verdict.action);
  if (verdict.action === "block") {
    p.log({
      level: "warn",
      event: "dlp.outbound.blocked",
      requestId,
      bottle: call.identity.bottle,
      findings: verdict.findings,
    });
    sendError(
      res,
      api,
      403,
      "dlp_blocked",
      "the request was blocked by the gateway's data-loss policy: it carries a secret or credential",
      {
        findings: verdict.findings.map((f) => ({
          detector: f.detector,
          rule: f.rule,
          surface: f.surface,
        })),
      },
    );
    return false;
  }
  if (verdict.action === "redact") {
    call.redacted = true;
    p.log({ level: "warn", event: "dlp.outbound.redacted", requestId, findings: verdict.findings });
    call.text = verdict.body;
    try {
      call.body = JSON.parse(call.text);
    } catch {
      sendError(res, api, 403, "dlp_blocked", "redaction left the body unparseable; blocked");
      return false;
    }
  }
  return true;
}
