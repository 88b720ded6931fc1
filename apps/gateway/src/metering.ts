import { costOf, createUsageTap, parseUsage } from "@bottlekit/provider-registry";
import type { ClientApi } from "./apis.ts";
import type { MeteredUsage, Metering } from "./server.ts";

/**
 * Metering through provider-registry: usage from JSON bodies, an incremental tap for SSE
 * streams, and prices from the catalog. An unpriced model is recorded without a cost (the
 * ledger counts it as unpriced), never as $0.
 */
export function createMetering(): Metering {
  return {
    parse(api: ClientApi, body: unknown): MeteredUsage {
      const u = parseUsage(api, body);
      return {
        inputTokens: u.inputTokens,
        outputTokens: u.outputTokens,
        cacheReadTokens: u.cacheReadTokens,
        cacheWriteTokens: u.cacheWriteTokens,
        reasoningTokens: u.reasoningTokens,
        usageMissing: "usageMissing" in u ? u.usageMissing === true : false,
      };
    },
    tap(api: ClientApi) {
      return createUsageTap(api);
    },
    cost(usage, target) {
      if (target.price === undefined) return undefined;
      const c = costOf(usage, target.price);
      return c.status === "priced" ? c.usd : undefined;
    },
  };
}
