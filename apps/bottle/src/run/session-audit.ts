import fs from "node:fs";
import path from "node:path";
import type { CutoffPolicy, Store } from "@bottlekit/budget-store";
import { runsDir } from "./sessions.ts";

/**
 * Operator actions on one live session, recorded in the budget store's audit trail
 * (`bottle actions`). The store's write API is bottle-level (`cutOff`, `restore`), so a
 * session-level action is written as a cutoff whose reason names the session:
 *   - freeze: the bottle stays frozen (its calls are refused) until `bottle run --resume` of the
 *     session restores it (audited as a restore);
 *   - stop (recorded as `kill`) and cutoff: followed at once by a restore, so the bottle itself
 *     stays usable; only the session was stopped or lost its routes.
 * Other sessions of the bottle skip a cutoff that names a different session (`forOtherSession`).
 * A bottle already cut off keeps its cutoff (its scope, window and reason) untouched: a stop or
 * cutoff is then not written to the store (`already-cut-off`); a freeze overrides it.
 */
export type SessionAction = "freeze" | "stop" | "cutoff";

const POLICY: Record<SessionAction, CutoffPolicy> = {
  freeze: "freeze",
  stop: "kill",
  cutoff: "cutoff",
};

const SESSION_REASON = /^session ([\w-]{1,80}): /;

export function sessionReason(sessionId: string, text: string): string {
  return `session ${sessionId}: ${text}`;
}

/** Whether a cutoff's reason names a session other than `sessionId` (so it is not for it). */
export function forOtherSession(reason: string, sessionId: string): boolean {
  const m = SESSION_REASON.exec(reason);
  return m !== null && m[1] !== sessionId;
}

export async function recordSessionAction(
  store: Store,
  input: { bottle: string; sessionId: string; action: SessionAction; by: string; reason: string },
): Promise<"recorded" | "already-cut-off"> {
  const reason = sessionReason(input.sessionId, input.reason);
  if (input.action !== "freeze" && (await store.cutoffState(input.bottle)) !== undefined) {
    return "already-cut-off";
  }
  await store.cutOff(input.bottle, { policy: POLICY[input.action], by: input.by, reason });
  if (input.action !== "freeze") {
    await store.restore(input.bottle, {
      by: input.by,
      reason: sessionReason(
        input.sessionId,
        input.action === "stop"
          ? "the session was stopped; the bottle itself is not kept cut off"
          : "only this session's routes are dropped; the bottle itself is not kept cut off",
      ),
    });
  }
  return "recorded";
}

/**
 * Lifts the freeze of a bottle when a frozen session is resumed (audited as a restore). A cutoff
 * of another policy (cutoff, kill) is left for an operator's `bottle restore`: returns false.
 */
export async function restoreForResume(
  store: Store,
  input: {
    bottle: string;
    sessionId: string;
    by: string;
    /** Bottle budgets the resumed run defines once it starts (`--budget`, the manifest). */
    pending?: readonly { provider: string; tokens: number; source: string }[];
  },
): Promise<boolean | { spent: string }> {
  const state = await store.cutoffState(input.bottle);
  if (state === undefined) return true;
  if (state.policy !== "freeze") return false;
  // A freeze by a budget stays while that budget is still spent: lifting it would only let the
  // agent's next call be refused and frozen again. When the resumed run itself changes a budget
  // of that bottle and provider (a larger `--budget`), the store decides on its next call.
  if (state.scope !== undefined) {
    const { scope, key, provider } = state.scope;
    const statuses = await store.budgetStatus({
      scope: scope === "parent" ? "bottle" : scope,
      key,
      provider,
    });
    const changes = (input.pending ?? []).some(
      (p) =>
        p.provider === provider &&
        key === input.bottle &&
        !statuses.some((st) => st.budget.source === p.source && st.budget.tokens === p.tokens),
    );
    for (const st of changes ? [] : statuses) {
      if (!st.effective) continue;
      for (const [unit, use] of [
        ["tokens", st.tokens],
        ["USD", st.usd],
      ] as const) {
        if (use !== undefined && use.used >= use.limit) {
          return {
            spent: `its ${st.budget.scope} budget ${key} for ${provider} is still spent (${use.used} of ${use.limit} ${unit}${st.budget.window === "none" ? "" : `, ${st.budget.window} window`})`,
          };
        }
      }
    }
  }
  return store.restore(input.bottle, {
    by: input.by,
    reason: sessionReason(input.sessionId, "bottle run --resume"),
  });
}

/**
 * Who asked: `bottle stop|freeze` writes `<runs>/<session>.request.json` (mode 0600) just before it
 * signals the run, so the audit names the operator rather than the account the run runs as.
 */
export interface ControlRequest {
  action: SessionAction;
  by: string;
  at: number;
  /**
   * The sender already recorded the action in the store, bottle-wide (the dashboard's c/f/k
   * record a cutoff of the bottle, then signal its runs): the run does not record it again.
   */
  recorded?: boolean;
}

function requestFile(home: string, sessionId: string): string {
  return path.join(runsDir(home), `${sessionId}.request.json`);
}

export function writeControlRequest(home: string, sessionId: string, req: ControlRequest): void {
  const file = requestFile(home, sessionId);
  fs.writeFileSync(`${file}.tmp`, `${JSON.stringify(req)}\n`, { mode: 0o600 });
  fs.renameSync(`${file}.tmp`, file);
}

/** Reads and removes the request for `action` if one was written in the last `maxAgeMs`. */
export function takeControlRequest(
  home: string,
  sessionId: string,
  action: SessionAction,
  now = Date.now(),
  maxAgeMs = 10_000,
): ControlRequest | undefined {
  const file = requestFile(home, sessionId);
  let req: ControlRequest;
  try {
    req = JSON.parse(fs.readFileSync(file, "utf8")) as ControlRequest;
  } catch {
    return undefined;
  }
  fs.rmSync(file, { force: true });
  if (req.action !== action || typeof req.by !== "string" || !/^[\w.@-]{1,64}$/.test(req.by))
    return undefined;
  if (typeof req.at !== "number" || now - req.at > maxAgeMs || req.at > now + 1_000)
    return undefined;
  return req;
}

export function removeControlRequest(home: string, sessionId: string): void {
  fs.rmSync(requestFile(home, sessionId), { force: true });
}
