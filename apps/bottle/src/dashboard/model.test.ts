import { join } from "node:path";
import { openStore, type Store } from "@bottlekit/budget-store";
import { createTempHome, type TempHome } from "@bottlekit/test-utils";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { meter } from "./fixtures.ts";
import {
  BUDGET_REREAD_MS,
  BURN_MINUTES,
  DashboardModel,
  type DashboardSnapshot,
  REREAD_PER_REFRESH,
} from "./model.ts";

let home: TempHome;
let store: Store;
let now = Date.UTC(2026, 11, 5, 12, 0, 30);
beforeEach(async () => {
  home = await createTempHome("bk-model-");
  now = Date.UTC(2026, 11, 5, 12, 0, 30);
  store = await openStore(`sqlite:${join(home.dir, "bottlekit.db")}`, { clock: () => now });
});
afterEach(async () => {
  await store.close();
  await home.cleanup();
});

async function storeTokens(bottle: string): Promise<number> {
  return (await store.usage({ bottle })).totals.tokens;
}

describe("DashboardModel", () => {
  it("matches the store after the first load and after every incremental refresh", async () => {
    await store.defineBudget({ scope: "bottle", key: "b1", provider: "openai", tokens: 1_000 });
    for (let i = 0; i < 10; i++)
      await meter(store, { bottle: `b${i % 3}`, input: 10 + i, output: 5, costUsd: 0.01 });
    const model = new DashboardModel(store, () => now);
    let snap = await model.refresh();
    for (const row of snap.rows) expect(row.tokens).toBe(await storeTokens(row.bottle));
    expect(snap.rows.map((r) => r.bottle)).toEqual(["b0", "b1", "b2"]);

    now += 61_000;
    await meter(store, { bottle: "b1", input: 100, output: 50, usageMissing: true });
    await meter(store, { bottle: "new", agent: "ops", provider: "anthropic", input: 7, output: 1 });
    snap = await model.refresh();
    expect(snap.rows.map((r) => r.bottle)).toEqual(["b0", "b1", "b2", "new"]);
    for (const row of snap.rows) expect(row.tokens).toBe(await storeTokens(row.bottle));
    const b1 = snap.rows.find((r) => r.bottle === "b1");
    expect(b1?.usageMissingEvents).toBe(1);
    expect(b1?.budgets[0]).toMatchObject({
      scope: "bottle",
      key: "b1",
      limit: 1_000,
      used: await storeTokens("b1"),
    });
    expect(b1?.burn).toHaveLength(BURN_MINUTES);
    expect(b1?.burn.at(-1)).toBe(150);
    expect(b1?.burn.at(-2)).toBe(3 * 15 + 1 + 4 + 7);
    expect(b1?.exhaustsInMs).toBeGreaterThan(0);
    expect(snap.rows.find((r) => r.bottle === "new")).toMatchObject({
      agents: ["ops"],
      providers: ["anthropic"],
      state: "active",
    });
  });

  it("shows cutoffs, restores and the last action; an automatic cutoff appears when a budget is spent", async () => {
    await store.defineBudget({
      scope: "bottle",
      key: "a",
      provider: "openai",
      tokens: 20,
      policy: "freeze",
    });
    await meter(store, { bottle: "b", input: 1, output: 1 });
    const model = new DashboardModel(store, () => now);
    await model.refresh();
    await store.cutOff("b", { by: "alice", reason: "test" });
    let snap = await model.refresh();
    expect(snap.rows.find((r) => r.bottle === "b")).toMatchObject({
      state: "cut off",
      lastAction: { action: "cutoff", by: "alice" },
    });
    await meter(store, { bottle: "a", input: 15, output: 10, estimate: 5 });
    await store.restore("b", { by: "alice", reason: "ok" });
    snap = await model.refresh();
    expect(snap.rows.find((r) => r.bottle === "a")).toMatchObject({
      state: "frozen",
      lastAction: { action: "freeze", by: "budget" },
    });
    expect(snap.rows.find((r) => r.bottle === "b")).toMatchObject({
      state: "active",
      lastAction: { action: "restore" },
    });
    now += (BURN_MINUTES + 1) * 60_000;
    snap = await model.refresh();
    expect(snap.rows.find((r) => r.bottle === "b")?.state).toBe("idle");
    expect(snap.rows.find((r) => r.bottle === "b")?.burn.every((n) => n === 0)).toBe(true);
  });

  it("a refresh without changes reads the store a fixed number of times, whatever the number of bottles", async () => {
    for (let i = 0; i < 60; i++) await meter(store, { bottle: `bottle-${i}`, input: 1, output: 1 });
    const model = new DashboardModel(store, () => now);
    const first = await model.refresh();
    expect(first.rows).toHaveLength(60);
    now += 1_000;
    const idle = await model.refresh();
    expect(idle.queries).toBe(5);
    await meter(store, { bottle: "bottle-7", input: 1, output: 1 });
    now += 1_000;
    const one = await model.refresh();
    // two minutes, actions, the live window, budgets; then the changed bottle's cutoff state and its one subject.
    expect(one.queries).toBe(7);
    expect(one.rows.find((r) => r.bottle === "bottle-7")?.tokens).toBe(4);
  });

  it("budgets are read again every 30 s, a few bottles per refresh, longest-unread first", async () => {
    await store.defineBudget({
      scope: "bottle",
      key: "bottle-24",
      provider: "openai",
      tokens: 1_000,
    });
    for (let i = 0; i < 25; i++) await meter(store, { bottle: `bottle-${i}`, input: 1, output: 1 });
    const model = new DashboardModel(store, () => now);
    const remaining = (snap: DashboardSnapshot) =>
      snap.rows.find((r) => r.bottle === "bottle-24")?.budgets[0]?.remaining;
    expect(remaining(await model.refresh())).toBe(998);
    // A reservation moves a bar without an event: only a re-read shows it.
    const held = await store.reserve({
      bottle: "bottle-24",
      agent: "dev",
      provider: "openai",
      estimateTokens: 100,
    });
    expect(held.ok).toBe(true);
    now += 1_000;
    const quiet = await model.refresh();
    expect(quiet.queries).toBe(5);
    expect(remaining(quiet)).toBe(998);
    now += BUDGET_REREAD_MS;
    // Each re-read bottle: its cutoff state and one remaining() per subject (one subject here).
    const expected: number[] = [];
    for (let left = 25; left > 0; left -= REREAD_PER_REFRESH) {
      expected.push(5 + Math.min(left, REREAD_PER_REFRESH) * 2);
    }
    expected.push(5);
    const reads: number[] = [];
    for (const _ of expected) {
      reads.push((await model.refresh()).queries);
      now += 100;
    }
    expect(reads).toEqual(expected);
    expect(expected.length).toBeGreaterThan(2);
    expect(remaining(await model.refresh())).toBe(898);
  });
});
