import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ApprovalStore, pinnedStores } from "./store.ts";

const home = mkdtempSync(join(tmpdir(), "bk-approvals-store-"));
afterAll(() => rmSync(home, { recursive: true, force: true }));

describe("ApprovalStore pinning (better-sqlite3 12 on Node 24 aborts when one of its objects is garbage-collected)", () => {
  it("keeps every store it opened, closed ones included, and closes twice harmlessly", () => {
    const before = pinnedStores();
    for (let i = 0; i < 3; i++) {
      const store = ApprovalStore.open(home);
      expect(store.list({ status: "pending" })).toEqual([]);
      store.close();
      store.close();
    }
    expect(pinnedStores()).toBe(before + 3);
  });

  it("a queue file that is not a database is refused with E_STORE (the half-opened database is closed)", () => {
    const dir = join(home, "bad");
    mkdirSync(dir, { recursive: true });
    const path = join(dir, "approvals.db");
    writeFileSync(path, "not a sqlite database, long enough to have a header ".repeat(20));
    expect(() => new ApprovalStore(path)).toThrow(expect.objectContaining({ code: "E_STORE" }));
  });
});
