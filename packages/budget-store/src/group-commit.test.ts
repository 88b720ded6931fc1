import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { openConnection } from "./connection.ts";
import { openStore } from "./open.ts";

const dir = mkdtempSync(join(tmpdir(), "budget-store-group-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const subject = { bottle: "b", parents: [], agent: "a", provider: "p" };

describe("group commit of reserve, settle and release", () => {
  it("keeps limits exact when many reserves arrive in one batch", async () => {
    const store = await openStore("sqlite::memory:");
    await store.defineBudget({ scope: "bottle", key: "b", provider: "p", tokens: 1000 });
    const results = await Promise.all(
      Array.from({ length: 25 }, () => store.reserve({ ...subject, estimateTokens: 100 })),
    );
    // Exactly ten fit (used + reserved + estimate <= limit), in call order.
    expect(results.map((r) => r.ok)).toEqual(Array.from({ length: 25 }, (_, i) => i < 10));
    expect(results[10]).toMatchObject({ ok: false, reason: "insufficient", remaining: 0 });
    await store.close();
  });

  it("rolls back only the call that fails; the rest of the batch commits", async () => {
    const store = await openStore("sqlite::memory:");
    const held = await Promise.all(
      [1, 2, 3].map(() => store.reserve({ ...subject, estimateTokens: 10 })),
    );
    const ids = held.map((r) => (r.ok ? r.id : ""));
    const outcomes = await Promise.allSettled([
      store.settle(ids[0] as string, { inputTokens: 5 }),
      store.settle("r_nope", { inputTokens: 7 }),
      store.settle(ids[1] as string, { inputTokens: 6 }),
      store.settle(ids[1] as string, { inputTokens: 6 }), // twice: the second is unknown by then
      store.release(ids[2] as string),
    ]);
    expect(outcomes.map((o) => o.status)).toEqual([
      "fulfilled",
      "rejected",
      "fulfilled",
      "rejected",
      "fulfilled",
    ]);
    expect((outcomes[1] as PromiseRejectedResult).reason).toMatchObject({
      code: "E_UNKNOWN_RESERVATION",
    });
    const report = await store.usage({});
    expect(report.totals).toMatchObject({ events: 2, tokens: 11 });
    await store.close();
  });

  it("applies queued calls before any later call, in the order they were made", async () => {
    const store = await openStore("sqlite::memory:");
    await store.defineBudget({ scope: "bottle", key: "b", provider: "p", tokens: 100 });
    const first = store.reserve({ ...subject, estimateTokens: 10 });
    const cut = store.cutOff("b", { by: "op", reason: "test" });
    const second = store.reserve({ ...subject, estimateTokens: 10 });
    expect((await first).ok).toBe(true);
    await cut;
    expect(await second).toMatchObject({ ok: false, reason: "cut-off" });
    await store.close();
  });

  it("commits a batch once: far fewer WAL frames than the same settles one by one", async () => {
    const db = join(dir, "frames.db");
    const store = await openStore(`sqlite:${db}`);
    const raw = openConnection(db);
    const frames = (): number => {
      const r = raw.prepare("PRAGMA wal_checkpoint(PASSIVE)").get() as { log: number };
      return r.log;
    };
    const settleAll = async (batched: boolean): Promise<number> => {
      const held = await Promise.all(
        Array.from({ length: 40 }, () => store.reserve({ ...subject, estimateTokens: 10 })),
      );
      raw.exec("PRAGMA wal_checkpoint(TRUNCATE)");
      const ids = held.map((r) => (r.ok ? r.id : ""));
      if (batched) await Promise.all(ids.map((id) => store.settle(id, { inputTokens: 3 })));
      else for (const id of ids) await store.settle(id, { inputTokens: 3 });
      return frames();
    };
    try {
      const oneByOne = await settleAll(false);
      const batched = await settleAll(true);
      expect(batched).toBeGreaterThan(0);
      expect(batched * 4).toBeLessThan(oneByOne);
      expect((await store.usage({})).totals).toMatchObject({ events: 80, tokens: 240 });
    } finally {
      raw.close();
      await store.close();
    }
  });

  it("an idle store commits a reserve at once; with reservations in flight it waits for the batch", async () => {
    const db = join(dir, "idle.db");
    const store = await openStore(`sqlite:${db}`);
    const raw = openConnection(db);
    const count = (): number =>
      (raw.prepare("SELECT count(*) AS n FROM reservations").get() as { n: number }).n;
    try {
      // nothing queued, nothing in flight: committed before reserve() returns its promise
      const first = store.reserve({ ...subject, estimateTokens: 10 });
      expect(count()).toBe(1);
      const r1 = await first;
      if (!r1.ok) throw new Error(r1.reason);
      // one reservation in flight: the next reserve joins the turn's batch
      const second = store.reserve({ ...subject, estimateTokens: 10 });
      expect(count()).toBe(1);
      const r2 = await second;
      expect(count()).toBe(2);
      if (!r2.ok) throw new Error(r2.reason);
      await store.settle(r1.id, { inputTokens: 1 });
      await store.release(r2.id);
      // both gone: idle again
      const third = store.reserve({ ...subject, estimateTokens: 10 });
      expect(count()).toBe(1);
      expect((await third).ok).toBe(true);
    } finally {
      raw.close();
      await store.close();
    }
  });

  it("with a window, a settle waits for company and a reserve commits it at once", async () => {
    const store = await openStore("sqlite::memory:", { groupCommitMs: 60_000 });
    const r = await store.reserve({ ...subject, estimateTokens: 10 });
    if (!r.ok) throw new Error(r.reason);
    let settled = false;
    const settle = store.settle(r.id, { inputTokens: 4 }).then((out) => {
      settled = true;
      return out;
    });
    await new Promise((resolve) => setImmediate(resolve));
    await new Promise((resolve) => setTimeout(resolve, 5));
    expect(settled).toBe(false);
    const next = await store.reserve({ ...subject, estimateTokens: 10 });
    expect(next.ok).toBe(true);
    expect(settled).toBe(true);
    expect(await settle).toMatchObject({ chargedTokens: 4 });
    await store.close();
  });

  it("sets the connection's WAL auto-checkpoint from walAutocheckpointPages", async () => {
    const db = join(dir, "autockpt.db");
    const store = await openStore(`sqlite:${db}`, { walAutocheckpointPages: 5 });
    const raw = openConnection(db);
    try {
      const held = await Promise.all(
        Array.from({ length: 30 }, () => store.reserve({ ...subject, estimateTokens: 1 })),
      );
      for (const r of held) if (r.ok) await store.settle(r.id, { inputTokens: 1 });
      // Checkpoints ran along the way, so the WAL kept restarting from its beginning: it never
      // grew to the ~30 commits x several pages that one-by-one settles write without them.
      expect(statSync(`${db}-wal`).size).toBeLessThan(30 * 4096);
    } finally {
      raw.close();
      await store.close();
    }
  });

  it("runs what is queued when the store closes", async () => {
    const db = join(dir, "close.db");
    const store = await openStore(`sqlite:${db}`);
    const r = await store.reserve({ ...subject, estimateTokens: 10 });
    if (!r.ok) throw new Error(r.reason);
    const settled = store.settle(r.id, { inputTokens: 4 });
    await store.close();
    await expect(settled).resolves.toMatchObject({ chargedTokens: 4 });
    const again = await openStore(`sqlite:${db}`);
    expect((await again.usage({})).totals.tokens).toBe(4);
    await again.close();
  });
});
