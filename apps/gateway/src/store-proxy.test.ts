import { openStore } from "@bottlekit/budget-store";
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

  it("relays cutoff events from the worker's store: another store's cutoff and restore are heard, in order", async () => {
    const home = await createTempHome("bottlekit-proxy-");
    const url = `sqlite:${home.dir}/b.db`;
    const store = await openStoreInWorker(url, { home: home.dir });
    const other = await openStore(url, { home: home.dir });
    try {
      const heard: string[] = [];
      const sub = store.onCutoff((e) => heard.push(`${e.action}:${e.bottle}`));
      await sub.ready;
      await other.cutOff("elsewhere", { by: "operator", reason: "test" });
      await other.restore("elsewhere", { by: "operator", reason: "test" });
      await expect
        .poll(() => heard, { timeout: 60_000 })
        .toEqual(["cutoff:elsewhere", "restore:elsewhere"]);
      sub.close();
      await other.cutOff("after-close", { by: "operator", reason: "test" });
      // a later event reaches no closed subscription: a fresh one hears only what follows it
      const late: string[] = [];
      const sub2 = store.onCutoff((e) => late.push(e.bottle));
      await sub2.ready;
      await other.cutOff("later", { by: "operator", reason: "test" });
      await expect.poll(() => late, { timeout: 60_000 }).toEqual(["later"]);
      expect(heard).toEqual(["cutoff:elsewhere", "restore:elsewhere"]);
      sub2.close();
    } finally {
      await other.close();
      await store.close();
      await home.cleanup();
    }
  });
});
