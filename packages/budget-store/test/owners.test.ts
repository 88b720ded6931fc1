import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { openStore, type Store } from "../src/index.ts";
import { lines, spawnTs } from "./workers/spawn.ts";

const dir = mkdtempSync(join(tmpdir(), "budget-store-owners-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const url = () => `sqlite:${join(dir, `o${n++}.db`)}`;

const who = { bottle: "web", agent: "coder", provider: "anthropic" };

/** Start a holder process that takes `count` reservations, then SIGKILL it. */
async function killedHolder(
  storeUrl: string,
  count: number,
  estimate: number,
): Promise<{ owner: string; ids: string[] }> {
  const child = spawnTs("./holder.ts", [storeUrl, String(count), String(estimate)], "ignore");
  let stderr = "";
  child.stderr?.setEncoding("utf8");
  child.stderr?.on("data", (d: string) => {
    stderr += d;
  });
  const exited = new Promise<NodeJS.Signals | null>((resolve) =>
    child.on("close", (_c, sig) => resolve(sig)),
  );
  const held = await new Promise<{ owner: string; ids: string[] }>((resolve, reject) => {
    lines(child, (line) => resolve(JSON.parse(line) as { owner: string; ids: string[] }));
    child.on("close", (code) => reject(new Error(`holder exited (${code}): ${stderr}`)));
  });
  child.kill("SIGKILL");
  expect(await exited).toBe("SIGKILL");
  return held;
}

describe("reservation owners and leases", () => {
  it("each store is an owner; its reservations carry its id", async () => {
    const store = await openStore("sqlite::memory:", { owner: "gw-a/1/x" });
    try {
      expect(store.owner).toBe("gw-a/1/x");
      const r = await store.reserve({ ...who, estimateTokens: 10 });
      expect(r.ok).toBe(true);
      const owners = await store.listOwners();
      expect(owners).toEqual([
        expect.objectContaining({ id: "gw-a/1/x", pid: process.pid, reservations: 1 }),
      ]);
    } finally {
      await store.close();
    }
  });

  it("default owner ids are host/pid/random and differ per store", async () => {
    const a = await openStore("sqlite::memory:");
    const b = await openStore("sqlite::memory:");
    try {
      expect(a.owner).toMatch(new RegExp(`^[^/]+/${process.pid}/[0-9a-f]{12}$`));
      expect(a.owner).not.toBe(b.owner);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it("an owner declared dead: its reservations become usage-missing events at once, charged, audited, and the budget is free", async () => {
    let now = Date.parse("2026-03-01T10:00:00Z");
    const clock = () => now;
    const file = url();
    const a = await openStore(file, { clock, owner: "host-a/10/aaa" });
    const b = await openStore(file, { clock, owner: "host-b/20/bbb" });
    try {
      await b.defineBudget({ scope: "bottle", key: "web", provider: "anthropic", tokens: 1_000 });
      const r1 = await a.reserve({ ...who, estimateTokens: 300, requestId: "req-1" });
      const r2 = await a.reserve({ ...who, estimateTokens: 200 });
      const mine = await b.reserve({ ...who, estimateTokens: 100 });
      if (!r1.ok || !r2.ok || !mine.ok) throw new Error("refused");
      expect(await b.remaining(who)).toMatchObject({ used: 0, reserved: 600, remaining: 400 });

      now += 1_000;
      const out = await b.reclaim({ owners: ["host-a/10/aaa"] });
      expect(out.owners).toEqual(["host-a/10/aaa"]);
      expect(out.reservations.map((r) => [r.id, r.cause, r.chargedTokens]).sort()).toEqual(
        [
          [r1.id, "declared-dead", 300],
          [r2.id, "declared-dead", 200],
        ].sort(),
      );
      expect(out.reservations.find((r) => r.id === r1.id)?.requestId).toBe("req-1");
      // Charged as used, no longer held: the reserved part is gone, b's own hold remains.
      expect(await b.remaining(who)).toMatchObject({ used: 500, reserved: 100, remaining: 400 });
      const events = await b.events({ bottle: "web" });
      expect(events.map((e) => [e.tokens, e.usageMissing, e.at]).sort()).toEqual([
        [200, true, now],
        [300, true, now],
      ]);
      expect(events.find((e) => e.tokens === 300)?.requestId).toBe("req-1");
      expect((await b.usage()).totals).toMatchObject({ tokens: 500, usageMissingEvents: 2 });
      const audit = await b.actions({ bottle: "web" });
      expect(audit.map((x) => [x.action, x.by])).toEqual([
        ["reclaim", "reclaim"],
        ["reclaim", "reclaim"],
      ]);
      expect(audit[0]?.reason).toContain("host-a/10/aaa");
      // The dead owner cannot settle what was reclaimed; the live one still can.
      await expect(a.settle(r1.id, { inputTokens: 1 })).rejects.toMatchObject({
        code: "E_UNKNOWN_RESERVATION",
      });
      expect((await b.settle(mine.id, { inputTokens: 50 })).chargedTokens).toBe(50);
      // Its registration is gone; a second reclaim finds nothing.
      expect((await b.listOwners()).map((o) => o.id)).toEqual(["host-b/20/bbb"]);
      expect(await b.reclaim({ owners: ["host-a/10/aaa"] })).toEqual({
        owners: ["host-a/10/aaa"],
        reservations: [],
      });
    } finally {
      await a.close();
      await b.close();
    }
  });

  it("a store never reclaims its own reservations, even when asked to", async () => {
    const s = await openStore(url(), { owner: "self/1/s" });
    try {
      const r = await s.reserve({ ...who, estimateTokens: 5 });
      expect(r.ok).toBe(true);
      expect(await s.reclaim({ owners: ["self/1/s"] })).toEqual({ owners: [], reservations: [] });
      expect((await s.listOwners())[0]?.reservations).toBe(1);
    } finally {
      await s.close();
    }
  });

  it("a lease that is not renewed expires; any live store then reclaims; renewal keeps it alive", async () => {
    let now = Date.parse("2026-03-01T10:00:00Z");
    const clock = () => now;
    const file = url();
    const a = await openStore(file, { clock, owner: "a/1/a", leaseMs: 10_000 });
    const b = await openStore(file, { clock, owner: "b/2/b", leaseMs: 10_000 });
    let stores: Store[] = [a, b];
    try {
      const held = await a.reserve({ ...who, estimateTokens: 40 });
      expect(held.ok).toBe(true);
      now += 9_000;
      expect(await b.reclaim()).toEqual({ owners: [], reservations: [] });
      expect(await a.renewLease()).toBe(now + 10_000);
      now += 9_000; // 18 s after open, 9 s after the renewal
      expect((await b.reclaim()).reservations).toEqual([]);
      now += 1_000; // the renewed lease ends now
      await b.renewLease();
      const out = await b.reclaim();
      expect(out.owners).toEqual(["a/1/a"]);
      expect(out.reservations).toEqual([
        expect.objectContaining({ owner: "a/1/a", cause: "lease-expired", chargedTokens: 40 }),
      ]);
      // A store opened later reclaims at open: nothing is left for it.
      const c = await openStore(file, { clock, owner: "c/3/c" });
      stores = [...stores, c];
      expect((await c.usage()).totals).toMatchObject({ events: 1, tokens: 40 });
    } finally {
      for (const s of stores) await s.close();
    }
  });

  it("reclaiming a reservation that spends a budget cuts the bottle off, like a settle", async () => {
    const file = url();
    const a = await openStore(file, { owner: "a/1/a" });
    const b = await openStore(file, { owner: "b/2/b" });
    try {
      await b.defineBudget({ scope: "bottle", key: "web", provider: "anthropic", tokens: 100 });
      const r = await a.reserve({ ...who, estimateTokens: 100 });
      expect(r.ok).toBe(true);
      const out = await b.reclaim({ owners: ["a/1/a"] });
      expect(out.reservations[0]?.crossed).toMatchObject({
        scope: "bottle",
        key: "web",
        used: 100,
      });
      expect(await b.isCutOff("web")).toBe(true);
      expect((await b.actions()).map((x) => x.action)).toEqual(["reclaim", "cutoff"]);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it("a closed store's leftover reservations are reclaimable at once", async () => {
    const file = url();
    const a = await openStore(file, { owner: "a/1/a" });
    const b = await openStore(file, { owner: "b/2/b" });
    try {
      expect((await a.reserve({ ...who, estimateTokens: 7 })).ok).toBe(true);
      await a.close();
      const out = await b.reclaim();
      expect(out.reservations.map((r) => [r.owner, r.cause, r.chargedTokens])).toEqual([
        ["a/1/a", "lease-expired", 7],
      ]);
    } finally {
      await b.close();
    }
  });

  it("SIGKILL of a process holding reservations: the next store opened on this host reclaims them while opening", async () => {
    const file = url();
    const setup = await openStore(file);
    await setup.defineBudget({ scope: "bottle", key: "web", provider: "anthropic", tokens: 1_000 });
    await setup.close();
    const held = await killedHolder(file, 3, 250);
    expect(held.ids).toHaveLength(3);
    // A fresh store (the gateway's next start) opens: the dead process's holds are closed.
    const next = await openStore(file);
    try {
      expect(await next.remaining(who)).toMatchObject({ used: 750, reserved: 0, remaining: 250 });
      const events = await next.events({ bottle: "web" });
      expect(events).toHaveLength(3);
      expect(events.every((e) => e.usageMissing && e.tokens === 250)).toBe(true);
      const audit = await next.actions({ bottle: "web" });
      expect(audit.filter((x) => x.action === "reclaim")).toHaveLength(3);
      expect(audit[0]?.reason).toContain("process-gone");
      // The dead owner's registration is gone; `next` registers with its first reservation.
      expect((await next.listOwners()).map((o) => o.id)).toEqual([]);
    } finally {
      await next.close();
    }
  }, 300_000); // hang guard

  it("reclaim without deadLocalProcesses leaves a dead local process to its lease", async () => {
    const file = url();
    const held = await killedHolder(file, 1, 10);
    const next = await openStore(file, { reclaimOnOpen: false });
    try {
      expect(await next.reclaim({ deadLocalProcesses: false })).toEqual({
        owners: [],
        reservations: [],
      });
      const out = await next.reclaim();
      expect(out.reservations.map((r) => [r.id, r.cause])).toEqual([[held.ids[0], "process-gone"]]);
    } finally {
      await next.close();
    }
  }, 300_000); // hang guard

  it("rejects bad input without changing anything", async () => {
    const s = await openStore("sqlite::memory:");
    try {
      await expect(s.reclaim({ owners: [""] })).rejects.toMatchObject({ code: "E_INVALID_INPUT" });
      await expect(openStore("sqlite::memory:", { leaseMs: -1 })).rejects.toMatchObject({
        code: "E_INVALID_INPUT",
      });
    } finally {
      await s.close();
    }
  });
});
