import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { connectControl, defaultControlSocketPath } from "@bottlekit/egress-proxy";
import { resolveBottle } from "@bottlekit/manifest";
import { ApprovalsError } from "./errors.ts";
import { persistChange, persistedText, unifiedDiff } from "./persist.ts";
import type { ApprovalStore } from "./store.ts";
import type { Proposal } from "./types.ts";

/**
 * The operator's side, used by `bottle approvals`: decide a proposal in the queue, tell the
 * controller over its control socket so the change is in force at once (a controller without a
 * socket, the one `bottle run` embeds, polls the queue), and write `--persist` changes into the
 * bottle's manifest.
 */

export interface DecideOptions {
  home: string;
  approve: boolean;
  /** `session` (default for an approval), `for` (with `forMs`), `persist`. */
  scope?: "session" | "for" | "persist";
  forMs?: number;
  reason?: string;
  /** How long to wait for the controller to put an approval in force. Default 5 s. */
  waitMs?: number;
}

export interface DecideResult {
  proposal: Proposal;
  /** `--persist`: the manifest written and its diff. */
  persisted?: { file: string; diff: string };
  /** How the controller was told: over its socket, or it will see the queue on its next poll. */
  controller: "socket" | "poll";
}

/** The bottle's manifest file (under `home`), or undefined when the bottle has none. */
export function manifestFile(home: string, bottle: string): string | undefined {
  try {
    return resolveBottle(bottle, { home, env: { BOTTLEKIT_HOME: home } }).file;
  } catch {
    return undefined;
  }
}

/** The diff `--persist` would write for a proposal (nothing written), or why there is none. */
export function manifestPreview(
  home: string,
  p: Proposal,
): { file?: string; diff?: string; note?: string } {
  const file = manifestFile(home, p.bottle);
  if (!file || !existsSync(file)) return { note: `bottle ${p.bottle} has no manifest in ${home}` };
  try {
    const before = readFileSync(file, "utf8");
    return { file, diff: unifiedDiff(file, before, persistedText(file, before, p.change)) };
  } catch (error) {
    return { file, note: (error as Error).message };
  }
}

async function nudge(home: string): Promise<boolean> {
  const socket = defaultControlSocketPath(join(home, "state"));
  if (!existsSync(socket)) return false;
  try {
    const client = await connectControl(socket);
    try {
      await client.service("approvals", "sync");
      return true;
    } finally {
      client.close();
    }
  } catch {
    return false;
  }
}

/** Approves or denies a pending proposal; every step lands in the queue's audit table. */
export async function decide(
  store: ApprovalStore,
  id: string,
  o: DecideOptions,
): Promise<DecideResult> {
  const before = store.get(id);
  if (!before) {
    throw new ApprovalsError("E_NOT_FOUND", `no proposal ${id}`, {
      hint: "bottle approvals list shows the pending ones",
    });
  }
  if (before.status !== "pending") {
    throw new ApprovalsError("E_STATE", `proposal ${id} is already ${before.status}`, {
      hint: "only pending proposals can be approved or denied",
    });
  }
  if (!o.approve) {
    if (!o.reason || o.reason.trim().length === 0) {
      throw new ApprovalsError("E_INVALID_INPUT", "deny: --reason is required", {
        hint: 'bottle approvals deny <id> --reason "why"',
      });
    }
    const proposal = store.decide(
      id,
      { approve: false, by: "operator", reason: o.reason },
      "operator",
    );
    return { proposal, controller: (await nudge(o.home)) ? "socket" : "poll" };
  }
  const scope = o.scope ?? "session";
  if (before.change.kind === "dlp_hold" && scope !== "session") {
    throw new ApprovalsError(
      "E_INVALID_INPUT",
      "a DLP hold is released once: approve it without --for or --persist",
    );
  }
  if (scope === "for" && (!o.forMs || o.forMs <= 0)) {
    throw new ApprovalsError("E_INVALID_INPUT", "--for: expected a duration like 30m or 1h");
  }
  let persisted: DecideResult["persisted"];
  if (scope === "persist") {
    const file = manifestFile(o.home, before.bottle);
    if (!file) {
      throw new ApprovalsError(
        "E_NOT_FOUND",
        `bottle ${before.bottle} has no manifest in ${o.home}`,
        {
          hint: "approve it with --session or --for instead",
        },
      );
    }
    persisted = persistChange(file, before.change);
    store.audit(id, "persisted", "operator", { file: persisted.file });
  }
  store.decide(
    id,
    {
      approve: true,
      by: "operator",
      scope: before.change.kind === "dlp_hold" ? "once" : scope,
      ...(scope === "for" ? { until: store.now() + (o.forMs as number) } : {}),
      ...(o.reason ? { reason: o.reason } : {}),
    },
    "operator",
  );
  const viaSocket = await nudge(o.home);
  // wait (bounded) for the controller to report it in force
  const deadline = Date.now() + (o.waitMs ?? 5000);
  let now = store.get(id) as Proposal;
  const needsApply = now.change.kind === "route" || now.change.kind === "provider";
  while (needsApply && !now.inForce && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50));
    now = store.get(id) as Proposal;
  }
  return {
    proposal: now,
    ...(persisted ? { persisted } : {}),
    controller: viaSocket ? "socket" : "poll",
  };
}
