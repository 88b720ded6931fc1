// Stage 9a, an upstream error status: its body passed through (it already has the client API's
// shape, or is translated into it); the reservation released, nothing charged.
import { translateErrorBody } from "../translate-stage.ts";
import { sendError } from "./reply.ts";
import { release } from "./settle.ts";
import type { Call, Pipeline } from "./types.ts";

export async function respondUpstreamError(
  call: Call,
  p: Pipeline,
  contentType: string,
): Promise<void> {
  const { upstream, target, res, api, requestId } = call;
  const status = upstream.statusCode;
  let errBody: Buffer;
  try {
    errBody = await upstream.body.bytes();
  } catch {
    errBody = Buffer.alloc(0);
  }
  await release(p, call);
  if (status >= 500) p.metrics.upstreamErrors.inc([target.provider, `status_${status}`]);
  p.log({
    level: "warn",
    event: "upstream.error_status",
    requestId,
    provider: target.provider,
    status,
  });
  const generic = (): void =>
    sendError(
      res,
      api,
      status >= 500 ? 502 : status,
      "upstream_error",
      `the upstream answered HTTP ${status} (provider ${target.provider})`,
    );
  if (errBody.length === 0 || !contentType.includes("json")) return generic();
  if (target.translated) {
    // The upstream's error in the client API's shape (its message and type kept).
    const translated = translateErrorBody(api, errBody);
    if (translated === undefined) return generic();
    errBody = Buffer.from(translated);
  }
  if (!res.headersSent) {
    res.writeHead(status, { "content-type": contentType, "content-length": errBody.length });
    res.end(errBody);
  }
}
