import { openStore, type Store } from "@bottlekit/budget-store";
import { createProxyHost, type ProxyHost } from "@bottlekit/egress-proxy";
import { createTempHome, type TempHome } from "@bottlekit/test-utils";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ProxyCutoffs } from "./proxy-cutoffs.ts";
import type { GatewayLogEvent } from "./stages/types.ts";

describe("ProxyCutoffs", () => {
  let home: TempHome;
  let store: Store;
  let proxy: ProxyHost;
  const logs: GatewayLogEvent[] = [];
  beforeAll(async () => {
    home = await createTempHome("bottlekit-pcut-");
    store = await openStore(`sqlite:${home.dir}/bottlekit.db`, { home: home.dir });
    proxy = createProxyHost({ home: home.dir });
    await proxy.register({ bottle: "b1", routes: [] });
    await proxy.register({ bottle: "b1", routes: [] });
    await proxy.register({ bottle: "b2", routes: [] });
  });
  afterAll(async () => {
    await proxy.close();
    await store.close();
    await home.cleanup();
  });
  const cutoffOf = async (bottle: string) =>
    (await proxy.list()).filter((s) => s.bottle === bottle).map((s) => s.cutoff);

  it("cuts off every session of the bottle, none of another; logged with the reason", async () => {
    const c = new ProxyCutoffs(proxy, store, (e) => logs.push(e), 60_000);
    try {
      await store.cutOff("b1", { by: "test", reason: "spent" });
      expect(
        await c.apply({ bottle: "b1", reason: "crossed", sessionId: "s", requestId: "r1" }),
      ).toBe(2);
      expect(await cutoffOf("b1")).toEqual([true, true]);
      expect(await cutoffOf("b2")).toEqual([false]);
      expect(c.heldBottles()).toEqual(["b1"]);
      expect(logs.find((l) => l.event === "proxy.cutoff")).toMatchObject({
        bottle: "b1",
        reason: "crossed",
        sessions: 2,
        requestId: "r1",
      });
      // still cut off in the store: nothing restored
      expect(await c.recheck()).toEqual([]);
      expect(await cutoffOf("b1")).toEqual([true, true]);
      // the store lifts it: the proxy follows
      await store.restore("b1", { by: "test", reason: "raised" });
      expect(await c.recheck()).toEqual(["b1"]);
      expect(await cutoffOf("b1")).toEqual([false, false]);
      expect(c.heldBottles()).toEqual([]);
    } finally {
      c.close();
    }
  });

  it("a bottle with no proxy session is not held", async () => {
    const c = new ProxyCutoffs(proxy, store, undefined, 60_000);
    try {
      expect(
        await c.apply({
          bottle: "nobody",
          reason: "cut-off",
          sessionId: undefined,
          requestId: "r",
        }),
      ).toBe(0);
      expect(c.heldBottles()).toEqual([]);
    } finally {
      c.close();
    }
  });

  it("a store that cannot answer keeps the bottle cut off (fail closed)", async () => {
    const broken = {
      isCutOff: () => Promise.reject(new Error("store down")),
    };
    const c = new ProxyCutoffs(proxy, broken, undefined, 60_000);
    try {
      await c.apply({ bottle: "b2", reason: "cut-off", sessionId: undefined, requestId: "r" });
      expect(await c.recheck()).toEqual([]);
      expect(await cutoffOf("b2")).toEqual([true]);
      expect(c.heldBottles()).toEqual(["b2"]);
    } finally {
      c.close();
      await proxy.restore({ bottle: "b2" });
    }
  });

  it("after close, nothing is cut off", async () => {
    const c = new ProxyCutoffs(proxy, store, undefined, 60_000);
    c.close();
    expect(
      await c.apply({ bottle: "b2", reason: "cut-off", sessionId: undefined, requestId: "r" }),
    ).toBe(0);
    expect(await cutoffOf("b2")).toEqual([false]);
  });
});
