// Stage 6, the upstream body: the client's bytes as received when nothing must change; otherwise
// re-serialized with the routed model id (and `stream_options.include_usage` where the gateway
// needs usage the client did not ask for); or, for a provider that does not speak the client's
// API, the translation stage's body in the provider's own API.
import { translateRequestBody } from "../translate-stage.ts";
import { sendError } from "./reply.ts";
import type { Call, Pipeline } from "./types.ts";

export function upstreamBody(call: Call, p: Pipeline): boolean {
  const { api, kind, target, facts, res } = call;
  call.injectUsage =
    !target.translated &&
    facts.stream &&
    api === "openai-chat" &&
    target.streamUsageOption &&
    !facts.clientWantsUsage;
  let out: Buffer | string;
  if (target.translated) {
    if (kind === "count_tokens") {
      // The provider has no Anthropic token counter: the gateway's estimate, marked as such.
      const estimate = JSON.stringify({
        input_tokens: Math.ceil(Buffer.byteLength(call.text) / 4),
      });
      res.writeHead(200, {
        "content-type": "application/json",
        "content-length": Buffer.byteLength(estimate),
        "x-bottlekit-token-count": "estimate",
      });
      res.end(estimate);
      return false;
    }
    if (kind !== "generate") {
      sendError(
        res,
        api,
        400,
        "invalid_request_error",
        `${call.endpoint} is not translated: model "${facts.model}" resolves to provider ${target.provider}, which speaks ${target.api}, not ${api}`,
      );
      return false;
    }
    const t = translateRequestBody(
      api,
      target,
      call.body as Record<string, unknown>,
      target.maxOutput ?? p.defaultMaxTokens,
    );
    if (!t.ok) {
      sendError(res, api, 400, "invalid_request_error", t.message, { param: t.field });
      return false;
    }
    call.body = t.body;
    call.translation = t.context;
    out = JSON.stringify(t.body);
  } else if (target.model !== facts.model || call.injectUsage) {
    const b = call.body as Record<string, unknown>;
    b["model"] = target.model;
    if (call.injectUsage) {
      const so = b["stream_options"];
      b["stream_options"] = {
        ...(typeof so === "object" && so !== null ? so : {}),
        include_usage: true,
      };
    }
    out = JSON.stringify(b);
  } else {
    out = call.redacted ? call.text : call.raw;
  }
  call.out = out;
  call.outBytes = typeof out === "string" ? Buffer.byteLength(out) : out.length;
  return true;
}
