import { mkdtempSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { openConnection, pinnedConnections, sqliteAddonPath, sqliteIsLean } from "./connection.ts";

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

describe("Connection.transaction", () => {
  it("commits, rolls back on a throw, and nests as a savepoint that fails alone", () => {
    const c = openConnection(":memory:");
    try {
      c.exec("CREATE TABLE t (x INTEGER)");
      const insert = (x: number) => c.prepare("INSERT INTO t (x) VALUES (?)").run(x);
      const rows = () => c.prepare("SELECT x FROM t ORDER BY x").all();
      c.transaction("immediate", () => insert(1));
      expect(() =>
        c.transaction("immediate", () => {
          insert(2);
          throw new Error("boom");
        }),
      ).toThrow("boom");
      expect(c.db.inTransaction).toBe(false);
      expect(rows()).toEqual([{ x: 1 }]);
      c.transaction("deferred", () => {
        insert(3);
        expect(() =>
          c.transaction("deferred", () => {
            insert(4);
            throw new Error("inner");
          }),
        ).toThrow("inner");
        c.transaction("deferred", () => insert(5));
        expect(c.db.inTransaction).toBe(true);
      });
      expect(rows()).toEqual([{ x: 1 }, { x: 3 }, { x: 5 }]);
      expect(() => c.transaction("deferred", () => Promise.resolve(insert(6)))).toThrow(
        /cannot return a promise/,
      );
      expect(rows()).toEqual([{ x: 1 }, { x: 3 }, { x: 5 }]);
      // Only what ran was prepared.
      expect(c.statementCount).toBe(2 + 7);
    } finally {
      c.close();
    }
  });
});

describe("loading SQLite", () => {
  it("loads one file of better-sqlite3's JS, and its own copy, loaded later, shares the addon and the error class", () => {
    const c = openConnection(":memory:");
    try {
      expect(sqliteIsLean()).toBe(true);
      const req = createRequire(import.meta.url);
      const libFiles = () =>
        Object.keys(req.cache)
          .filter((f) => /[/\\]better-sqlite3[/\\]lib[/\\]/.test(f))
          .map((f) => f.replace(/^.*[/\\]lib[/\\]/, ""));
      // Another library of the process (the approvals queue) may load better-sqlite3 later: only
      // this test does here, after the check above.
      expect(libFiles()).toEqual(["sqlite-error.js"]);
      let ours: unknown;
      try {
        c.prepare("SELEC nonsense");
      } catch (error) {
        ours = error;
      }
      const Better = req("better-sqlite3") as typeof import("better-sqlite3");
      expect(ours).toBeInstanceOf(Better.SqliteError);
      expect(ours).toMatchObject({ code: "SQLITE_ERROR" });
      const theirs = new Better(":memory:");
      try {
        expect(theirs.prepare("SELECT 2 AS two").get()).toEqual({ two: 2 });
        expect(() => theirs.prepare("SELEC nonsense")).toThrow(Better.SqliteError);
      } finally {
        theirs.close();
      }
      expect(c.prepare("SELECT 1 AS one").get()).toEqual({ one: 1 });
    } finally {
      c.close();
    }
  });

  it("opens read-only and refuses a missing directory with better-sqlite3's messages", () => {
    openConnection(":memory:").close();
    expect(sqliteIsLean()).toBe(true); // the lean class is what this checks
    const file = join(dir, "ro.db");
    const w = openConnection(file);
    w.exec("CREATE TABLE t (x INTEGER)");
    w.close();
    const r = openConnection(file, { readonly: true });
    try {
      expect(r.prepare("SELECT count(*) AS n FROM t").get()).toEqual({ n: 0 });
      expect(() => r.exec("INSERT INTO t (x) VALUES (1)")).toThrow(/readonly/);
    } finally {
      r.close();
    }
    expect(() => openConnection(join(dir, "no", "such", "dir", "x.db"))).toThrow(
      "Cannot open database because the directory does not exist",
    );
    expect(() => openConnection(":memory:", { readonly: true })).toThrow(/cannot be readonly/);
  });
});
