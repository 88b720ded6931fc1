// Stage 7, reserve: the call's estimate (input bytes / 4, rounded up, plus the output cap) held
// against every budget that governs the caller. When the budget cannot hold the client's output
// cap, the cap in the forwarded body is lowered to what it still allows (header
// `x-bottlekit-max-tokens-clamped`); refused only when the input estimate alone leaves less than
// `minClampTokens` of room. A refusal says what the client should do (retry advice headers).
import type { IncomingMessage } from "node:http";
import type { ReserveResult } from "@bottlekit/budget-store";
import type { ClientApi, OutputCapKey } from "../apis.ts";
import { adviceHeaders, budgetRetryAdvice } from "../retry-hints.ts";
import { upstreamCapKey } from "../translate-stage.ts";
import { sendError } from "./reply.ts";
import { notifyCutoff } from "./settle.ts";
import type { Call, Pipeline } from "./types.ts";

/** The key that carries an output cap the client did not set (OpenAI's reasoning models refuse `max_tokens`). */
export function defaultCapKey(api: ClientApi, provider: string): OutputCapKey {
  if (api === "openai-responses") return "max_output_tokens";
  if (api === "openai-chat" && provider === "openai") return "max_completion_tokens";
  return "max_tokens";
}

/**
 * HTTP status of a budget refusal: 429. Codex (0.169, measured) retries every 429, 402, 403 and
 * 422 whatever `x-should-retry` says ("Reconnecting... 5/5", ~10 s) and after a 429 prints only
 * the status line; a 400 it sends once and prints with its body. So a refusal that retrying
 * cannot clear is answered 400 to Codex (recognized by its `originator` header or user agent),
 * with the same `budget_exceeded` body.
 */
export function refusalStatus(req: IncomingMessage, shouldRetry: boolean): number {
  if (shouldRetry) return 429;
  const originator = req.headers["originator"];
  const ua = req.headers["user-agent"];
  const codex =
    (typeof originator === "string" && originator.startsWith("codex")) ||
    (typeof ua === "string" && ua.startsWith("codex"));
  return codex ? 400 : 429;
}

/**
 * Lowers the output cap in `call`'s forwarded body so that its estimate fits `remaining`: the
 * body's size depends on the cap's digits, so the cap is settled in a few passes (digits change
 * by one at most), then trimmed of whatever a last oscillation still overshoots. Returns false
 * (nothing changed) when the room left is below `minClampTokens` or already holds the cap.
 */
export function clampCap(call: Call, p: Pipeline, remaining: number): boolean {
  const { target, api } = call;
  const b = call.body as Record<string, unknown>;
  const key = target.translated
    ? upstreamCapKey(target.api, target.provider)
    : (call.facts.capKey ?? defaultCapKey(api, target.provider));
  let room = remaining - Math.ceil(call.outBytes / 4);
  if (room < p.minClampTokens || room >= call.cap) return false;
  b["model"] = target.model;
  let next = "";
  let nextBytes = 0;
  for (let pass = 0; pass < 4; pass++) {
    b[key] = room;
    next = JSON.stringify(b);
    nextBytes = Buffer.byteLength(next);
    const fit = remaining - Math.ceil(nextBytes / 4);
    if (fit === room) break;
    room = fit;
  }
  if (b[key] !== room) {
    b[key] = room;
    next = JSON.stringify(b);
    nextBytes = Buffer.byteLength(next);
  }
  const over = Math.ceil(nextBytes / 4) + room - remaining;
  if (over > 0) {
    // A smaller cap has no more digits: this pass cannot overshoot again.
    room -= over;
    b[key] = room;
    next = JSON.stringify(b);
    nextBytes = Buffer.byteLength(next);
  }
  if (room < p.minClampTokens || Math.ceil(nextBytes / 4) + room > remaining) return false;
  call.cap = room;
  call.out = next;
  call.outBytes = nextBytes;
  call.clamped = true;
  return true;
}

