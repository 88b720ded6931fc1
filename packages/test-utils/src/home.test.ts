import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { createTempHome, withTempHome } from "./home.ts";

describe("temp homes", () => {
  it("creates the standard layout, writes files and cleans up", async () => {
    const home = await createTempHome();
    expect(home.env.BOTTLEKIT_HOME).toBe(home.dir);
    for (const d of ["bottles", "agents", "state"])
      expect(existsSync(join(home.dir, d))).toBe(true);
    const p = await home.write("bottles/dev/bottle.md", "# dev\n");
    expect(readFileSync(p, "utf8")).toBe("# dev\n");
    await home.cleanup();
    expect(existsSync(home.dir)).toBe(false);
  });

  it("withTempHome removes the home even when the callback throws", async () => {
    let dir = "";
    await expect(
      withTempHome(async (h) => {
        dir = h.dir;
        throw new Error("boom");
      }),
    ).rejects.toThrow("boom");
    expect(dir).not.toBe("");
    expect(existsSync(dir)).toBe(false);
  });
});
