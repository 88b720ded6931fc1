import { afterAll, beforeAll } from "vitest";
import { openStore, type Store } from "../src/index.ts";
import { describeStoreContract } from "./contract.ts";
import { describeWhere, startTestPostgres, type TestPostgres } from "./pg.ts";

let pg: TestPostgres;
const open: Store[] = [];
beforeAll(async () => {
  pg = await startTestPostgres();
}, 120_000);
afterAll(async () => {
  for (const s of open) await s.close().catch(() => {});
  await pg?.stop();
}, 300_000); // hang guard

describeStoreContract(`postgres (${describeWhere()})`, async (o) => {
  const store = await openStore(await pg.newDatabase(), o);
  open.push(store);
  return store;
});