/** Why a reservation was refused, in words a user can act on. */
function refusalMessage(
  call: Call,
  p: Pipeline,
  r: Extract<ReserveResult, { ok: false }>,
  retryAfterS: number | undefined,
): string {
  const bottle = call.identity.bottle;
  const resets =
    retryAfterS === undefined ? "" : ` (the budget's window resets in ${retryAfterS} s)`;
  if (r.reason === "cut-off") {
    return retryAfterS === undefined
      ? `bottle "${bottle}" is cut off after a budget crossing, until an operator restores it`
      : `bottle "${bottle}" is cut off after a budget crossing${resets}`;
  }
  if (r.reason === "exhausted")
    return `the ${r.scope.scope} budget "${r.scope.key}" for ${r.scope.provider} is spent${resets}`;
  const inputEstimate = Math.ceil(call.outBytes / 4);
  return `the ${r.scope.scope} budget "${r.scope.key}" for ${r.scope.provider} has ${r.remaining} tokens left, not enough for this call's input (estimated ${inputEstimate} tokens) plus the smallest output cap the gateway clamps to (${p.minClampTokens}); shorten the conversation or raise the budget${resets}`;
}

export async function reserve(call: Call, p: Pipeline): Promise<boolean> {
  const { identity, target, requestId, res, api } = call;
  call.requestedCap =
    call.kind === "embeddings"
      ? 0
      : (call.facts.maxTokens ?? target.maxOutput ?? p.defaultMaxTokens);
  call.cap = call.requestedCap;
  const reserveTokens = (tokens: number): Promise<ReserveResult> =>
    p.store.reserve({
      bottle: identity.bottle,
      parents: identity.parents,
      agent: identity.agent,
      provider: target.provider,
      estimateTokens: tokens,
      requestId,
    });
  let reservation: ReserveResult;
  try {
    reservation = await reserveTokens(Math.ceil(call.outBytes / 4) + call.cap);
    // A retry covers a concurrent call taking the room between the two reserves.
    for (
      let attempt = 0;
      attempt < 3 && !reservation.ok && reservation.reason === "insufficient";
      attempt++
    ) {
      if (!clampCap(call, p, reservation.remaining)) break;
      reservation = await reserveTokens(Math.ceil(call.outBytes / 4) + call.cap);
    }
  } catch (error) {
    p.log({ level: "error", event: "reserve.failed", requestId, error: String(error) });
    sendError(
      res,
      api,
      503,
      "api_error",
      "the budget store is unavailable; refusing the call (fail closed)",
    );
    return false;
  }
  if (!reservation.ok) {
    p.metrics.budgetRefusals.inc([identity.bottle, target.provider, reservation.reason]);
    if (reservation.reason === "cut-off") notifyCutoff(p, call, "cut-off");
    const advice = await budgetRetryAdvice(p.store, identity, target.provider, reservation);
    p.log({
      level: "warn",
      event: "budget.refused",
      requestId,
      bottle: identity.bottle,
      agent: identity.agent,
      provider: target.provider,
      reason: reservation.reason,
      remaining: reservation.remaining,
    });
    sendError(
      res,
      api,
      refusalStatus(call.req, advice.shouldRetry),
      "budget_exceeded",
      refusalMessage(call, p, reservation, advice.retryAfterS),
      {
        reason: reservation.reason,
        scope: reservation.scope,
        remaining: reservation.remaining,
      },
      adviceHeaders(advice),
    );
    return false;
  }
  if (call.clamped) {
    res.setHeader("x-bottlekit-max-tokens-clamped", String(call.cap));
    res.setHeader("x-bottlekit-max-tokens-requested", String(call.requestedCap));
    p.log({
      level: "info",
      event: "budget.clamped",
      requestId,
      bottle: identity.bottle,
      provider: target.provider,
      requested: call.requestedCap,
      clamped: call.cap,
    });
  }
  call.reservationId = reservation.id;
  return true;
}
