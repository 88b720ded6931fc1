// Stopping running calls when their bottle is cut off while they run: another gateway sharing
// the store spent the bottle's budget, or an operator cut it off. The store tells every gateway
// (`Store.onCutoff`); each stops its own calls of that bottle (or of a bottle whose parents
// include it). A stopped call's upstream request is aborted; the stage it is in ends it with a
// `budget_exceeded` error in the client API's shape (an error event once a stream has begun) and
// charges it as far as it got: its reservation, when the usage never arrived (fail closed).
import type { ServerResponse } from "node:http";
import type { ClientApi } from "../apis.ts";
import { errorEvent } from "../apis.ts";
import { sendError } from "./reply.ts";
import type { Call, Pipeline } from "./types.ts";

/** True when the call belongs to `bottle` (itself, or a child of it through `extends`). */
function ofBottle(call: Call, bottle: string): boolean {
  const id = call.identity as Call["identity"] | undefined;
  if (id === undefined) return false;
  return id.bottle === bottle || id.parents.includes(bottle);
}

/**
 * Stops every live call of `bottle` whose response is not complete. Returns how many, and the
 * responses of all the bottle's live calls (stopped or already ending), for whoever must wait
 * until they are delivered. A call not yet identified is not stopped here: its reserve will see
 * the cutoff in the store.
 */
export function stopCalls(
  p: Pipeline,
  bottle: string,
  message: string,
): { stopped: number; responses: ServerResponse[] } {
  let n = 0;
  const responses: ServerResponse[] = [];
  for (const call of p.live) {
    if (!ofBottle(call, bottle)) continue;
    responses.push(call.res);
    if (call.stopped !== undefined || call.res.writableEnded) continue;
    call.stopped = message;
    call.abortUpstream();
    n++;
    p.log({
      level: "warn",
      event: "call.stopped",
      requestId: call.requestId,
      bottle: call.identity.bottle,
      provider: call.provider,
    });
  }
  return { stopped: n, responses };
}

/** Ends a stopped call's response: a JSON error, or an error event on a stream already begun. */
export function endStopped(res: ServerResponse, api: ClientApi, message: string): void {
  if (res.writableEnded) return;
  if (!res.headersSent) {
    sendError(res, api, 429, "budget_exceeded", message, undefined, { "x-should-retry": "false" });
    return;
  }
  res.end(errorEvent(api, "budget_exceeded", message));
}
