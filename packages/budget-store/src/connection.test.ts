import { mkdtempSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { openConnection, pinnedConnections, sqliteAddonPath } from "./connection.ts";

const dir = mkdtempSync(join(tmpdir(), "budget-store-conn-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("pinned connections", () => {
  it("caches statements by SQL text and pins every connection, closed or not", () => {
    const before = pinnedConnections();
    const a = openConnection(join(dir, "a.db"));
    const b = openConnection(":memory:");
    expect(pinnedConnections()).toBe(before + 2);
    a.exec("CREATE TABLE t (x INTEGER)");
    const insert = a.prepare("INSERT INTO t (x) VALUES (?)");
    expect(a.prepare("INSERT INTO t (x) VALUES (?)")).toBe(insert);
    for (let i = 0; i < 50; i++) a.prepare("INSERT INTO t (x) VALUES (?)").run(i);
    expect(a.prepare("SELECT count(*) AS n FROM t").get()).toEqual({ n: 50 });
    expect(a.statementCount).toBe(2);
    expect(b.statementCount).toBe(0);
    a.close();
    a.close(); // idempotent
    b.close();
    expect(a.db.open).toBe(false);
    expect(pinnedConnections()).toBe(before + 2);
  });

  it("hands better-sqlite3 its built addon, so the `bindings` package's search never loads", () => {
    const c = openConnection(":memory:");
    try {
      expect(c.prepare("SELECT 1 AS one").get()).toEqual({ one: 1 });
      expect(sqliteAddonPath()).toMatch(/[/\\]build[/\\]Release[/\\]better_sqlite3\.node$/);
      const loaded = Object.keys(createRequire(import.meta.url).cache);
      expect(loaded.filter((f) => /[/\\]bindings[/\\]bindings\.js$/.test(f))).toEqual([]);
    } finally {
      c.close();
    }
  });

  it("does not cache a statement that failed to prepare", () => {
    const c = openConnection(":memory:");
    try {
      expect(() => c.prepare("SELEC nonsense")).toThrow(/syntax error/);
      expect(c.statementCount).toBe(0);
    } finally {
      c.close();
    }
  });
});
