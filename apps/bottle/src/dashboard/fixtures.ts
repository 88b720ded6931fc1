import type { SettleUsage, Store } from "@bottlekit/budget-store";

/** One metered call, as the gateway records it: reserve, then settle with the real usage. */
export interface MeteredCall {
  bottle: string;
  agent?: string;
  provider?: string;
  model?: string;
  input: number;
  output: number;
  cacheRead?: number;
  costUsd?: number;
  usageMissing?: boolean;
  /** The reservation's estimate (default input + output). */
  estimate?: number;
}

/**
 * Records `call` through the store's public reserve/settle path (tests and the bench use it to
 * fill a ledger exactly as a gateway would). Returns the settle result; throws when refused.
 */
export async function meter(store: Store, call: MeteredCall) {
  const reserved = await store.reserve({
    bottle: call.bottle,
    agent: call.agent ?? "dev",
    provider: call.provider ?? "openai",
    estimateTokens: call.estimate ?? call.input + call.output,
  });
  if (!reserved.ok) throw new Error(`reserve refused: ${reserved.reason}`);
  const usage: SettleUsage = {
    inputTokens: call.input,
    outputTokens: call.output,
    model: call.model ?? "gpt-4o-mini",
  };
  if (call.cacheRead !== undefined) usage.cacheReadTokens = call.cacheRead;
  if (call.costUsd !== undefined) usage.costUsd = call.costUsd;
  if (call.usageMissing === true) usage.usageMissing = true;
  return store.settle(reserved.id, usage);
}
