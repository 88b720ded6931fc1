import { mkdtempSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { openConnection, sqliteAddonPath } from "./connection.ts";
import { LATEST_SCHEMA_VERSION, migrate, migrationWrites } from "./migrations.ts";
import { openStore } from "./open.ts";

// The work of opening a store that is already current (every `bottle run` after the home's
// first), counted rather than timed: it sits on the embedded controller's start-up path.

const dir = mkdtempSync(join(tmpdir(), "budget-store-open-work-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface NativeDatabase {
  prototype: { prepare: (this: unknown, sql: string, ...rest: unknown[]) => unknown };
}

/** Every SQL text better-sqlite3 prepares on any connection while `fn` runs. */
async function prepared(fn: () => Promise<void>): Promise<string[]> {
  const addon = sqliteAddonPath();
  if (addon === undefined) throw new Error("no connection opened yet");
  const native = (createRequire(import.meta.url)(addon) as { Database: NativeDatabase }).Database;
  const original = native.prototype.prepare;
  const seen: string[] = [];
  native.prototype.prepare = function (this: unknown, sql: string, ...rest: unknown[]) {
    seen.push(sql);
    return original.call(this, sql, ...rest);
  };
  try {
    await fn();
  } finally {
    native.prototype.prepare = original;
  }
  return seen;
}

describe("opening a current store", () => {
  it("reads its schema version once and takes no write lock for migrations", async () => {
    const db = join(dir, "current.db");
    const before = migrationWrites();
    await (await openStore(`sqlite:${db}`)).close();
    expect(migrationWrites()).toBe(before + 1); // created
    for (let i = 0; i < 3; i++) await (await openStore(`sqlite:${db}`)).close();
    expect(migrationWrites()).toBe(before + 1);
  });

  it("still migrates an older store under the write lock", async () => {
    const db = join(dir, "older.db");
    const raw = openConnection(db);
    migrate(raw, 0, 3);
    raw.close();
    const before = migrationWrites();
    await (await openStore(`sqlite:${db}`)).close();
    expect(migrationWrites()).toBe(before + 1);
    const check = openConnection(db);
    try {
      expect(check.prepare("SELECT max(version) AS v FROM schema_version").get()).toEqual({
        v: LATEST_SCHEMA_VERSION,
      });
    } finally {
      check.close();
    }
  });

  it("prepares only the statements the controller's first calls run, each once", async () => {
    const db = join(dir, "statements.db");
    await (await openStore(`sqlite:${db}`)).close();
    const seen = await prepared(async () => {
      const store = await openStore(`sqlite:${db}`, { groupCommitMs: 0 });
      await store.replaceBudgets("manifest", []);
      expect(await store.cutoffState("b")).toBeUndefined();
      await store.close();
    });
    // Transactions prepare what they run (better-sqlite3's db.transaction() prepared nine
    // statements, BEGIN EXCLUSIVE and the savepoint's three among them, at its first use).
    expect(seen.filter((sql) => /^(BEGIN|COMMIT|ROLLBACK|SAVEPOINT|RELEASE)\b/.test(sql))).toEqual([
      "BEGIN IMMEDIATE",
      "COMMIT",
      "BEGIN DEFERRED",
    ]);
    expect(seen).toContain("SELECT max(version) AS v FROM schema_version");
    expect(new Set(seen).size).toBe(seen.length);
  });
});
