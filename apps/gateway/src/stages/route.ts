// Stage 3, route: the model id → the upstream target (provider, origin, path, wire API, key).
// The proxy door routes to the provider whose API host the agent addressed.
import { sendError } from "./reply.ts";
import type { Call, Pipeline } from "./types.ts";

export function route(call: Call, p: Pipeline): boolean {
  const model = call.facts.model;
  const host = call.proxiedProvider;
  const routed = p.router.route(
    call.api,
    host !== undefined && !model.startsWith(`${host}/`) ? `${host}/${model}` : model,
  );
  if (!routed.ok) {
    sendError(call.res, call.api, routed.status, routed.type, routed.message);
    return false;
  }
  call.target = routed.target;
  call.provider = routed.target.provider;
  return true;
}
