// Stage 9b, a complete (non-streamed) answer: read it all (usage lives in the JSON), scan it
// for injection, forward the same bytes (or their translation), settle with the usage read.
import type { DlpFinding } from "../dlp-types.ts";
import { responseText } from "../text.ts";
import { translateResponseText } from "../translate-stage.ts";
import { reportInbound } from "./findings.ts";
import { classifyUpstreamError, missingUsage, sendError } from "./reply.ts";
import { settle } from "./settle.ts";
import { endStopped } from "./stop.ts";
import type { Call, MeteredUsage, Pipeline } from "./types.ts";

export async function respondJson(call: Call, p: Pipeline, contentType: string): Promise<void> {
  const { upstream, target, res, api, requestId } = call;
  let buf: Buffer;
  try {
    buf = await upstream.body.bytes();
  } catch (error) {
    await settle(p, call, missingUsage());
    if (call.stopped !== undefined) return endStopped(res, api, call.stopped);
    if (call.clientGone) return;
    const c = classifyUpstreamError(error);
    p.metrics.upstreamErrors.inc([target.provider, c.kind]);
    return sendError(res, api, c.status, c.type, `${c.message} (provider ${target.provider})`);
  }
  let usage: MeteredUsage;
  let parsed: unknown;
  try {
    parsed = JSON.parse(buf.toString("utf8"));
    usage = p.metering.parse(target.api, parsed);
  } catch {
    usage = missingUsage();
  }
  const said = responseText(target.api, parsed);
  let findings: DlpFinding[];
  if (p.dlp.inboundOnce !== undefined)
    findings = p.dlp.inboundOnce(call.upstreamRef, said, call.identity.bottle);
  else {
    const scan = p.dlp.inbound(call.upstreamRef, call.identity.bottle);
    findings = scan.write(said).concat(scan.end());
  }
  if (findings.length > 0) {
    if (reportInbound(p, findings, requestId)) {
      void settle(p, call, usage);
      return sendError(
        res,
        api,
        502,
        "dlp_blocked",
        "the upstream response was blocked by the gateway's prompt-injection policy",
        {
          findings: findings.map((f) => ({
            detector: f.detector,
            rule: f.rule,
            surface: "response",
          })),
        },
      );
    }
    res.setHeader("x-bottlekit-inbound-findings", String(findings.length));
  }
  const status = upstream.statusCode;
  if (target.translated) {
    let answer: string;
    try {
      answer = translateResponseText(target.api, api, parsed, call.translation);
    } catch (error) {
      // The upstream answered and is charged; the client gets why it cannot see the answer.
      await settle(p, call, usage);
      p.metrics.upstreamErrors.inc([target.provider, "untranslatable"]);
      return sendError(
        res,
        api,
        502,
        "upstream_error",
        `the upstream's ${target.api} response cannot be translated to ${api}: ${error instanceof Error ? error.message : String(error)} (provider ${target.provider})`,
      );
    }
    res.writeHead(status, {
      "content-type": "application/json",
      "content-length": Buffer.byteLength(answer),
    });
    res.end(answer);
  } else {
    res.writeHead(status, { "content-type": contentType, "content-length": buf.length });
    res.end(buf);
  }
  await settle(p, call, usage);
}
