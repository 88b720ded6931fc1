import { createTempHome } from "@bottlekit/test-utils";
import { describe, expect, it } from "vitest";
import { openStoreInWorker } from "./store-proxy.ts";

describe("budget store in a worker thread", () => {
  it("forwards calls and results, and rebuilds errors with their code", async () => {
    const home = await createTempHome("bottlekit-proxy-");
    const store = await openStoreInWorker(`sqlite:${home.dir}/b.db`, { home: home.dir });
    try {
      expect(store.backend).toBe("sqlite");
      await store.defineBudget({ scope: "bottle", key: "b", provider: "openai", tokens: 10 });
      const r = await store.reserve({
        bottle: "b",
        agent: "a",
        provider: "openai",
        estimateTokens: 8,
      });
      expect(r.ok).toBe(true);
      if (r.ok) await store.settle(r.id, { inputTokens: 6, outputTokens: 4 });
      const refused = await store.reserve({
        bottle: "b",
        agent: "a",
        provider: "openai",
        estimateTokens: 1,
      });
      expect(refused).toMatchObject({ ok: false, remaining: 0 });
      await expect(store.settle("no-such-reservation", { inputTokens: 1 })).rejects.toMatchObject({
        name: "BudgetStoreError",
        code: "E_UNKNOWN_RESERVATION",
      });
    } finally {
      await store.close();
      await home.cleanup();
    }
  });

  it("fails closed once the worker is gone", async () => {
    const home = await createTempHome("bottlekit-proxy-");
    const store = await openStoreInWorker(`sqlite:${home.dir}/b.db`, { home: home.dir });
    await store.close();
    await expect(
      store.reserve({ bottle: "b", agent: "a", provider: "openai", estimateTokens: 1 }),
    ).rejects.toThrow(/worker/);
    await home.cleanup();
  });

  it("reports an unopenable store at start", async () => {
    await expect(openStoreInWorker("mysql://nope")).rejects.toMatchObject({
      code: "E_STORE_URL",
    });
  });
});
