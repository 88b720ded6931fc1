import { createRequire } from "node:module";
import { describe, expect, it } from "vitest";
import { openConnection, sqliteAddonPath, sqliteIsLean } from "./connection.ts";

// Its own file: better-sqlite3 loads at a process's (here: this file's) first connection.

interface ModuleInternals {
  _resolveFilename: (this: unknown, request: string, ...rest: unknown[]) => string;
}

describe("the first connection", () => {
  it("finds better-sqlite3 without Node's resolver and loads its addon and one file of its JS", () => {
    const Module = createRequire(import.meta.url)("node:module") as ModuleInternals;
    const original = Module._resolveFilename;
    const requests: string[] = [];
    Module._resolveFilename = function (this: unknown, request: string, ...rest: unknown[]) {
      requests.push(request);
      return original.call(this, request, ...rest);
    };
    try {
      openConnection(":memory:").close();
    } finally {
      Module._resolveFilename = original;
    }
    expect(sqliteIsLean()).toBe(true);
    // Absolute paths only: no bare specifier walked through node_modules.
    expect(requests.filter((r) => !r.startsWith("/") && !/^[A-Za-z]:[\\/]/.test(r))).toEqual([]);
    expect(requests).toEqual([
      sqliteAddonPath(),
      expect.stringMatching(/[/\\]better-sqlite3[/\\]lib[/\\]sqlite-error\.js$/),
    ]);
  });
});
