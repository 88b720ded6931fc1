/**
 * The Store contract: every backend (SQLite now, Postgres later) must pass this suite.
 * Use it from a backend's test file: `describeStoreContract("sqlite", (o) => openStore(..., o))`.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { isBudgetStoreError } from "../src/errors.ts";
import type { BudgetInput, CutoffEvent, ReserveInput, Store } from "../src/types.ts";

export interface ContractStoreOptions {
  clock: () => number;
  reservationTtlMs?: number;
  settleGraceMs?: number;
}

export type StoreFactory = (options: ContractStoreOptions) => Promise<Store>;

const T0 = Date.parse("2026-01-31T12:00:00Z");

export function describeStoreContract(backend: string, factory: StoreFactory): void {
  describe(`Store contract (${backend})`, () => {
    let now = T0;
    let store: Store;
    const open = async (o: Partial<ContractStoreOptions> = {}) => {
      store = await factory({ clock: () => now, ...o });
      return store;
    };
    beforeEach(async () => {
      now = T0;
      await open();
    });
    afterEach(async () => {
      await store.close();
    });

    const who = { bottle: "web", parents: ["team", "org"], agent: "coder", provider: "anthropic" };
    const reserve = (estimateTokens: number, over: Partial<ReserveInput> = {}) =>
      store.reserve({ ...who, estimateTokens, ...over });
    /** Reserve and settle `tokens` exactly; returns the settle result. */
    const spend = async (tokens: number, over: Partial<ReserveInput> = {}) => {
      const r = await reserve(tokens, over);
      if (!r.ok) throw new Error(`unexpected refusal ${r.reason} on ${r.scope.scope}`);
      return store.settle(r.id, { inputTokens: tokens });
    };
    const budget = (b: Partial<BudgetInput> & Pick<BudgetInput, "scope">) =>
      store.defineBudget({ provider: "anthropic", tokens: 100, ...b });

    describe("precedence", () => {
      const cases = [
        { scope: "agent", key: "coder", expect: { scope: "agent", key: "coder" } },
        { scope: "bottle", key: "web", expect: { scope: "bottle", key: "web" } },
        { scope: "bottle", key: "team", expect: { scope: "parent", key: "team" } },
        { scope: "bottle", key: "org", expect: { scope: "parent", key: "org" } },
        { scope: "global", key: undefined, expect: { scope: "global", key: "*" } },
      ] as const;

      for (const c of cases) {
        it(`${c.expect.scope} ${c.expect.key} alone governs`, async () => {
          await budget({ scope: c.scope, key: c.key, tokens: 50 });
          const rem = await store.remaining(who);
          expect(rem).toMatchObject({ ...c.expect, limit: 50, remaining: 50 });
          const refused = await reserve(51);
          expect(refused).toEqual({
            ok: false,
            reason: "insufficient",
            scope: { ...c.expect, provider: "anthropic" },
            remaining: 50,
          });
          // Another provider is not governed by it.
          expect(await store.remaining({ ...who, provider: "openai" })).toBeUndefined();
          expect((await reserve(1_000_000, { provider: "openai" })).ok).toBe(true);
        });
      }

      it("stacked scopes: the nearest defined one governs, each in turn", async () => {
        await budget({ scope: "global", tokens: 10 });
        await budget({ scope: "bottle", key: "org", tokens: 20 });
        await budget({ scope: "bottle", key: "team", tokens: 30 });
        await budget({ scope: "bottle", key: "web", tokens: 40 });
        await budget({ scope: "agent", key: "coder", tokens: 50 });
        const order = [
          ["agent", "coder", 50],
          ["bottle", "web", 40],
          ["parent", "team", 30],
          ["parent", "org", 20],
          ["global", "*", 10],
        ] as const;
        for (const [i, [scope, key, limit]] of order.entries()) {
          const rem = await store.remaining(who);
          expect(rem, `step ${i}`).toMatchObject({ scope, key, limit });
          // The nearest scope allows its full limit even when an outer scope is smaller.
          expect((await reserve(limit + 1)).ok).toBe(false);
          const r = await reserve(limit);
          expect(r.ok).toBe(true);
          if (r.ok) await store.release(r.id);
          await store.removeBudgets({ scope: scope === "parent" ? "bottle" : scope, key });
        }
        expect(await store.remaining(who)).toBeUndefined();
      });

      it("the nearest parent wins over a farther one", async () => {
        await budget({ scope: "bottle", key: "org", tokens: 500 });
        await budget({ scope: "bottle", key: "team", tokens: 5 });
        expect(await store.remaining(who)).toMatchObject({
          scope: "parent",
          key: "team",
          limit: 5,
        });
        expect(await store.remaining({ ...who, parents: ["org", "team"] })).toMatchObject({
          scope: "parent",
          key: "org",
        });
      });

      it("a parent budget counts the usage of every child bottle", async () => {
        await budget({ scope: "bottle", key: "team", tokens: 100 });
        await spend(30);
        await spend(30, { bottle: "api", agent: "other" });
        const rem = await store.remaining({ ...who, bottle: "docs" });
        expect(rem).toMatchObject({ scope: "parent", key: "team", used: 60, remaining: 40 });
        // A bottle that is not a child does not see it.
        expect(await store.remaining({ ...who, parents: [] })).toBeUndefined();
      });

      it("an agent budget counts that agent across bottles, not other agents", async () => {
        await budget({ scope: "agent", key: "coder", tokens: 100 });
        await spend(40, { bottle: "a" });
        await spend(40, { bottle: "b" });
        await spend(40, { agent: "reviewer" });
        expect(await store.remaining(who)).toMatchObject({ used: 80, remaining: 20 });
      });

      it("the ceiling applies on top of a larger governing budget", async () => {
        await budget({ scope: "agent", key: "coder", tokens: 1000 });
        await budget({ scope: "ceiling", tokens: 100 });
        const r = await reserve(150);
        expect(r).toMatchObject({
          ok: false,
          reason: "insufficient",
          scope: { scope: "ceiling", key: "*" },
        });
        const other = await spend(100, { agent: "someone-else", bottle: "elsewhere", parents: [] });
        expect(other.crossed).toMatchObject({ scope: "ceiling", used: 100 });
        expect(await store.isCutOff("elsewhere")).toBe(true);
        expect(await reserve(1)).toMatchObject({
          ok: false,
          reason: "exhausted",
          scope: { scope: "ceiling" },
        });
        const rem = await store.remaining(who);
        expect(rem).toMatchObject({ scope: "ceiling", remaining: 0 });
        expect(rem?.entries.map((e) => e.scope)).toEqual(["agent", "ceiling"]);
      });

      it("the ceiling alone applies when no scope has a budget", async () => {
        await budget({ scope: "ceiling", tokens: 10 });
        expect(await store.remaining(who)).toMatchObject({ scope: "ceiling", limit: 10 });
        const s = await spend(10);
        expect(s.crossed).toMatchObject({ scope: "ceiling", limit: 10, used: 10 });
      });

      it("for one scope, a manifest budget beats settings and a flag beats both", async () => {
        await budget({ scope: "bottle", key: "web", tokens: 10, source: "settings" });
        await budget({ scope: "bottle", key: "web", tokens: 20, source: "manifest" });
        expect(await store.remaining(who)).toMatchObject({ limit: 20 });
        await budget({ scope: "bottle", key: "web", tokens: 30, source: "flag" });
        expect(await store.remaining(who)).toMatchObject({ limit: 30 });
        await store.removeBudgets({ source: "flag" });
        expect(await store.remaining(who)).toMatchObject({ limit: 20 });
      });

      it("a launch-flag budget governs its run even when a nearer scope has a settings budget", async () => {
        await budget({ scope: "agent", key: "coder", tokens: 10 });
        await budget({ scope: "bottle", key: "web", tokens: 70, source: "flag" });
        expect(await store.remaining(who)).toMatchObject({
          scope: "bottle",
          key: "web",
          limit: 70,
        });
        expect((await reserve(70)).ok).toBe(true);
      });

      it("sources for one scope: settings < config < manifest < operator < flag", async () => {
        const order = ["settings", "config", "manifest", "operator", "flag"] as const;
        for (const [i, source] of order.entries()) {
          await budget({ scope: "bottle", key: "web", tokens: 10 * (i + 1), source });
          expect(await store.remaining(who), source).toMatchObject({ limit: 10 * (i + 1) });
        }
        for (const [i, source] of [...order.entries()].reverse().slice(0, -1)) {
          await store.removeBudgets({ source });
          expect(await store.remaining(who), `without ${source}`).toMatchObject({ limit: 10 * i });
        }
      });

      it("gateway-config and operator budgets do not outrank a nearer scope; only a run's flag does", async () => {
        await budget({ scope: "agent", key: "coder", tokens: 10, source: "settings" });
        await budget({ scope: "bottle", key: "web", tokens: 70, source: "config" });
        await budget({ scope: "global", tokens: 90, source: "operator" });
        expect(await store.remaining(who)).toMatchObject({ scope: "agent", limit: 10 });
        await budget({ scope: "bottle", key: "team", tokens: 80, source: "flag" });
        expect(await store.remaining(who)).toMatchObject({ scope: "parent", key: "team" });
      });

      it('replaceBudgets("config") drops the budgets the config no longer has', async () => {
        await store.replaceBudgets("config", [
          { scope: "bottle", key: "web", provider: "anthropic", tokens: 40 },
          { scope: "global", provider: "anthropic", tokens: 400 },
        ]);
        await budget({ scope: "agent", key: "coder", tokens: 5, source: "operator" });
        await store.replaceBudgets("config", [
          { scope: "global", provider: "anthropic", tokens: 300 },
        ]);
        const all = await store.listBudgets();
        expect(all.map((b) => [b.source, b.scope, b.tokens])).toEqual([
          ["operator", "agent", 5],
          ["config", "global", 300],
        ]);
      });

      it("replaceBudgets swaps one source atomically and leaves the others", async () => {
        await budget({ scope: "global", tokens: 10, source: "settings" });
        await budget({ scope: "bottle", key: "web", tokens: 20, source: "manifest" });
        await store.replaceBudgets("settings", [
          { scope: "agent", key: "coder", provider: "anthropic", tokens: 5 },
        ]);
        const all = await store.listBudgets();
        expect(all.map((b) => [b.source, b.scope, b.key, b.tokens])).toEqual([
          ["settings", "agent", "coder", 5],
          ["manifest", "bottle", "web", 20],
        ]);
        expect(await store.listBudgets({ source: "manifest" })).toHaveLength(1);
      });
    });

    describe("exact limits", () => {
      it("a budget of N allows exactly N tokens and >= N cuts off", async () => {
        await budget({ scope: "bottle", key: "web", tokens: 100 });
        expect(await reserve(101)).toMatchObject({
          ok: false,
          reason: "insufficient",
          remaining: 100,
        });
        const a = await spend(99);
        expect(a.crossed).toBeUndefined();
        expect(await reserve(2)).toMatchObject({ ok: false, reason: "insufficient", remaining: 1 });
        const b = await spend(1);
        expect(b.crossed).toEqual({
          scope: "bottle",
          key: "web",
          provider: "anthropic",
          unit: "tokens",
          window: "none",
          limit: 100,
          used: 100,
          policy: "cutoff",
        });
        expect(await store.isCutOff("web")).toBe(true);
        await store.restore("web", { by: "ops", reason: "test" });
        expect(await reserve(0)).toMatchObject({ ok: false, reason: "exhausted", remaining: 0 });
        expect(await store.usage({ bottle: "web" })).toMatchObject({
          totals: { tokens: 100, events: 2 },
        });
      });

      it("a zero budget allows nothing", async () => {
        await budget({ scope: "global", tokens: 0 });
        expect(await reserve(0)).toMatchObject({ ok: false, reason: "exhausted" });
      });

      it("held reservations count: concurrent holds cannot oversubscribe", async () => {
        await budget({ scope: "global", tokens: 100 });
        const a = await reserve(60);
        expect(a.ok).toBe(true);
        expect(await reserve(41)).toMatchObject({
          ok: false,
          reason: "insufficient",
          remaining: 40,
        });
        expect((await reserve(40)).ok).toBe(true);
        expect(await store.remaining(who)).toMatchObject({ used: 0, reserved: 100, remaining: 0 });
        if (a.ok) expect(await store.release(a.id)).toBe(true);
        expect(await store.remaining(who)).toMatchObject({ reserved: 40, remaining: 60 });
      });

      it("overshoot is bounded by settled minus reserved and then cuts off", async () => {
        await budget({ scope: "global", tokens: 100 });
        const r = await reserve(90);
        if (!r.ok) throw new Error("refused");
        const s = await store.settle(r.id, { inputTokens: 80, outputTokens: 25 });
        expect(s.chargedTokens).toBe(105);
        expect(s.crossed).toMatchObject({ used: 105, limit: 100 });
      });

      it("USD limits are checked against priced usage", async () => {
        await store.defineBudget({ scope: "bottle", key: "web", provider: "anthropic", usd: 1 });
        const r = await reserve(10, { estimateUsd: 0.6 });
        if (!r.ok) throw new Error("refused");
        expect(await reserve(10, { estimateUsd: 0.5 })).toMatchObject({
          ok: false,
          reason: "insufficient",
        });
        const s = await store.settle(r.id, { inputTokens: 10, costUsd: 1 });
        expect(s.crossed).toMatchObject({ unit: "usd", limit: 1, used: 1 });
      });

      it("charges input + output (cache and reasoning are parts of them) unless totalTokens is given", async () => {
        const a = await reserve(100);
        const b = await reserve(100);
        if (!a.ok || !b.ok) throw new Error("refused");
        const sa = await store.settle(a.id, {
          inputTokens: 50,
          cacheReadTokens: 40,
          cacheWriteTokens: 5,
          outputTokens: 20,
          reasoningTokens: 15,
        });
        expect(sa.chargedTokens).toBe(70);
        expect((await store.settle(b.id, { inputTokens: 1, totalTokens: 42 })).chargedTokens).toBe(
          42,
        );
        expect((await store.usage()).totals).toMatchObject({
          tokens: 112,
          cacheReadTokens: 40,
          reasoningTokens: 15,
        });
      });

      it("missing usage fails closed: the reservation is charged", async () => {
        await budget({ scope: "global", tokens: 1000 });
        const r = await reserve(300);
        if (!r.ok) throw new Error("refused");
        const s = await store.settle(r.id, { usageMissing: true, outputTokens: 12 });
        expect(s.chargedTokens).toBe(300);
        const report = await store.usage();
        expect(report.totals).toMatchObject({
          tokens: 300,
          outputTokens: 12,
          usageMissingEvents: 1,
        });
      });
    });

    describe("windows (UTC, injected clock)", () => {
      it("daily resets at UTC midnight", async () => {
        now = Date.parse("2026-01-31T23:59:59.999Z");
        await budget({ scope: "global", tokens: 100, window: "daily" });
        const s = await spend(100);
        expect(s.crossed).toMatchObject({ window: "daily" });
        expect(await store.cutoffState("web")).toMatchObject({
          until: Date.parse("2026-02-01T00:00:00Z"),
        });
        expect(await reserve(1)).toMatchObject({ ok: false, reason: "cut-off" });
        now = Date.parse("2026-02-01T00:00:00.000Z");
        expect(await store.isCutOff("web")).toBe(false);
        expect(await store.remaining(who)).toMatchObject({ used: 0, remaining: 100 });
        expect((await reserve(100)).ok).toBe(true);
        expect((await store.actions()).map((a) => [a.action, a.by])).toEqual([
          ["cutoff", "budget"],
          ["restore", "window-reset"],
        ]);
      });

      it("monthly spans the whole month and resets on the 1st", async () => {
        await budget({ scope: "global", tokens: 100, window: "monthly" });
        now = Date.parse("2026-01-01T00:00:00Z");
        await spend(40);
        now = Date.parse("2026-01-31T23:59:59Z");
        await spend(60);
        expect(await reserve(1)).toMatchObject({ ok: false, reason: "cut-off" });
        // Another bottle under the same global budget is refused because it is spent.
        expect(await reserve(1, { bottle: "api" })).toMatchObject({
          ok: false,
          reason: "exhausted",
        });
        now = Date.parse("2026-02-01T00:00:00Z");
        expect(await store.remaining(who)).toMatchObject({ used: 0 });
        await spend(100);
        now = Date.parse("2026-02-28T23:00:00Z");
        expect(await reserve(1)).toMatchObject({ ok: false, reason: "cut-off" });
        expect(await reserve(1, { bottle: "api" })).toMatchObject({
          ok: false,
          reason: "exhausted",
        });
        now = Date.parse("2026-03-01T00:00:00Z");
        expect((await reserve(1)).ok).toBe(true);
      });

      it("weekly resets on Monday 00:00 UTC", async () => {
        await budget({ scope: "global", tokens: 10, window: "weekly" });
        now = Date.parse("2026-03-09T00:00:00Z"); // Monday
        await spend(5);
        now = Date.parse("2026-03-15T23:59:59Z"); // Sunday
        expect(await store.remaining(who)).toMatchObject({ used: 5 });
        now = Date.parse("2026-03-16T00:00:00Z");
        expect(await store.remaining(who)).toMatchObject({ used: 0 });
      });

      it("rolling Nd counts today and the N-1 days before", async () => {
        await budget({ scope: "global", tokens: 100, window: "2d" });
        now = Date.parse("2026-01-30T10:00:00Z");
        await spend(70);
        now = Date.parse("2026-01-31T23:00:00Z");
        expect(await store.remaining(who)).toMatchObject({ used: 70 });
        now = Date.parse("2026-02-01T00:00:00Z");
        expect(await store.remaining(who)).toMatchObject({ used: 0 });
      });

      it("none never resets", async () => {
        await budget({ scope: "global", tokens: 10 });
        await spend(10);
        now = Date.parse("2027-06-01T00:00:00Z");
        expect(await store.cutoffState("web")).toMatchObject({ until: undefined });
        expect(await reserve(1)).toMatchObject({ ok: false, reason: "cut-off" });
        await store.restore("web", { by: "ops", reason: "checked" });
        expect(await reserve(1)).toMatchObject({ ok: false, reason: "exhausted" });
      });
    });

    describe("reservations", () => {
      it("a crashed holder's reservation stops counting after the TTL and is swept later", async () => {
        await store.close();
        await open({ reservationTtlMs: 1000, settleGraceMs: 5000 });
        await budget({ scope: "global", tokens: 100 });
        const held = await reserve(100);
        expect(held.ok).toBe(true);
        expect(await reserve(1)).toMatchObject({ ok: false, reason: "insufficient" });
        now += 999;
        expect(await reserve(1)).toMatchObject({ ok: false });
        now += 1;
        expect(await store.remaining(who)).toMatchObject({ reserved: 0, remaining: 100 });
        const fresh = await reserve(100);
        expect(fresh.ok).toBe(true);
        // Not yet swept: a late settle of the expired hold still records its usage.
        if (held.ok) await store.settle(held.id, { inputTokens: 7 });
        expect((await store.usage()).totals.tokens).toBe(7);
        now += 5999;
        expect(await store.sweepExpired()).toBe(0);
        now += 1;
        expect(await store.sweepExpired()).toBe(1);
        if (fresh.ok) {
          await expect(store.settle(fresh.id, { inputTokens: 1 })).rejects.toMatchObject({
            code: "E_UNKNOWN_RESERVATION",
          });
        }
      });

      it("settle and release are one-shot", async () => {
        const r = await reserve(5);
        if (!r.ok) throw new Error("refused");
        await store.settle(r.id, { inputTokens: 5 });
        const again = await store.settle(r.id, { inputTokens: 5 }).catch((e: unknown) => e);
        expect(isBudgetStoreError(again) && again.code).toBe("E_UNKNOWN_RESERVATION");
        expect(await store.release(r.id)).toBe(false);
        expect((await store.usage()).totals.tokens).toBe(5);
      });

      it("a released reservation records no usage", async () => {
        await budget({ scope: "global", tokens: 10 });
        const r = await reserve(10);
        if (!r.ok) throw new Error("refused");
        expect(await store.release(r.id)).toBe(true);
        expect((await store.usage()).totals.events).toBe(0);
        expect((await reserve(10)).ok).toBe(true);
      });

      it("rejects invalid input with E_INVALID_INPUT naming the field", async () => {
        for (const bad of [-1, 1.5, Number.NaN]) {
          await expect(reserve(bad)).rejects.toMatchObject({
            code: "E_INVALID_INPUT",
            message: expect.stringContaining("estimateTokens"),
          });
        }
        await expect(
          store.reserve({ ...who, bottle: "", estimateTokens: 1 }),
        ).rejects.toMatchObject({
          code: "E_INVALID_INPUT",
        });
        await expect(
          store.defineBudget({
            scope: "global",
            provider: "anthropic",
            window: "hourly" as "daily",
            tokens: 1,
          }),
        ).rejects.toMatchObject({
          code: "E_INVALID_INPUT",
          message: expect.stringContaining("window"),
        });
        await expect(
          store.defineBudget({ scope: "agent", provider: "anthropic", tokens: 1 }),
        ).rejects.toMatchObject({
          code: "E_INVALID_INPUT",
        });
      });
    });

    describe("cutoff state and restore", () => {
      it("a crossing records the budget's policy, refuses the bottle, and restore lifts it", async () => {
        await budget({ scope: "bottle", key: "web", tokens: 10, policy: "freeze" });
        const s = await spend(10);
        expect(s.crossed?.policy).toBe("freeze");
        expect(await store.isCutOff("web")).toBe(true);
        expect(await store.cutoffState("web")).toMatchObject({
          policy: "freeze",
          by: "budget",
          scope: { scope: "bottle", key: "web", provider: "anthropic" },
        });
        // Refused on any provider, even one without a budget.
        expect(await reserve(1, { provider: "openai" })).toMatchObject({
          ok: false,
          reason: "cut-off",
          scope: { scope: "bottle", key: "web" },
        });
        now += 1000;
        expect(await store.restore("web", { by: "alice", reason: "raised budget" })).toBe(true);
        expect(await store.isCutOff("web")).toBe(false);
        expect(await store.restore("web", { by: "alice", reason: "again" })).toBe(false);
        expect((await reserve(1, { provider: "openai" })).ok).toBe(true);
        const actions = await store.actions({ bottle: "web" });
        expect(actions.map((a) => [a.action, a.by, a.at - T0])).toEqual([
          ["freeze", "budget", 0],
          ["restore", "alice", 1000],
        ]);
        expect(actions[1]?.reason).toBe("raised budget");
      });

      it("a budget without a policy uses the store default", async () => {
        expect(await store.getDefaultPolicy()).toBe("cutoff");
        await store.setDefaultPolicy("kill");
        await budget({ scope: "global", tokens: 5 });
        expect((await spend(5)).crossed?.policy).toBe("kill");
      });

      it("a cut-off parent refuses its children; an operator can cut off by hand", async () => {
        const st = await store.cutOff("team", { by: "ops", reason: "incident", policy: "kill" });
        expect(st).toMatchObject({ bottle: "team", policy: "kill", scope: undefined, by: "ops" });
        expect(await reserve(1)).toMatchObject({
          ok: false,
          reason: "cut-off",
          scope: { scope: "parent", key: "team" },
        });
        expect(await store.isCutOff("web")).toBe(false);
        expect((await store.actions()).map((a) => a.action)).toEqual(["kill"]);
      });

      it("crossing the global budget cuts off the bottle that crossed it only once", async () => {
        await budget({ scope: "global", tokens: 10 });
        const first = await reserve(6);
        const second = await reserve(4);
        if (!first.ok || !second.ok) throw new Error("refused");
        await store.settle(first.id, { inputTokens: 8 });
        const s2 = await store.settle(second.id, { inputTokens: 4 });
        expect(s2.crossed).toMatchObject({ scope: "global", used: 12 });
        expect(await store.actions()).toHaveLength(1);
      });
    });

    it("close answers the metering calls already made, then refuses new ones", async () => {
      await budget({ scope: "bottle", key: "web", tokens: 100 });
      const pending = [reserve(10), reserve(20)];
      await store.close();
      const [a, b] = await Promise.all(pending);
      expect([a?.ok, b?.ok]).toEqual([true, true]);
      await expect(reserve(1)).rejects.toMatchObject({ code: "E_CLOSED" });
    });

    describe("cutoff events (onCutoff)", () => {
      /** Wait until `done()` holds; the deadline is a hang guard only, not a timing claim. */
      const until = async (done: () => boolean, what: string) => {
        const deadline = Date.now() + 20_000;
        while (!done()) {
          if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
          await new Promise((r) => setTimeout(r, 10));
        }
      };

      it("a listener hears each cutoff and restore this store records, once, in order", async () => {
        const heard: CutoffEvent[] = [];
        const sub = store.onCutoff((e) => heard.push(e));
        await sub.ready;
        await budget({ scope: "bottle", key: "web", tokens: 10, policy: "freeze" });
        await spend(10);
        now += 1000;
        await store.restore("web", { by: "alice", reason: "raised budget" });
        await store.cutOff("team", { by: "ops", reason: "incident", policy: "kill" });
        await until(() => heard.length >= 3, "three events");
        expect(heard.map((e) => [e.bottle, e.action, e.by, e.at - T0])).toEqual([
          ["web", "freeze", "budget", 0],
          ["web", "restore", "alice", 1000],
          ["team", "kill", "ops", 1000],
        ]);
        expect(heard[0]?.scope).toEqual({ scope: "bottle", key: "web", provider: "anthropic" });
        // The events are the audit entries themselves.
        expect(heard).toEqual(await store.actions());
        sub.close();
        sub.close(); // idempotent
      });

      it("a closed subscription hears nothing more; a throwing listener does not stop others", async () => {
        const first: CutoffEvent[] = [];
        const second: CutoffEvent[] = [];
        const a = store.onCutoff((e) => first.push(e));
        const thrower = store.onCutoff(() => {
          throw new Error("listener bug");
        });
        const b = store.onCutoff((e) => second.push(e));
        await Promise.all([a.ready, b.ready, thrower.ready]);
        await store.cutOff("web", { by: "ops", reason: "one" });
        await until(() => first.length === 1 && second.length === 1, "the first event");
        a.close();
        await store.restore("web", { by: "ops", reason: "two" });
        await until(() => second.length === 2, "the second event");
        expect(first.map((e) => e.action)).toEqual(["cutoff"]);
        expect(second.map((e) => e.action)).toEqual(["cutoff", "restore"]);
        b.close();
        thrower.close();
      });

      it("a window reset that lifts a cutoff is heard as a restore", async () => {
        await budget({ scope: "bottle", key: "web", tokens: 10, window: "daily" });
        const heard: CutoffEvent[] = [];
        const sub = store.onCutoff((e) => heard.push(e));
        await sub.ready;
        await spend(10);
        now += 24 * 3_600_000;
        expect((await reserve(1)).ok).toBe(true);
        await until(() => heard.length >= 2, "cutoff and restore");
        expect(heard.map((e) => [e.action, e.by])).toEqual([
          ["cutoff", "budget"],
          ["restore", "window-reset"],
        ]);
        sub.close();
      });

      it("refuses a listener that is not a function", () => {
        expect(() => store.onCutoff("nope" as unknown as () => void)).toThrow(
          expect.objectContaining({ code: "E_INVALID_INPUT" }),
        );
      });
    });

    describe("reports", () => {
      it("usage filters by bottle, agent, provider, model and time, and groups", async () => {
        const put = async (
          over: Partial<ReserveInput>,
          model: string,
          tokens: number,
          costUsd?: number,
        ) => {
          const r = await reserve(tokens, over);
          if (!r.ok) throw new Error("refused");
          await store.settle(r.id, {
            model,
            inputTokens: tokens,
            cacheReadTokens: 1,
            ...(costUsd === undefined ? {} : { costUsd }),
          });
          now += 1000;
        };
        await put({}, "claude-a", 10, 0.5);
        await put({ agent: "reviewer" }, "claude-b", 20);
        await put({ provider: "openai" }, "gpt-x", 30, 0.25);
        await put({ bottle: "api", parents: ["team"] }, "claude-a", 40, 1);
        expect((await store.usage()).totals).toMatchObject({
          events: 4,
          tokens: 100,
          inputTokens: 100,
          cacheReadTokens: 4,
          costUsd: 1.75,
          unpricedEvents: 1,
        });
        expect((await store.usage({ bottle: "web" })).totals.tokens).toBe(60);
        expect((await store.usage({ bottle: "team", includeChildren: true })).totals.tokens).toBe(
          100,
        );
        expect((await store.usage({ bottle: "team" })).totals.tokens).toBe(0);
        expect((await store.usage({ agent: "reviewer" })).totals.tokens).toBe(20);
        expect((await store.usage({ provider: "openai" })).totals.tokens).toBe(30);
        expect((await store.usage({ model: "claude-a" })).totals.events).toBe(2);
        expect((await store.usage({ since: T0 + 1000, until: T0 + 3000 })).totals.tokens).toBe(50);
        const grouped = await store.usage({ groupBy: ["provider"] });
        expect(grouped.groups.map((g) => [g.provider, g.tokens])).toEqual([
          ["anthropic", 70],
          ["openai", 30],
        ]);
        const events = await store.events({ bottle: "api" });
        expect(events).toHaveLength(1);
        expect(events[0]).toMatchObject({
          bottle: "api",
          parents: ["team"],
          model: "claude-a",
          costUsd: 1,
        });
      });

      it("remaining reports used, reserved and remaining for the binding scope", async () => {
        await budget({ scope: "bottle", key: "web", tokens: 100, window: "daily" });
        await spend(30);
        await reserve(20);
        expect(await store.remaining(who)).toMatchObject({
          scope: "bottle",
          key: "web",
          provider: "anthropic",
          unit: "tokens",
          window: "daily",
          policy: "cutoff",
          limit: 100,
          used: 30,
          reserved: 20,
          remaining: 50,
        });
      });
    });

    describe("gateway keys", () => {
      it("creates a key once, verifies it, lists metadata only, and revokes it", async () => {
        const created = await store.createGatewayKey({
          bottle: "web",
          agent: "coder",
          label: "laptop",
        });
        expect(created.key).toMatch(/^bk_[A-Za-z0-9_-]{43}$/);
        expect(await store.verifyGatewayKey(created.key)).toEqual({
          id: created.id,
          bottle: "web",
          agent: "coder",
        });
        expect(await store.verifyGatewayKey(`${created.key}x`)).toBeUndefined();
        expect(await store.verifyGatewayKey("")).toBeUndefined();
        const list = await store.listGatewayKeys();
        expect(list).toEqual([
          {
            id: created.id,
            bottle: "web",
            agent: "coder",
            label: "laptop",
            createdAt: T0,
            revokedAt: undefined,
          },
        ]);
        expect(JSON.stringify(list)).not.toContain(created.key.slice(3));
        expect(await store.revokeGatewayKey(created.id)).toBe(true);
        expect(await store.revokeGatewayKey(created.id)).toBe(false);
        expect(await store.verifyGatewayKey(created.key)).toBeUndefined();
        expect((await store.listGatewayKeys())[0]?.revokedAt).toBe(T0);
        const other = await store.createGatewayKey({ bottle: "web", agent: "coder" });
        expect(other.key).not.toBe(created.key);
      });
    });

    describe("report queries (rollups, budget status, burn rate, audit)", () => {
      const HOUR = 3_600_000;
      /** A deterministic spread of calls over three days, on several bottles, agents, models. */
      const seed = async () => {
        let x = 12345;
        const rnd = (n: number) => {
          x = (x * 1103515245 + 12345) % 2147483648;
          return x % n;
        };
        const start = T0 - 36 * HOUR;
        for (let i = 0; i < 120; i++) {
          now = start + rnd(72 * HOUR);
          const bottle = ["web", "api", "cli"][rnd(3)] as string;
          const parents = bottle === "cli" ? [] : ["team"];
          const provider = ["anthropic", "openai"][rnd(2)] as string;
          const r = await store.reserve({
            bottle,
            parents,
            agent: ["coder", "reviewer"][rnd(2)] as string,
            provider,
            estimateTokens: 50,
          });
          if (!r.ok) throw new Error("refused");
          const missing = rnd(10) === 0;
          await store.settle(r.id, {
            inputTokens: 1 + rnd(40),
            outputTokens: rnd(9),
            cacheReadTokens: rnd(2),
            ...(rnd(4) === 0 ? {} : { model: `${provider}-m${rnd(2)}` }),
            ...(rnd(3) === 0 ? {} : { costUsd: rnd(100) / 1000 }),
            ...(missing ? { usageMissing: true } : {}),
          });
        }
        now = T0;
      };

      it("usage equals a recount of the events for any range, filter and grouping", async () => {
        await seed();
        const all = await store.events();
        expect(all).toHaveLength(120);
        const instants = [
          undefined,
          T0 - 36 * HOUR,
          T0 - 36 * HOUR + 1,
          T0 - 24 * HOUR - 1,
          Date.parse("2026-01-31T00:00:00Z"),
          Date.parse("2026-01-30T13:30:00Z"),
          T0 - 7 * 60_000,
          T0,
          Date.parse("2026-02-01T00:00:00Z"),
          Date.parse("2026-02-01T23:59:59.999Z"),
          T0 + 36 * HOUR,
        ];
        const groupings = [[], ["bottle"], ["bottle", "provider"], ["model", "agent"]] as const;
        const filters = [
          {},
          { bottle: "team", includeChildren: true },
          { bottle: "web" },
          { provider: "openai", model: "openai-m1" },
        ];
        let checked = 0;
        for (const since of instants) {
          for (const until of instants) {
            for (const g of groupings) {
              for (const f of filters) {
                const q = {
                  ...f,
                  ...(since === undefined ? {} : { since }),
                  ...(until === undefined ? {} : { until }),
                };
                const picked = all.filter(
                  (e) =>
                    (since === undefined || e.at >= since) &&
                    (until === undefined || e.at < until) &&
                    ("bottle" in f
                      ? e.bottle === f.bottle ||
                        (f.includeChildren === true && e.parents.includes(f.bottle))
                      : true) &&
                    ("provider" in f ? e.provider === f.provider && e.model === f.model : true),
                );
                const report = await store.usage({ ...q, groupBy: [...g] });
                expect(report.totals.events).toBe(picked.length);
                expect(report.totals.tokens).toBe(picked.reduce((n, e) => n + e.tokens, 0));
                expect(report.totals.inputTokens).toBe(
                  picked.reduce((n, e) => n + e.inputTokens, 0),
                );
                expect(report.totals.usageMissingEvents).toBe(
                  picked.filter((e) => e.usageMissing).length,
                );
                expect(report.totals.unpricedEvents).toBe(
                  picked.filter((e) => e.costUsd === undefined).length,
                );
                expect(report.totals.costUsd).toBeCloseTo(
                  picked.reduce((n, e) => n + (e.costUsd ?? 0), 0),
                  9,
                );
                const key = (e: Record<string, unknown>) =>
                  g.map((c) => String(e[c] ?? "")).join("|");
                const expected = new Map<string, number>();
                if (g.length > 0)
                  for (const e of picked)
                    expected.set(
                      key(e as unknown as Record<string, unknown>),
                      (expected.get(key(e as unknown as Record<string, unknown>)) ?? 0) + e.tokens,
                    );
                expect(
                  new Map(
                    report.groups.map((x) => [
                      key(x as unknown as Record<string, unknown>),
                      x.tokens,
                    ]),
                  ),
                ).toEqual(expected);
                checked++;
              }
            }
          }
        }
        expect(checked).toBe(11 * 11 * 4 * 4);
        // A report after more usage sees it (the rollups catch up).
        await spend(7, { bottle: "web", parents: ["team"] });
        expect((await store.usage({ since: T0 })).totals.tokens).toBe(
          all.filter((e) => e.at >= T0).reduce((n, e) => n + e.tokens, 0) + 7,
        );
      });

      it("budgetStatus: every budget with its use in the window, shadowed ones marked", async () => {
        await budget({
          scope: "bottle",
          key: "web",
          tokens: 100,
          source: "settings",
          window: "daily",
        });
        await budget({
          scope: "bottle",
          key: "web",
          tokens: 200,
          usd: 5,
          source: "operator",
          window: "daily",
        });
        await budget({ scope: "global", tokens: 1_000, policy: "freeze" });
        now = T0 - 24 * HOUR;
        await spend(30, { bottle: "web", parents: ["team"] }); // yesterday: outside the daily window
        now = T0;
        await spend(40, { bottle: "web", parents: ["team"] });
        const held = await reserve(25);
        expect(held.ok).toBe(true);
        const status = await store.budgetStatus();
        expect(
          status.map((s) => [
            s.budget.scope,
            s.budget.source,
            s.effective,
            s.tokens?.used,
            s.tokens?.reserved,
            s.tokens?.remaining,
            s.policy,
          ]),
        ).toEqual([
          ["bottle", "operator", true, 40, 25, 135, "cutoff"],
          ["bottle", "settings", false, 40, 25, 35, "cutoff"],
          ["global", "settings", true, 70, 25, 905, "freeze"],
        ]);
        expect(status[0]?.usd).toEqual({ limit: 5, used: 0, reserved: 0, remaining: 5 });
        expect(status[0]?.windowStart).toBe(Date.parse("2026-01-31T00:00:00Z"));
        expect(status[2]?.windowStart).toBeUndefined();
        expect(await store.budgetStatus({ scope: "global" })).toHaveLength(1);
      });

      it("burnRate: usage per minute over the last minutes, per bottle when asked", async () => {
        now = T0 - 10 * 60_000; // outside a 5-minute window
        await spend(99, { bottle: "api" });
        now = T0 - 4 * 60_000 + 5;
        await spend(10, { bottle: "web" });
        now = T0 - 1;
        await spend(3, { bottle: "api" });
        now = T0 + 30_000;
        await spend(5, { bottle: "web" });
        const all = await store.burnRate({ minutes: 5 });
        expect(all.since).toBe(T0 - 4 * 60_000);
        expect(all.until).toBe(T0 + 60_000);
        expect(all.series).toEqual([
          { events: [1, 0, 0, 1, 1], tokens: [10, 0, 0, 3, 5], costUsd: [0, 0, 0, 0, 0] },
        ]);
        const per = await store.burnRate({ minutes: 5, byBottle: true });
        expect(per.series.map((x) => [x.bottle, x.tokens])).toEqual([
          ["api", [0, 0, 0, 3, 0]],
          ["web", [10, 0, 0, 0, 5]],
        ]);
        expect((await store.burnRate({ minutes: 5, bottle: "web" })).series[0]?.tokens).toEqual([
          10, 0, 0, 0, 5,
        ]);
        await expect(store.burnRate({ minutes: 0 })).rejects.toMatchObject({
          code: "E_INVALID_INPUT",
        });
      });

      it("actions: the latest N entries, oldest first", async () => {
        for (let i = 0; i < 5; i++) {
          now = T0 + i;
          await store.cutOff("web", { by: "ops", reason: `r${i}` });
        }
        expect((await store.actions({ limit: 2 })).map((a) => a.reason)).toEqual(["r3", "r4"]);
        expect(
          (await store.actions({ bottle: "web", since: T0 + 1, limit: 10 })).map((a) => a.reason),
        ).toEqual(["r1", "r2", "r3", "r4"]);
      });
    });
  });
}
