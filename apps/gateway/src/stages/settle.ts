// The settle stage: a call's real usage recorded against its reservation (counted in /metrics),
// or the reservation released when nothing reached the upstream. A settle that spends a budget
// has cut the bottle off in the store: the gateway logs the crossing and tells `onCutoff`, which
// drops the bottle's live egress on the proxy door.
import type { SettleUsage } from "@bottlekit/budget-store";
import type { CallerIdentity } from "../identity.ts";
import { afterAnswered } from "./answered.ts";
import type { Call, CutoffNotice, MeteredUsage, Pipeline } from "./types.ts";

/** Refreshes the remaining-budget gauge, at most once a second per (bottle, agent, provider). */
export function updateRemaining(p: Pipeline, identity: CallerIdentity, provider: string): void {
  const key = `${identity.bottle}\u0001${identity.agent}\u0001${provider}`;
  const now = Date.now();
  if (now - (p.lastRemainingUpdate.get(key) ?? 0) < 1000) return;
  p.lastRemainingUpdate.set(key, now);
  p.store
    .remaining({
      bottle: identity.bottle,
      parents: identity.parents,
      agent: identity.agent,
      provider,
    })
    .then((r) => {
      if (r !== undefined)
        p.metrics.budgetRemaining.set(
          [identity.bottle, identity.agent, provider, r.scope],
          r.remaining,
        );
    })
    .catch(() => {});
}

/**
 * Tells the gateway's owner that the budget cut a bottle off. Never throws. Told once this
 * call's response is delivered (or its client gone; at most `ANSWER_GRACE_MS` later): on the
 * proxy door the cutoff destroys the bottle's connections, and the call that learned of it must
 * first deliver its own answer (the crossing call's last bytes, or the refusal that says why).
 */
export function notifyCutoff(p: Pipeline, call: Call, reason: CutoffNotice["reason"]): void {
  const onCutoff = p.onCutoff;
  if (onCutoff === undefined) return;
  const notice: CutoffNotice = {
    bottle: call.identity.bottle,
    reason,
    sessionId: call.proxied?.sessionId,
    requestId: call.requestId,
  };
  const fire = (): void => {
    try {
      onCutoff(notice);
    } catch (error) {
      p.log({
        level: "error",
        event: "cutoff.notify_failed",
        requestId: call.requestId,
        error: String(error),
      });
    }
  };
  afterAnswered([call.res], fire);
}

export async function settle(p: Pipeline, call: Call, usage: MeteredUsage): Promise<void> {
  const { target, identity, requestId } = call;
  const model = target.model;
  const m = p.metrics;
  if (usage.usageMissing) m.usageMissing.inc([target.provider, model]);
  if (usage.inputTokens > 0) m.tokens.inc([target.provider, model, "input"], usage.inputTokens);
  if (usage.outputTokens > 0) m.tokens.inc([target.provider, model, "output"], usage.outputTokens);
  if (usage.cacheReadTokens > 0)
    m.tokens.inc([target.provider, model, "cache_read"], usage.cacheReadTokens);
  if (usage.cacheWriteTokens > 0)
    m.tokens.inc([target.provider, model, "cache_write"], usage.cacheWriteTokens);
  if (usage.reasoningTokens > 0)
    m.tokens.inc([target.provider, model, "reasoning"], usage.reasoningTokens);
  const su: SettleUsage = {
    model,
    inputTokens: usage.inputTokens,
    outputTokens: usage.outputTokens,
    cacheReadTokens: usage.cacheReadTokens,
    cacheWriteTokens: usage.cacheWriteTokens,
    reasoningTokens: usage.reasoningTokens,
    usageMissing: usage.usageMissing,
    requestId,
  };
  const cost = p.metering.cost(usage, target);
  if (cost !== undefined) su.costUsd = cost;
  try {
    const r = await p.store.settle(call.reservationId, su);
    if (r.crossed !== undefined) {
      p.log({
        level: "warn",
        event: "budget.crossed",
        requestId,
        bottle: identity.bottle,
        agent: identity.agent,
        provider: target.provider,
        scope: r.crossed.scope,
        key: r.crossed.key,
        limit: r.crossed.limit,
        used: r.crossed.used,
        policy: r.crossed.policy,
      });
      notifyCutoff(p, call, "crossed");
    }
    updateRemaining(p, identity, target.provider);
  } catch (error) {
    p.log({ level: "error", event: "settle.failed", requestId, error: String(error) });
  }
}

/** Drops the call's reservation (nothing reached the upstream, or it answered an error). */
export async function release(p: Pipeline, call: Call): Promise<void> {
  try {
    await p.store.release(call.reservationId);
  } catch (error) {
    p.log({
      level: "error",
      event: "release.failed",
      requestId: call.requestId,
      error: String(error),
    });
  }
}
