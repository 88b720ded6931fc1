// Stage 9c, a streamed answer: forwarded chunk by chunk with backpressure, through the usage tap
// and the inbound injection scan. Tap, scan and completeness read the upstream's own bytes in
// its own API; a translated stream is re-framed for the client after them, and usage the gateway
// asked for on the client's behalf is stripped again. Then settle.
import { once } from "node:events";
import { performance } from "node:perf_hooks";
import { errorEvent } from "../apis.ts";
import { UsageStripper } from "../sse.ts";
import { TextExtractor } from "../text.ts";
import { StreamStage } from "../translate-stage.ts";
import { reportInbound } from "./findings.ts";
import { classifyUpstreamError, NO_FINDINGS } from "./reply.ts";
import { settle } from "./settle.ts";
import { endStopped } from "./stop.ts";
import type { Call, Pipeline } from "./types.ts";

const BLOCKED = "the upstream response was blocked by the gateway's prompt-injection policy";

export async function respondStream(call: Call, p: Pipeline, contentType: string): Promise<void> {
  const { upstream, target, res, api, requestId } = call;
  const tap = p.metering.tap(target.api);
  const scan = p.dlp.inbound(call.upstreamRef, call.identity.bottle);
  const extractor = new TextExtractor(target.api);
  const stripper = call.injectUsage ? new UsageStripper() : undefined;
  const stage = target.translated
    ? new StreamStage(target.api, api, call.facts.clientWantsUsage, call.translation)
    : undefined;
  let first = true;
  let failure: unknown;
  let blocked = false;
  res.writeHead(upstream.statusCode, {
    "content-type": contentType,
    "cache-control": "no-cache",
    connection: "keep-alive",
  });
  try {
    for await (const chunk of upstream.body as AsyncIterable<Buffer>) {
      tap.write(chunk);
      const said = extractor.push(chunk);
      const findings = said.length > 0 ? scan.write(said) : NO_FINDINGS;
      if (findings.length > 0 && reportInbound(p, findings, requestId)) {
        blocked = true;
        break;
      }
      const piece =
        stage !== undefined
          ? stage.push(chunk)
          : stripper === undefined
            ? chunk
            : stripper.push(chunk);
      if (piece.length === 0) continue;
      if (first) {
        first = false;
        p.metrics.ttft.observe(
          [target.provider, target.model],
          (performance.now() - call.t0) / 1000,
        );
      }
      if (call.clientGone || call.stopped !== undefined) break;
      if (!res.write(piece)) {
        if (!res.destroyed) await Promise.race([once(res, "drain"), once(res, "close")]);
        if (call.clientGone) break;
      }
    }
  } catch (error) {
    failure = error;
  }
  if (call.stopped !== undefined && !call.clientGone) {
    // Cut off while streaming: the client is told why; usage read from a terminal event before
    // the stop is final, otherwise the reservation is charged.
    call.abortUpstream();
    endStopped(res, api, call.stopped);
    await settle(p, call, tap.end());
    return;
  }
  if (blocked) {
    call.abortUpstream();
    if (!call.clientGone) res.end(errorEvent(api, "dlp_blocked", BLOCKED));
    // Usage read from a terminal event before the block is final; otherwise charged in full.
    await settle(p, call, tap.end());
    return;
  }
  if (!call.clientGone && failure === undefined) {
    // Whatever text was still buffered (an unterminated last line) gets scanned too.
    const tail = scan.write(extractor.end()).concat(scan.end());
    if (tail.length > 0 && reportInbound(p, tail, requestId)) {
      res.end(errorEvent(api, "dlp_blocked", BLOCKED));
      await settle(p, call, tap.end());
      return;
    }
  }
  if (stripper !== undefined && !call.clientGone && failure === undefined) {
    const rest = stripper.end();
    if (rest.length > 0) res.write(rest);
  }
  if (stage !== undefined && !call.clientGone && failure === undefined && extractor.complete) {
    const rest = stage.end();
    if (rest.length > 0) res.write(rest);
  }
  // Usage read from the terminal event is final: a client that closes right after it (openai
  // 7.x stops reading at `[DONE]`, Codex at `response.completed`) or an upstream that then drops
  // its connection does not make it a missing-usage call. `usageMissing` stays true, and the
  // reservation is charged, only when no final usage report arrived.
  const usage = tap.end();
  if (call.clientGone) {
    p.log({
      level: "info",
      event: "client.disconnected",
      requestId,
      phase: usage.usageMissing ? "stream" : "after-usage",
    });
    await settle(p, call, usage);
    return;
  }
  if (failure === undefined && extractor.complete && usage.usageMissing) {
    // A complete stream without a usage report: the client got everything; the ledger charges
    // the full reservation (fail closed) and flags it.
    p.log({
      level: "warn",
      event: "usage.missing",
      requestId,
      provider: target.provider,
      model: target.model,
    });
  }
  if (failure !== undefined || !extractor.complete) {
    const c =
      failure !== undefined
        ? classifyUpstreamError(failure)
        : {
            status: 502,
            type: "upstream_error" as const,
            kind: "truncated",
            message: "the upstream stream ended before it was complete",
          };
    p.metrics.upstreamErrors.inc([target.provider, failure === undefined ? "truncated" : c.kind]);
    p.log({
      level: "error",
      event: "upstream.stream_failed",
      requestId,
      provider: target.provider,
      kind: c.kind,
    });
    res.end(errorEvent(api, c.type, `${c.message} (provider ${target.provider})`));
    await settle(p, call, usage);
    return;
  }
  res.end();
  await settle(p, call, usage);
}
