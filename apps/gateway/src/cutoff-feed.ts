// Cutoffs recorded by any gateway sharing the store, applied here as they happen: the store's
// `onCutoff` feed (Postgres LISTEN/NOTIFY; SQLite reads its audit trail) tells this gateway when
// a bottle is cut off or restored anywhere. A cutoff stops this gateway's running calls of the
// bottle (each ends with `budget_exceeded`, its upstream request aborted) and cuts off the
// bottle's proxy-door sessions; a restore lets the proxy sessions re-open. New calls need no
// feed: every reserve reads the cutoff from the store.
import type { CutoffEvent, Store } from "@bottlekit/budget-store";
import type { ProxyCutoffs } from "./proxy-cutoffs.ts";
import type { Gateway, GatewayLogEvent } from "./server.ts";
import { afterAnswered } from "./stages/answered.ts";

export interface CutoffFeed {
  /** True once events are delivered; false when the store cannot deliver them (logged). */
  ready: Promise<boolean>;
  close(): void;
}

/** What a stopped call's client is told. */
export function stopMessage(event: CutoffEvent): string {
  const who = event.by === "budget" ? "after a budget crossing" : `by ${event.by}`;
  return `bottle "${event.bottle}" was cut off ${who} while this call ran (${event.reason}); the call was stopped`;
}

export function followStoreCutoffs(
  store: Pick<Store, "onCutoff">,
  gateway: Pick<Gateway, "stopBottle">,
  proxy: () => ProxyCutoffs | undefined,
  log: ((event: GatewayLogEvent) => void) | undefined,
): CutoffFeed {
  const unavailable = (error: unknown): false => {
    log?.({
      level: "warn",
      event: "store.cutoff_feed_unavailable",
      error: String(error),
      note: "cutoffs recorded elsewhere reach running calls only when they end; new calls still see them",
    });
    return false;
  };
  let sub: ReturnType<Store["onCutoff"]>;
  try {
    sub = store.onCutoff((event) => {
      if (event.action === "restore") {
        void proxy()?.recheck();
        return;
      }
      const { stopped, responses } = gateway.stopBottle(event.bottle, stopMessage(event));
      // The bottle's calls here deliver their answers (the crossing call's last bytes, the
      // stopped calls' reason) before the proxy door cuts the bottle's connections.
      afterAnswered(responses, () => {
        void proxy()?.apply({
          bottle: event.bottle,
          reason: "cut-off",
          sessionId: undefined,
          requestId: undefined,
        });
      });
      log?.({
        level: "warn",
        event: "store.cutoff_heard",
        bottle: event.bottle,
        action: event.action,
        by: event.by,
        stopped,
      });
    });
  } catch (error) {
    return { ready: Promise.resolve(unavailable(error)), close: () => {} };
  }
  return {
    ready: sub.ready.then(() => true, unavailable),
    close: () => sub.close(),
  };
}
