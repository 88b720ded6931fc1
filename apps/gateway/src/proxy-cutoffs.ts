// The budget's cutoffs on the proxy door. When a call learns that the budget cut its bottle off
// (a settle that spent a budget, or a reserve refused because the store has the bottle cut off),
// every proxy session of that bottle is cut off at once: open tunnels and intercepted
// connections closed, new requests 403. The store stays the truth: once it no longer has the
// bottle cut off (an operator's `bottle restore`, or the budget's window reset), the sessions
// this gateway cut off are restored.
import type { Store } from "@bottlekit/budget-store";
import type { ProxyHost } from "@bottlekit/egress-proxy";
import type { CutoffNotice, GatewayLogEvent } from "./stages/types.ts";

/** How often bottles cut off on the proxy are checked against the store. */
const RECHECK_MS = 2_000;

export class ProxyCutoffs {
  /** Bottles this gateway cut off on the proxy, waiting for the store to lift the cutoff. */
  private readonly held = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private checking = false;
  private closed = false;

  constructor(
    private readonly proxy: Pick<ProxyHost, "cutoff" | "restore">,
    private readonly store: Pick<Store, "isCutOff">,
    private readonly log: ((event: GatewayLogEvent) => void) | undefined,
    private readonly recheckMs = RECHECK_MS,
  ) {}

  /** Cuts off every proxy session of the notice's bottle. Never throws. */
  apply(notice: CutoffNotice): Promise<number> {
    if (this.closed) return Promise.resolve(0);
    return this.proxy.cutoff({ bottle: notice.bottle }).then(
      (sessions) => {
        this.log?.({
          level: "warn",
          event: "proxy.cutoff",
          ...(notice.requestId === undefined ? {} : { requestId: notice.requestId }),
          bottle: notice.bottle,
          reason: notice.reason,
          ...(notice.sessionId === undefined ? {} : { sessionId: notice.sessionId }),
          sessions,
        });
        if (sessions > 0) {
          this.held.add(notice.bottle);
          this.arm();
        }
        return sessions;
      },
      (error: unknown) => {
        this.log?.({
          level: "error",
          event: "proxy.cutoff_failed",
          ...(notice.requestId === undefined ? {} : { requestId: notice.requestId }),
          bottle: notice.bottle,
          error: String(error),
        });
        return 0;
      },
    );
  }

  /** Bottles cut off on the proxy by this gateway and not yet restored. */
  heldBottles(): string[] {
    return [...this.held];
  }

  /**
   * Restores the proxy sessions of each held bottle the store no longer has cut off. A store
   * that cannot answer keeps the bottle cut off (fail closed). Returns the bottles restored.
   */
  async recheck(): Promise<string[]> {
    if (this.checking || this.closed) return [];
    this.checking = true;
    const restored: string[] = [];
    try {
      for (const bottle of [...this.held]) {
        let still: boolean;
        try {
          still = await this.store.isCutOff(bottle);
        } catch {
          continue;
        }
        if (still || this.closed) continue;
        this.held.delete(bottle);
        const sessions = await this.proxy.restore({ bottle }).catch(() => 0);
        restored.push(bottle);
        this.log?.({ level: "info", event: "proxy.restored", bottle, sessions });
      }
      if (this.held.size === 0) this.disarm();
    } finally {
      this.checking = false;
    }
    return restored;
  }

  close(): void {
    this.closed = true;
    this.disarm();
  }

  private arm(): void {
    if (this.timer !== undefined || this.closed) return;
    this.timer = setInterval(() => void this.recheck(), this.recheckMs);
    this.timer.unref();
  }

  private disarm(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
  }
}
