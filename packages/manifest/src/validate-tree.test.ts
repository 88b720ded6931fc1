import { afterEach, describe, expect, it } from "vitest";
import { md, type TempTree, tempTree } from "../test/home.ts";
import { validatePaths } from "./validate-tree.ts";

let tree: TempTree | undefined;
afterEach(() => {
  tree?.cleanup();
  tree = undefined;
});

describe("validatePaths", () => {
  it("a home that does not exist is an error, not a pass with nothing checked", () => {
    tree = tempTree();
    const r = validatePaths([], { home: `${tree.root}/nowhere`, cwd: tree.cwd, env: {} });
    expect(r.ok).toBe(false);
    expect(r.issues[0]).toMatchObject({ code: "E_READ", severity: "error" });
    expect(r.issues[0]?.hint).toContain("bottle init --home");
  });

  it("a rule file named by exec_policy.rules must exist (file:line:col, did-you-mean)", () => {
    tree = tempTree({
      "home/bottles/dev.md": md(
        "exec_policy:\n  rules: [rules/default.rules, rules/defualt.rules]",
      ),
      "home/rules/default.rules": 'prefix_rule(pattern = ["ls"])\n',
    });
    const r = validatePaths([], { home: tree.home, cwd: tree.cwd, env: {} });
    expect(r.ok).toBe(false);
    const missing = r.issues.filter((i) => i.path.startsWith("exec_policy.rules"));
    expect(missing).toHaveLength(1);
    expect(missing[0]).toMatchObject({ path: "exec_policy.rules[1]", line: 3 });
    expect(missing[0]?.message).toContain('did you mean "rules/default.rules"?');
  });

  it("checks a standalone tree: agents resolve bottles from the sibling bottles/ directory", () => {
    tree = tempTree({
      "repo/manifests/bottles/base.md": md("cutoff: kill"),
      "repo/manifests/agents/dev.md": md("bottle: base"),
      "repo/manifests/agents/lost.md": md("bottle: gone"),
      "repo/manifests/README.md": "# not a manifest\n",
      "home/bottles/gone.md": md(""),
    });
    const loc = { home: tree.home, cwd: tree.root, env: {} };
    const r = validatePaths(["repo/manifests"], loc);
    expect(r.files.map((f) => [f.file.slice(tree!.root.length), f.kind, f.ok])).toEqual([
      ["/repo/manifests/agents/dev.md", "agent", true],
      ["/repo/manifests/agents/lost.md", "agent", false],
      ["/repo/manifests/bottles/base.md", "bottle", true],
    ]);
    expect(r.issues[0]?.hint).toContain("available bottles: base");
  });

  it("sniffs the kind of a loose file from its keys", () => {
    tree = tempTree({
      "loose/a.md": md("bottle: base"),
      "loose/b.md": md("supervise: true"),
      "home/bottles/base.md": md(""),
    });
    const r = validatePaths(["loose/a.md", "loose/b.md"], {
      home: tree.home,
      cwd: tree.root,
      env: {},
    });
    expect(r.files.map((f) => f.kind)).toEqual(["agent", "bottle"]);
    expect(r.ok).toBe(true);
  });

  it("reports paths that do not exist and invalid file names", () => {
    tree = tempTree({ "x/bottles/Bad_Name.md": md("") });
    const r = validatePaths(["nope", "x"], { home: tree.home, cwd: tree.root, env: {} });
    expect(r.ok).toBe(false);
    expect(r.issues.map((i) => i.code)).toEqual(["E_READ", "E_NAME"]);
  });

  it("does not let a project's agents use the project's bottles", () => {
    tree = tempTree({
      "project/.bottlekit/bottles/evil.md": md(""),
      "project/.bottlekit/agents/dev.md": md("bottle: evil"),
    });
    const r = validatePaths([], { home: tree.home, cwd: tree.cwd, env: {} });
    expect(r.ok).toBe(false);
    expect(r.issues.map((i) => i.code).sort()).toEqual(["E_EXTENDS_MISSING", "W_PROJECT_BOTTLES"]);
  });
});
