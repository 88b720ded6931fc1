import { join } from "node:path";
import type { TempHome } from "@bottlekit/test-utils";
import { afterEach, describe, expect, it } from "vitest";
import { bottle, homeWith, md } from "../../test/helpers.ts";

let home: TempHome | undefined;
afterEach(async () => {
  await home?.cleanup();
  home = undefined;
});

describe("bottle validate", () => {
  it("exits 0 on a valid home", async () => {
    home = await homeWith({
      "bottles/base.md": md("egress:\n  routes:\n    - host: api.github.com"),
      "agents/dev.md": md("bottle: base"),
    });
    const r = await bottle(["validate", "--home", home.dir, "--cwd", home.dir]);
    expect(r.code).toBe(0);
    expect(r.out).toBe("");
    expect(r.err).toContain("2 manifest(s) checked: 0 error(s), 0 warning(s)");
  });

  it("exits 2 and lists every problem with file:line:col and key path", async () => {
    home = await homeWith({
      "bottles/base.md": md("egres: {}\ncutoff: stop"),
      "bottles/loop.md": md("extends: loop"),
      "agents/dev.md": md("bottle: nope"),
    });
    const r = await bottle(["validate", "--home", home.dir, "--cwd", home.dir]);
    expect(r.code).toBe(2);
    const b = join(home.dir, "bottles");
    expect(r.out).toContain(
      `${b}/base.md:2:1: error: egres: unknown key \`egres\`; did you mean \`egress\`?`,
    );
    expect(r.out).toContain(`${b}/base.md:3:9: error: cutoff:`);
    expect(r.out).toContain(`${b}/loop.md:2:10: error: extends: bottle \`loop\` extends itself`);
    expect(r.out).toContain(
      `${join(home.dir, "agents")}/dev.md:2:9: error: bottle: agent \`dev\` uses bottle \`nope\``,
    );
    expect(r.err).toContain("3 manifest(s) checked: 4 error(s)");
  });

  it("validates given files and directories", async () => {
    home = await homeWith({
      "bottles/ok.md": md("supervise: true"),
      "elsewhere/bottles/bad.md": md("supervise: maybe"),
    });
    const good = await bottle(["validate", join(home.dir, "bottles/ok.md")]);
    expect(good.code).toBe(0);
    const bad = await bottle(["validate", "--json", join(home.dir, "elsewhere")]);
    expect(bad.code).toBe(2);
    const doc = JSON.parse(bad.out) as {
      ok: boolean;
      errors: number;
      issues: { path: string; line: number }[];
    };
    expect(doc.ok).toBe(false);
    expect(doc.errors).toBe(1);
    expect(doc.issues[0]).toMatchObject({ path: "supervise", line: 2 });
    const missing = await bottle(["validate", join(home.dir, "nope.md")]);
    expect(missing.code).toBe(2);
    expect(missing.out).toContain("no such file or directory");
  });
});
