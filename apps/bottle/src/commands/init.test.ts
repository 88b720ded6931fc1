import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TempHome } from "@bottlekit/test-utils";
import { afterEach, describe, expect, it } from "vitest";
import { bottle, homeWith, md } from "../../test/helpers.ts";
import { INIT_TEMPLATES } from "../init-templates.ts";

const repo = new URL("../../../../", import.meta.url).pathname;
let dirs: string[] = [];
let home: TempHome | undefined;
afterEach(async () => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  dirs = [];
  await home?.cleanup();
  home = undefined;
});

function freshDir(): string {
  const d = mkdtempSync(join(tmpdir(), "bk-init-"));
  dirs.push(d);
  return join(d, "home");
}

describe("bottle init", () => {
  it("writes a starter home that validates and explains", async () => {
    const dir = freshDir();
    const init = await bottle(["init", "--home", dir, "--json"]);
    expect(init.code).toBe(0);
    const doc = JSON.parse(init.out) as { files: string[] };
    expect(doc.files).toHaveLength(INIT_TEMPLATES.length);
    const v = await bottle(["validate", "--home", dir, "--cwd", dir]);
    expect(v.err).toContain("2 manifest(s) checked: 0 error(s), 0 warning(s)");
    expect(v.code).toBe(0);
    const ex = await bottle(["explain", "coder", "--home", dir, "--cwd", dir]);
    expect(ex.code).toBe(0);
    expect(ex.out).toContain("api.github.com");
  });

  it("never overwrites without --force, and then writes nothing at all", async () => {
    const dir = freshDir();
    expect((await bottle(["init", "--home", dir])).code).toBe(0);
    writeFileSync(join(dir, "agents/coder.md"), "mine\n");
    const again = await bottle(["init", "--home", dir]);
    expect(again.code).toBe(2);
    expect(again.err).toContain("already has");
    expect(again.err).toContain("hint: pass --force");
    expect(readFileSync(join(dir, "agents/coder.md"), "utf8")).toBe("mine\n");
    expect((await bottle(["init", "--home", dir, "--force"])).code).toBe(0);
    expect(readFileSync(join(dir, "agents/coder.md"), "utf8")).not.toBe("mine\n");
  });

  it("examples/home in the repository is exactly what init writes", () => {
    for (const t of INIT_TEMPLATES) {
      expect(readFileSync(join(repo, "examples/home", t.path), "utf8")).toBe(t.text);
    }
  });
});

describe("bottle validate as a CI gate", () => {
  it("a home that does not exist exits 2 with the fix", async () => {
    const r = await bottle([
      "validate",
      "--home",
      "/nonexistent/bottlekit-home",
      "--cwd",
      tmpdir(),
    ]);
    expect(r.code).toBe(2);
    expect(r.out).toContain("the bottlekit home does not exist");
    expect(r.out).toContain("bottle init --home /nonexistent/bottlekit-home");
  });

  it("an unknown model and a missing rule file are errors with did-you-mean", async () => {
    home = await homeWith({
      "bottles/base.md": md("exec_policy: { rules: [rules/missing.rules] }"),
      "agents/dev.md": md("bottle: base\nmodel: anthropic/claude-sonet-4-5"),
      "agents/far.md": md("bottle: base\nmodel: nosuchprovider/model"),
      "agents/ok.md": md("bottle: base\nmodel: openai/gpt-4o-mini"),
    });
    const r = await bottle(["validate", "--home", home.dir, "--cwd", home.dir]);
    expect(r.code).toBe(2);
    expect(r.out).toMatch(
      /dev\.md:3:8: error: model: model "anthropic\/claude-sonet-4-5" is not in provider-registry's catalog for anthropic; did you mean "anthropic\/claude-sonnet-4-5"/,
    );
    expect(r.out).toMatch(
      /far\.md:3:8: error: model: model "nosuchprovider\/model": unknown provider/,
    );
    expect(r.out).not.toContain("ok.md");
    expect(r.out).toMatch(
      /base\.md:2:\d+: error: exec_policy\.rules\[0\]: rule file rules\/missing\.rules does not exist/,
    );
  });
});
