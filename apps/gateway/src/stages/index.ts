// The LLM request pipeline, composed in one place. Both doors feed it: the API door (`/v1/*`
// with a gateway key) and the proxy door (an intercepted request to a provider API host, whose
// identity is the bottle session). A new door, wire API or translation is a stage here, not a
// branch inside a handler.
import { performance } from "node:perf_hooks";
import { upstreamBody } from "./body.ts";
import { countTokens } from "./count-tokens.ts";
import { checkCredential } from "./credential.ts";
import { forward } from "./forward.ts";
import { identify } from "./identify.ts";
import { parse } from "./parse.ts";
import { reserve } from "./reserve.ts";
import { respond } from "./respond.ts";
import { route } from "./route.ts";
import { scanOutbound } from "./scan.ts";
import { Call, type CallInit, type Pipeline, type Stage } from "./types.ts";

/**
 * identity → parse → route → credential → outbound DLP → upstream body (translation) →
 * count_tokens (answered here, unmetered) → reserve → forward → respond (usage tap, inbound scan,
 * settle; a settle that spends a budget reports the cutoff).
 */
export const LLM_STAGES: readonly Stage[] = [
  identify,
  parse,
  route,
  checkCredential,
  scanOutbound,
  upstreamBody,
  countTokens,
  reserve,
  forward,
  respond,
];

/** Runs `stages` in order until one answers the client (returns false) or all have run. */
export async function runStages(stages: readonly Stage[], call: Call, p: Pipeline): Promise<void> {
  for (let i = 0; i < stages.length; i++) {
    const r = (stages[i] as Stage)(call, p);
    if ((typeof r === "boolean" ? r : await r) === false) return;
  }
}

/**
 * Opens a call: its request id on the response, and one listener on the response's "close"
 * (emitted after "finish" for a complete response, or when the connection is gone first): a
 * complete response records the request counters and latency; an incomplete one means the client
 * went away, and the upstream request is aborted. One listener instead of a "close" and a
 * "finish" one: a closure and an event dispatch less per call.
 */
export function openCall(init: CallInit, p: Pipeline): Call {
  const call = new Call(init);
  const res = init.res;
  res.setHeader("x-request-id", init.requestId);
  res.setHeader("x-bottlekit-request-id", init.requestId);
  res.once("close", () => {
    if (res.writableFinished) {
      p.metrics.requests.inc([call.endpoint, String(res.statusCode), call.provider]);
      p.metrics.latency.observe(
        [call.endpoint, call.provider],
        (performance.now() - call.t0) / 1000,
      );
      return;
    }
    call.clientGone = true;
    call.abortUpstream();
  });
  return call;
}

export { Call, type CallInit, type CutoffNotice, type Pipeline, type Stage } from "./types.ts";
