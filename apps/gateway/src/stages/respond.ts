// Stage 9, respond: the upstream's answer back to the client, by its kind: an error status, a
// complete JSON body, or an event stream. Each path settles (or releases) the reservation.
import { forwardUpstreamHeaders } from "../retry-hints.ts";
import { respondUpstreamError } from "./respond-error.ts";
import { respondJson } from "./respond-json.ts";
import { respondStream } from "./respond-stream.ts";
import type { Call, Pipeline } from "./types.ts";

export async function respond(call: Call, p: Pipeline): Promise<boolean> {
  const upstream = call.upstream;
  forwardUpstreamHeaders(upstream.headers, call.res);
  const ctype = upstream.headers["content-type"];
  const contentType = typeof ctype === "string" ? ctype : "application/json";
  if (upstream.statusCode >= 400) await respondUpstreamError(call, p, contentType);
  else if (contentType.startsWith("text/event-stream")) await respondStream(call, p, contentType);
  else await respondJson(call, p, contentType);
  return false;
}
