import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { copyStore, openStore } from "../src/index.ts";
import { startTestPostgres, type TestPostgres } from "./pg.ts";

let pg: TestPostgres;
const dir = mkdtempSync(join(tmpdir(), "bk-copy-"));
beforeAll(async () => {
  pg = await startTestPostgres();
}, 120_000);
afterAll(async () => {
  await pg?.stop();
  rmSync(dir, { recursive: true, force: true });
}, 300_000); // hang guard

describe("copyStore (bottle-gateway store migrate)", () => {
  it("copies budgets, keys, ledger, cutoffs and audit from SQLite into an empty Postgres, verified", async () => {
    const from = `sqlite:${join(dir, "src.db")}`;
    const lite = await openStore(from);
    const who = { bottle: "web", parents: ["team"], agent: "coder", provider: "anthropic" };
    await lite.defineBudget({
      scope: "bottle",
      key: "team",
      provider: "anthropic",
      tokens: 500,
      source: "operator",
    });
    await lite.defineBudget({
      scope: "global",
      provider: "anthropic",
      tokens: 10_000,
      window: "daily",
    });
    await lite.setDefaultPolicy("freeze");
    const key = await lite.createGatewayKey({ bottle: "web", agent: "coder" });
    for (let i = 0; i < 30; i++) {
      const r = await lite.reserve({ ...who, estimateTokens: 20 });
      if (!r.ok) break;
      await lite.settle(r.id, { inputTokens: 10 + (i % 7), costUsd: 0.001 * i, model: "m" });
    }
    await lite.cutOff("api", { by: "ops", reason: "test" });
    const before = await lite.usage({ groupBy: ["bottle"] });
    await lite.close();

    const to = await pg.newDatabase();
    const progress: string[] = [];
    const out = await copyStore(from, to, (t) => progress.push(t));
    expect({ ...out.to, costUsd: 0 }).toEqual({ ...out.from, costUsd: 0 });
    expect(out.to.costUsd).toBeCloseTo(out.from.costUsd, 9);
    expect(out.from.events).toBe(30);
    expect(progress).toContain("usage_events");

    const store = await openStore(to);
    try {
      const after = (await store.usage({ groupBy: ["bottle"] })).totals;
      expect({ ...after, costUsd: 0 }).toEqual({ ...before.totals, costUsd: 0 });
      expect(after.costUsd).toBeCloseTo(before.totals.costUsd, 9);
      expect(await store.verifyGatewayKey(key.key)).toMatchObject({
        bottle: "web",
        agent: "coder",
      });
      expect(await store.getDefaultPolicy()).toBe("freeze");
      expect(await store.remaining(who)).toMatchObject({
        scope: "parent",
        key: "team",
        used: before.totals.tokens,
      });
      expect(await store.isCutOff("api")).toBe(true);
      expect(await store.isCutOff("web")).toBe(false);
      // New events continue after the copied ids.
      await store.defineBudget({
        scope: "bottle",
        key: "team",
        provider: "anthropic",
        tokens: 1_000,
        source: "operator",
      });
      const r = await store.reserve({ ...who, estimateTokens: 5 });
      if (!r.ok) throw new Error(r.reason);
      const s = await store.settle(r.id, { inputTokens: 5 });
      expect(s.eventId).toBe(31);
    } finally {
      await store.close();
    }
    // A second copy into the same (now non-empty) database is refused, nothing written.
    await expect(copyStore(from, to)).rejects.toMatchObject({ code: "E_STORE_COPY" });
    await expect(copyStore(to, from)).rejects.toMatchObject({ code: "E_INVALID_INPUT" });
  }, 120_000);
});
