/**
 * The contract again, in two non-UTC time zones, so a window computed in local time instead of
 * UTC fails here even on a UTC machine. Node applies a change of process.env.TZ at once.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openStore, type Store } from "../src/index.ts";
import { describeStoreContract } from "./contract.ts";
import { startTestPostgres, type TestPostgres } from "./pg.ts";

const saved = process.env["TZ"];
afterAll(() => {
  if (saved === undefined) delete process.env["TZ"];
  else process.env["TZ"] = saved;
});

let pg: TestPostgres;
const open: Store[] = [];
beforeAll(async () => {
  pg = await startTestPostgres();
}, 120_000);
afterAll(async () => {
  for (const s of open) await s.close().catch(() => {});
  await pg?.stop();
}, 300_000); // hang guard

for (const zone of ["America/Los_Angeles", "Asia/Kolkata"]) {
  describe(`TZ=${zone}`, () => {
    beforeAll(() => {
      process.env["TZ"] = zone;
    });
    it("the zone is in effect (local midnight is not UTC midnight)", () => {
      expect(new Date(Date.UTC(2026, 0, 31)).getHours()).not.toBe(0);
    });
    describeStoreContract(`sqlite, ${zone}`, (o) => openStore("sqlite::memory:", o));
    describeStoreContract(`postgres, ${zone}`, async (o) => {
      const store = await openStore(await pg.newDatabase(), o);
      open.push(store);
      return store;
    });
  });
}
