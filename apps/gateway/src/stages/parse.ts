// Stage 2, parse: the request body as JSON, once, and the facts the gateway reads from it
// (model, stream flag, output cap), validated in the client API's terms.
import { readFacts } from "../apis.ts";
import { sendError } from "./reply.ts";
import type { Call } from "./types.ts";

export function parse(call: Call): boolean {
  call.text = call.raw.toString("utf8");
  try {
    call.body = JSON.parse(call.text);
  } catch {
    sendError(
      call.res,
      call.api,
      400,
      "invalid_request_error",
      "the request body is not valid JSON",
    );
    return false;
  }
  const facts = readFacts(call.api, call.body, call.kind);
  if (typeof facts === "string") {
    sendError(call.res, call.api, 400, "invalid_request_error", facts);
    return false;
  }
  call.facts = facts;
  return true;
}
