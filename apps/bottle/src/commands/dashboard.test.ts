import { existsSync } from "node:fs";
import { join } from "node:path";
import { createTempHome, type TempHome } from "@bottlekit/test-utils";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { bottle } from "../../test/helpers.ts";

let home: TempHome;
beforeEach(async () => {
  home = await createTempHome("bk-dash-");
});
afterEach(() => home.cleanup());

describe("bottle dashboard without a terminal", () => {
  it("refuses with exit 2, points to bottle usage, and opens no store", async () => {
    const r = await bottle(["dashboard"], home.env);
    expect(r.code).toBe(2);
    expect(r.err).toContain("the dashboard needs a terminal");
    expect(r.err).toContain("bottle usage --by bottle --json");
    expect(r.out).toBe("");
    expect(existsSync(join(home.dir, "bottlekit.db"))).toBe(false);
  });

  it("--help lists the keys' commands and the store option", async () => {
    const r = await bottle(["dashboard", "--help"], home.env);
    expect(r.code).toBe(0);
    expect(r.out).toContain("--store <url>");
    expect(r.out).toContain("--poll <ms>");
  });
});
