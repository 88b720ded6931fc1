import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { checkArgv } from "./check.ts";
import { formatDiagnostic } from "./diagnostic.ts";
import { EXEC_CAPABLE_OPTIONS } from "./exec-options.ts";
import { loadPolicyFiles, loadRulesDirectory } from "./load.ts";
import { loadPolicySources } from "./load-sources.ts";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "execpolicy-load-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("per-file isolation", () => {
  it("a broken file is reported with its location and does not discard the others", () => {
    const r = loadPolicySources([
      { path: "a.rules", text: `prefix_rule(["git"], "prompt")` },
      {
        path: "broken.rules",
        text: `prefix_rule(["rm"], "forbidden")\nprefix_rule(["x"], decision="nope")`,
      },
      { path: "c.yaml", text: "version: 1\nrules:\n  - pattern: [npm, test]\n" },
      { path: "bad.yaml", text: "version: 1\nrules: 3\n" },
    ]);
    expect(r.errors.map(formatDiagnostic)).toEqual([
      `broken.rules:2:1: invalid decision: nope (expected "allow", "prompt" or "forbidden")`,
      "bad.yaml:2:8: rules: Invalid input: expected array, received number",
    ]);
    expect(r.files.map((f) => [f.path, f.ok, f.rules])).toEqual([
      ["a.rules", true, 1],
      ["broken.rules", false, 0],
      ["c.yaml", true, 1],
      ["bad.yaml", false, 0],
    ]);
    expect(checkArgv(r.policy, ["git", "x"]).decision).toBe("prompt");
    expect(checkArgv(r.policy, ["npm", "test"]).decision).toBe("allow");
    // nothing of the broken file applies (not even its valid first rule)
    expect(checkArgv(r.policy, ["rm", "x"]).commands[0]?.unmatched).toBe(true);
  });

  it("warns about allow rules that let arbitrary code run", () => {
    const r = loadPolicySources([
      {
        path: "w.rules",
        text: `prefix_rule(["bash", "-lc"])\nprefix_rule(["sudo"])\nprefix_rule(["git", "status"])\nprefix_rule(["git"], "prompt")`,
      },
    ]);
    expect(r.errors).toEqual([]);
    expect(r.warnings.map(formatDiagnostic)).toEqual([
      'w.rules:1:1: warning: allowing "bash -lc": bash -lc runs arbitrary code',
      'w.rules:2:1: warning: allowing "sudo": sudo runs other commands; amend the wrapped command instead',
      `w.rules:3:1: warning: this allow rule for git leaves its exec-capable options at prompt unless a rule names them (-c, --config-env, --exec-path, --git-dir, --work-tree, --upload-pack, … 30 in all): ${EXEC_CAPABLE_OPTIONS.git?.why}`,
    ]);
  });

  it("several native defaults: the strictest applies", () => {
    const r = loadPolicySources([
      { path: "a.yaml", text: "version: 1\ndefault: allow\n" },
      { path: "b.yaml", text: "version: 1\ndefault: forbidden\n" },
    ]);
    expect(r.policy.defaultDecision).toBe("forbidden");
  });

  it("unreadable files are load errors with a hint", async () => {
    const good = join(dir, "good.rules");
    await writeFile(good, `prefix_rule(["ls"])`);
    const r = await loadPolicyFiles([join(dir, "missing.rules"), good]);
    expect(r.errors[0]).toMatchObject({
      file: join(dir, "missing.rules"),
      message: "cannot read policy file (ENOENT)",
    });
    expect(r.files.map((f) => f.ok)).toEqual([false, true]);
    expect(checkArgv(r.policy, ["ls"]).decision).toBe("allow");
  });

  it("a rules directory loads *.rules sorted by name; a missing directory loads nothing; -r DIR loads its policy files", async () => {
    const d = join(dir, "rules");
    await import("node:fs/promises").then((fs) => fs.mkdir(d, { recursive: true }));
    await writeFile(join(d, "b.rules"), `prefix_rule(["b"])`);
    await writeFile(join(d, "a.rules"), `prefix_rule(["a"])`);
    await writeFile(join(d, "notes.txt"), "ignored");
    const r = await loadRulesDirectory(d);
    expect(r.files.map((f) => f.path)).toEqual([join(d, "a.rules"), join(d, "b.rules")]);
    expect((await loadRulesDirectory(join(dir, "nope"))).files).toEqual([]);
    await writeFile(join(d, "c.yaml"), "version: 1\n");
    const viaFiles = await loadPolicyFiles([d]);
    expect(viaFiles.files.map((f) => f.path)).toEqual([
      join(d, "a.rules"),
      join(d, "b.rules"),
      join(d, "c.yaml"),
    ]);
  });
});

describe("a failing example drops the file's rules, and says which", () => {
  it("names every dropped rule in a warning", () => {
    const r = loadPolicySources([
      {
        path: "x.rules",
        text: `prefix_rule(["ls"], match=["ls -la"])\nprefix_rule(["git", "push"], "forbidden", match=["git status"])`,
      },
    ]);
    expect(r.errors.length).toBeGreaterThan(0);
    const dropped = r.warnings.map(formatDiagnostic).find((w) => w.includes("none of this file"));
    expect(dropped).toContain("x.rules:1:1: warning: an example failed");
    expect(dropped).toContain("allow [ls] (line 1)");
    expect(dropped).toContain("forbidden [git push] (line 2)");
  });
});
