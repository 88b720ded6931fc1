import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TempHome } from "@bottlekit/test-utils";
import { afterEach, describe, expect, it } from "vitest";
import { bottle, homeWith, md } from "../../test/helpers.ts";

let home: TempHome | undefined;
let project: string | undefined;
afterEach(async () => {
  await home?.cleanup();
  if (project) rmSync(project, { recursive: true, force: true });
  home = undefined;
  project = undefined;
});

describe("bottle list", () => {
  it("lists bottles and agents, with the project agent winning and saying so", async () => {
    home = await homeWith({
      "bottles/base.md": md("env: { A: b }"),
      "bottles/broken.md": "no frontmatter at all",
      "agents/dev.md": md("bottle: base"),
      "agents/ops.md": md("bottle: base"),
    });
    project = mkdtempSync(join(tmpdir(), "bk-proj-"));
    mkdirSync(join(project, ".bottlekit", "agents"), { recursive: true });
    writeFileSync(join(project, ".bottlekit", "agents", "dev.md"), md("bottle: base"));
    const r = await bottle(["list", "--home", home.dir, "--cwd", project]);
    expect(r.code).toBe(0);
    expect(r.out).toContain("  base\n  broken\n");
    expect(r.out).toMatch(/dev\s+project\s+\(shadows .*agents\/dev\.md\)/);
    expect(r.out).toMatch(/ops\s+home/);
    expect(r.err).toContain("warning: project agent `dev` is used instead of the home agent");
    expect(r.out).not.toMatch(/\u001b\[/);
  });

  it("--json prints exactly one JSON document; warnings go to stderr", async () => {
    home = await homeWith({ "bottles/base.md": md(""), "bottles/Bad.md": md("") });
    const r = await bottle(["list", "--json"], { BOTTLEKIT_HOME: home.dir });
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.out) as {
      home: string;
      bottles: { name: string }[];
      warnings: unknown[];
    };
    expect(doc.home).toBe(home.dir);
    expect(doc.bottles.map((b) => b.name)).toEqual(["base"]);
    expect(doc.warnings).toHaveLength(1);
    expect(r.err).toContain("`Bad` is not a valid manifest name");
  });

  it("--home wins over BOTTLEKIT_HOME", async () => {
    home = await homeWith({ "bottles/from-flag.md": md("") });
    const other = await homeWith({ "bottles/from-env.md": md("") });
    try {
      const r = await bottle(["list", "--json", "--home", home.dir], { BOTTLEKIT_HOME: other.dir });
      const doc = JSON.parse(r.out) as { bottles: { name: string }[] };
      expect(doc.bottles.map((b) => b.name)).toEqual(["from-flag"]);
    } finally {
      await other.cleanup();
    }
  });

  it("colours only when asked and never with NO_COLOR", async () => {
    home = await homeWith({ "bottles/base.md": md("") });
    const forced = await bottle(["list", "--home", home.dir], { FORCE_COLOR: "1" });
    expect(forced.out).toMatch(/\u001b\[1m/);
    const off = await bottle(["list", "--home", home.dir], { FORCE_COLOR: "1", NO_COLOR: "1" });
    expect(off.out).not.toMatch(/\u001b\[/);
  });
});
