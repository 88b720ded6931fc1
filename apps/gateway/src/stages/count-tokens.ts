// Stage 7 for `POST /v1/messages/count_tokens` only: free, so not metered. Forwarded (after
// identity, routing and the outbound DLP scan, like any call) to the provider's own counter;
// when the provider has none (404/405), or the bottle is cut off (nothing leaves a cut-off
// bottle), answered with the gateway's estimate (bytes / 4), marked
// `x-bottlekit-token-count: estimate`. Every other call passes through.

import type { Dispatcher } from "undici";
import { endpointUpstreamPath } from "../apis.ts";
import { forwardUpstreamHeaders } from "../retry-hints.ts";
import { upstreamHeaders } from "./forward.ts";
import { classifyUpstreamError, sendError } from "./reply.ts";
import type { Call, Pipeline } from "./types.ts";

export async function countTokens(call: Call, p: Pipeline): Promise<boolean> {
  if (call.kind !== "count_tokens") return true;
  const { res, target } = call;
  const estimate = (): false => {
    const body = JSON.stringify({ input_tokens: Math.ceil(call.outBytes / 4) });
    res.writeHead(200, {
      "content-type": "application/json",
      "content-length": Buffer.byteLength(body),
      "x-bottlekit-token-count": "estimate",
    });
    res.end(body);
    return false;
  };
  let cutOff: boolean;
  try {
    cutOff = await p.store.isCutOff(call.identity.bottle);
  } catch {
    cutOff = true;
  }
  if (cutOff) return estimate();
  let upstream: Dispatcher.ResponseData;
  try {
    upstream = await (await p.poolFor(target.origin)).request({
      path: endpointUpstreamPath(target.path, "count_tokens"),
      method: "POST",
      headers: upstreamHeaders(
        call.req,
        target,
        call.outBytes,
        call.requestId,
        call.clientCredential,
      ),
      body: call.out,
    });
  } catch (error) {
    const c = classifyUpstreamError(error);
    sendError(
      res,
      "anthropic-messages",
      c.status,
      c.type,
      `${c.message} (provider ${target.provider})`,
    );
    return false;
  }
  const buf = Buffer.from(await upstream.body.arrayBuffer().catch(() => new ArrayBuffer(0)));
  if (upstream.statusCode === 404 || upstream.statusCode === 405) return estimate();
  forwardUpstreamHeaders(upstream.headers, res);
  const ct = upstream.headers["content-type"];
  res.writeHead(upstream.statusCode, {
    "content-type": typeof ct === "string" ? ct : "application/json",
    "content-length": buf.length,
    "x-bottlekit-token-count": "provider",
  });
  res.end(buf);
  return false;
}
