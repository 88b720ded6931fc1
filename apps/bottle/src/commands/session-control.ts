import os from "node:os";
import path from "node:path";
import type { CliIo } from "../cli.ts";
import { BottleError } from "../errors.ts";
import { writeControlRequest } from "../run/session-audit.ts";
import { CONTROL_SIGNALS, findSession, listSessions } from "../run/sessions.ts";
import { operatorName } from "../store.ts";

export type ControlAction = "stop" | "freeze" | "cutoff";

export interface ControlFlags {
  home?: string;
  json?: boolean;
}

/**
 * `bottle stop|freeze <session>` and `bottle stop --cutoff <session>`: signals the session's
 * `bottle run`, which applies the action to the live process tree and records it in the budget
 * store's audit trail under the operator's name (see `run/session-audit.ts`).
 */
export async function runSessionControl(
  action: ControlAction,
  id: string,
  flags: ControlFlags,
  io: CliIo,
): Promise<number> {
  const home = path.resolve(
    flags.home ?? (io.env["BOTTLEKIT_HOME"] || path.join(os.homedir(), ".bottlekit")),
  );
  const session = findSession(home, id);
  if (!session) {
    const live = listSessions(home).map((s) => s.sessionId);
    throw new BottleError("E_INVALID_INPUT", `no live session ${JSON.stringify(id)}`, {
      hint:
        live.length > 0
          ? `live sessions: ${live.join(", ")}`
          : "bottle ps lists live sessions (there are none)",
    });
  }
  // The run records the action in the store's audit trail under the name left here.
  writeControlRequest(home, session.sessionId, {
    action,
    by: operatorName(io.env),
    at: Date.now(),
  });
  process.kill(session.pid, CONTROL_SIGNALS[action]);
  if (flags.json) {
    io.stdout.write(
      `${JSON.stringify({ sessionId: session.sessionId, action, pid: session.pid }, null, 2)}\n`,
    );
  } else {
    io.stdout.write(
      `${action} sent to session ${session.sessionId} (bottle ${session.bottle}, pid ${session.pid})\n`,
    );
  }
  return 0;
}
