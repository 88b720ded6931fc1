import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll } from "vitest";
import { openStore } from "../src/index.ts";
import { describeStoreContract } from "./contract.ts";

describeStoreContract("sqlite::memory:", (o) => openStore("sqlite::memory:", o));

const dir = mkdtempSync(join(tmpdir(), "budget-store-contract-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
describeStoreContract("sqlite file (WAL)", (o) =>
  openStore(`sqlite:${join(dir, `c${n++}.db`)}`, o),
);
