import type { IncomingHttpHeaders, ServerResponse } from "node:http";
import type { BudgetWindow, RefusalReason, ScopeRef, Store } from "@bottlekit/budget-store";
import type { CallerIdentity } from "./identity.ts";

/**
 * Retry hints in both directions.
 *
 * Upstream → client: the provider's own retry and rate-limit headers (and its request id) are
 * copied onto the gateway's response, so an SDK waits as long as the provider asked.
 *
 * Gateway → client: every refusal of the gateway's own says whether a retry can help. The
 * official SDKs (and Claude Code, which uses one) read `x-should-retry` before anything else and
 * `retry-after` / `retry-after-ms` for the delay; they ignore a `retry-after` over 60 s and back
 * off on their own instead, so a refusal that cannot clear within a minute says
 * `x-should-retry: false` and still carries `retry-after` for people and agents that read it.
 */

/** Response headers copied from the upstream (exact names). */
const UPSTREAM_EXACT = new Set([
  "retry-after",
  "retry-after-ms",
  "x-should-retry",
  "request-id",
  "x-request-id",
  "openai-processing-ms",
]);
/** Response header prefixes copied from the upstream. */
const UPSTREAM_PREFIXES = ["x-ratelimit-", "anthropic-ratelimit-"] as const;

/** Copies the upstream's retry, rate-limit and request-id headers onto the client response. */
export function forwardUpstreamHeaders(
  upstream: IncomingHttpHeaders | Record<string, string | string[] | undefined>,
  res: ServerResponse,
): void {
  for (const name in upstream) {
    if (
      UPSTREAM_EXACT.has(name) ||
      name.startsWith(UPSTREAM_PREFIXES[0]) ||
      name.startsWith(UPSTREAM_PREFIXES[1])
    ) {
      const v = upstream[name];
      if (v !== undefined) res.setHeader(name, v);
    }
  }
}

/** Longest `retry-after` an SDK honours before falling back to its own backoff. */
const SDK_RETRY_AFTER_LIMIT_S = 60;

const DAY_MS = 86_400_000;

/**
 * When the window of a spent budget next resets (epoch ms), or undefined for `none` (never).
 * Rolling `Nd` windows drop their oldest day at the next UTC midnight: the earliest moment a
 * retry can succeed, not a promise that it will.
 */
export function nextWindowReset(window: BudgetWindow, now: number): number | undefined {
  if (window === "none") return undefined;
  const midnight = Math.floor(now / DAY_MS) * DAY_MS + DAY_MS;
  if (window === "daily" || window.endsWith("d")) return midnight;
  const d = new Date(now);
  if (window === "weekly") {
    // ISO weeks start on Monday (getUTCDay: 0 = Sunday).
    const daysToMonday = (8 - d.getUTCDay()) % 7 || 7;
    return Math.floor(now / DAY_MS) * DAY_MS + daysToMonday * DAY_MS;
  }
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1);
}

/** What a budget refusal tells the client about retrying. */
export interface RetryAdvice {
  /** Seconds until the refusal can clear, when it can clear by itself. */
  retryAfterS: number | undefined;
  /** False when an SDK retry cannot help. */
  shouldRetry: boolean;
}

/**
 * Works out whether and when a refused call can succeed: a cut-off lifts at its `until` (when a
 * windowed budget was spent), a spent or too-small budget when its window resets. Runs only on
 * refusals (two store reads at most); a store error means "no advice": do not retry.
 */
export async function budgetRetryAdvice(
  store: Store,
  identity: CallerIdentity,
  provider: string,
  refusal: { reason: RefusalReason; scope: ScopeRef },
  now = Date.now(),
): Promise<RetryAdvice> {
  let resetAt: number | undefined;
  try {
    if (refusal.reason === "cut-off") {
      const bottle =
        refusal.scope.scope === "bottle" || refusal.scope.scope === "parent"
          ? refusal.scope.key
          : identity.bottle;
      const state =
        (await store.cutoffState(bottle)) ??
        (bottle === identity.bottle ? undefined : await store.cutoffState(identity.bottle));
      resetAt = state?.until;
    } else {
      const report = await store.remaining({
        bottle: identity.bottle,
        parents: identity.parents,
        agent: identity.agent,
        provider,
      });
      const entry = report?.entries.find(
        (e) =>
          e.scope === refusal.scope.scope &&
          e.key === refusal.scope.key &&
          e.provider === refusal.scope.provider,
      );
      if (entry !== undefined) resetAt = nextWindowReset(entry.window, now);
    }
  } catch {
    resetAt = undefined;
  }
  if (resetAt === undefined || resetAt <= now)
    return { retryAfterS: undefined, shouldRetry: false };
  const retryAfterS = Math.ceil((resetAt - now) / 1000);
  return { retryAfterS, shouldRetry: retryAfterS <= SDK_RETRY_AFTER_LIMIT_S };
}

/** The headers that carry a piece of advice. */
export function adviceHeaders(advice: RetryAdvice): Record<string, string> {
  const h: Record<string, string> = { "x-should-retry": advice.shouldRetry ? "true" : "false" };
  if (advice.retryAfterS !== undefined) h["retry-after"] = String(advice.retryAfterS);
  return h;
}
