import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import {
  bottlekitHome,
  defaultStoreUrl,
  openStore,
  parseStoreUrl,
  redactStoreUrl,
} from "./open.ts";

const dir = mkdtempSync(join(tmpdir(), "budget-store-open-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("parseStoreUrl", () => {
  it("accepts sqlite:<path>, sqlite:///abs and sqlite::memory:", () => {
    expect(parseStoreUrl("sqlite::memory:")).toEqual({ backend: "sqlite", path: ":memory:" });
    expect(parseStoreUrl("sqlite:/var/x.db")).toEqual({ backend: "sqlite", path: "/var/x.db" });
    expect(parseStoreUrl("sqlite:///var/x.db")).toEqual({ backend: "sqlite", path: "/var/x.db" });
    expect(parseStoreUrl("sqlite:rel/x.db")).toEqual({
      backend: "sqlite",
      path: resolve("rel/x.db"),
    });
  });

  it("rejects other schemes with E_STORE_URL and a hint", () => {
    for (const bad of ["", "sqlite:", "mysql://h/db", "/plain/path.db"]) {
      expect(() => parseStoreUrl(bad), bad).toThrow(
        expect.objectContaining({ code: "E_STORE_URL" }),
      );
    }
    expect(parseStoreUrl("postgres://u:p@h:5432/db")).toEqual({
      backend: "postgres",
      url: "postgres://u:p@h:5432/db",
    });
    expect(parseStoreUrl("postgresql://h/db").backend).toBe("postgres");
    expect(() => parseStoreUrl("postgres:///db")).toThrow(
      expect.objectContaining({
        code: "E_STORE_URL",
        hint: expect.stringContaining("postgres://"),
      }),
    );
    expect(redactStoreUrl("postgres://me:s3cret@h/db")).toBe("postgres://me:***@h/db");
  });
});

describe("defaults", () => {
  it("home is $BOTTLEKIT_HOME, else ~/.bottlekit; the database is bottlekit.db in it", () => {
    expect(bottlekitHome({ BOTTLEKIT_HOME: "/h" })).toBe("/h");
    expect(bottlekitHome({})).toMatch(/\.bottlekit$/);
    expect(defaultStoreUrl("/h")).toBe("sqlite:/h/bottlekit.db");
  });

  it("openStore() without a URL creates <home>/bottlekit.db", async () => {
    const home = join(dir, "home");
    const store = await openStore(undefined, { home });
    await store.close();
    expect(existsSync(join(home, "bottlekit.db"))).toBe(true);
  });
});
