// Stage 8, forward: the upstream request on the origin's connection pool, with the provider's
// credential injected and only the client headers the upstream needs. A client that left during
// the checks sends nothing; an upstream that cannot be reached releases the reservation.
import type { IncomingMessage } from "node:http";
import { performance } from "node:perf_hooks";
import { endpointUpstreamPath } from "../apis.ts";
import type { UpstreamTarget } from "../router.ts";
import { classifyUpstreamError, sendError } from "./reply.ts";
import { release } from "./settle.ts";
import { endStopped } from "./stop.ts";
import type { Call, Pipeline } from "./types.ts";
import { UpstreamExchange } from "./upstream.ts";

// Headers a client may send that are forwarded upstream. Everything else (cookies, the gateway
// credential, hop-by-hop headers, host) stays at the gateway.
export const FORWARDED_HEADERS = [
  "accept",
  "anthropic-version",
  "anthropic-beta",
  "openai-beta",
  "user-agent",
  "idempotency-key",
] as const;

/** Headers of the upstream request: the client's allowed headers, then the provider's. */
export function upstreamHeaders(
  req: IncomingMessage,
  target: UpstreamTarget,
  bytes: number,
  requestId: string,
  clientCredential: string | undefined,
): Record<string, string> {
  const headers: Record<string, string> = {
    "content-type": "application/json",
    "content-length": String(bytes),
    "x-request-id": requestId,
  };
  const rh = req.headers;
  for (const h of FORWARDED_HEADERS) {
    const v = rh[h];
    if (typeof v === "string") headers[h] = v;
  }
  for (const k in target.headers) headers[k] = target.headers[k] as string;
  if (clientCredential !== undefined && target.authHeader !== undefined) {
    headers[target.authHeader] =
      target.authHeader === "authorization" ? `Bearer ${clientCredential}` : clientCredential;
  }
  return headers;
}

export async function forward(call: Call, p: Pipeline): Promise<boolean> {
  const { target, requestId } = call;
  const headers = upstreamHeaders(
    call.req,
    target,
    call.outBytes,
    requestId,
    call.clientCredential,
  );
  if (call.clientGone) {
    // The client left while we were checking: nothing goes upstream.
    await release(p, call);
    p.log({ level: "info", event: "client.disconnected", requestId, phase: "before-upstream" });
    return false;
  }
  if (call.stopped !== undefined) {
    // The bottle was cut off while we were checking: nothing goes upstream.
    await release(p, call);
    endStopped(call.res, call.api, call.stopped);
    return false;
  }
  const tUp = performance.now();
  try {
    const exchange = new UpstreamExchange();
    // Set before sending, so that an abort (client gone, bottle stopped) reaches it at any point.
    call.upstream = exchange;
    if (call.upstreamAborted) exchange.abort();
    await exchange.send(await p.poolFor(target.origin), {
      path: call.kind === "generate" ? target.path : endpointUpstreamPath(target.path, call.kind),
      method: "POST",
      headers,
      body: call.out,
    });
  } catch (error) {
    await release(p, call);
    if (call.stopped !== undefined) {
      endStopped(call.res, call.api, call.stopped);
      return false;
    }
    if (call.clientGone) {
      p.log({ level: "info", event: "client.disconnected", requestId, phase: "headers" });
      return false;
    }
    const c = classifyUpstreamError(error);
    p.metrics.upstreamErrors.inc([target.provider, c.kind]);
    p.log({
      level: "error",
      event: "upstream.failed",
      requestId,
      provider: target.provider,
      kind: c.kind,
    });
    sendError(call.res, call.api, c.status, c.type, `${c.message} (provider ${target.provider})`);
    return false;
  }
  p.metrics.upstreamLatency.observe([target.provider], (performance.now() - tUp) / 1000);
  return true;
}
