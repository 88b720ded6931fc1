// Waiting for responses to be delivered before the proxy door cuts a bottle's connections off:
// a cutoff destroys the agent's sockets, and a call that was answered (the call that spent the
// budget, or one stopped with the reason) must first get its last bytes out. Bounded: a client
// that does not read does not hold a cutoff back for more than `ANSWER_GRACE_MS`.
import type { ServerResponse } from "node:http";

/** Longest a cutoff waits for the answers of the bottle's calls to be delivered. */
export const ANSWER_GRACE_MS = 1_000;

/** Runs `fn` once every response is closed (delivered, or its client gone), or after the grace. */
export function afterAnswered(
  responses: readonly ServerResponse[],
  fn: () => void,
  graceMs = ANSWER_GRACE_MS,
): void {
  let left = 0;
  let done = false;
  const timer = setTimeout(() => finish(), graceMs);
  timer.unref();
  function finish(): void {
    if (done) return;
    done = true;
    clearTimeout(timer);
    fn();
  }
  for (const res of responses) {
    if (res.closed || res.destroyed) continue;
    left++;
    res.once("close", () => {
      if (--left === 0) finish();
    });
  }
  if (left === 0) finish();
}
