import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { openStore } from "../src/index.ts";
import { runCycleWorkers } from "./workers/spawn.ts";

const dir = mkdtempSync(join(tmpdir(), "budget-store-conc-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("four processes on one database file", () => {
  it("4 × 2,000 reserve/settle cycles: exact totals, no busy errors, budget held", async () => {
    const db = join(dir, "conc.db");
    const LIMIT = 25_000; // about 60% of what the "limited" half of the cycles would use
    const setup = await openStore(`sqlite:${db}`);
    await setup.defineBudget({ scope: "bottle", key: "fleet", provider: "limited", tokens: LIMIT });
    await setup.close();

    const results = await runCycleWorkers(db, 4, 2_000, 10);

    // No error of any kind (SQLITE_BUSY included) reached a caller.
    expect(results.flatMap((r) => r.errors)).toEqual([]);

    const store = await openStore(`sqlite:${db}`);
    try {
      for (const provider of ["limited", "open"]) {
        const expected = results.reduce((n, r) => n + (r.settled[provider] ?? 0), 0);
        const { totals } = await store.usage({ provider });
        expect(totals.tokens, provider).toBe(expected);
      }
      const cycles = 4 * 2_000;
      const refused = results.reduce((n, r) => n + r.refused, 0);
      expect((await store.usage()).totals.events).toBe(cycles - refused);

      // The governing budget was reached, and exceeded only by calls that used more than they
      // reserved: each worker has at most one call in flight, so at most one such call per worker
      // can be granted before the others settle (bound: workers × the largest settled-minus-
      // reserved difference). A bound of one call's difference assumed the last calls never
      // overlap; they can, and on a loaded CI machine did (25,006 against 25,005).
      const maxOver = results.length * Math.max(...results.map((r) => r.maxOver));
      const used = (
        await store.usage({ bottle: "fleet", includeChildren: true, provider: "limited" })
      ).totals.tokens;
      expect(refused).toBeGreaterThan(0);
      expect(used).toBeGreaterThanOrEqual(LIMIT - 50);
      expect(used).toBeLessThanOrEqual(LIMIT + maxOver);
      const rem = await store.remaining({
        bottle: "bottle-0",
        parents: ["fleet"],
        agent: "x",
        provider: "limited",
      });
      expect(rem).toMatchObject({ scope: "parent", key: "fleet", used, reserved: 0 });
    } finally {
      await store.close();
    }
  }, 300_000); // hang guard

  it("four processes creating and migrating a fresh database at once all succeed", async () => {
    const db = join(dir, "fresh.db");
    const results = await runCycleWorkers(db, 4, 50, 10);
    expect(results.flatMap((r) => r.errors)).toEqual([]);
    const store = await openStore(`sqlite:${db}`);
    try {
      expect((await store.usage()).totals.events).toBe(200);
    } finally {
      await store.close();
    }
  }, 300_000); // hang guard
});
