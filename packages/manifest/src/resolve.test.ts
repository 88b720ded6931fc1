import { afterEach, describe, expect, it } from "vitest";
import { md, type TempTree, tempTree } from "../test/home.ts";
import { isManifestError } from "./errors.ts";
import { listManifests, redactConfig, resolveAgent, resolveDirs } from "./index.ts";

let tree: TempTree | undefined;
afterEach(() => {
  tree?.cleanup();
  tree = undefined;
});

function setup(files: Record<string, string>) {
  tree = tempTree(files);
  return { t: tree, loc: { home: tree.home, cwd: tree.cwd, env: {} } };
}

function thrown(fn: () => unknown) {
  try {
    fn();
  } catch (e) {
    if (isManifestError(e)) return e;
    throw e;
  }
  throw new Error("no error");
}

describe("resolveAgent", () => {
  it("merges agent and bottle with provenance for every key", () => {
    const { t, loc } = setup({
      "home/bottles/base.md": md(
        'env:\n  A: a\n  T: "${HOST_T}"\nbudget:\n  anthropic: { tokens: 100 }\nsandbox:\n  filesystem:\n    read_only: [/usr]\nexec_policy:\n  rules: [base.rules]',
      ),
      "home/bottles/dev.md": md(
        "extends: base\nagent_provider: { name: codex, credentials: [OPENAI_API_KEY] }\nsandbox:\n  filesystem:\n    read_only: [/opt]\n    read_write: [.]\nexec_policy:\n  rules: [dev.rules, base.rules]",
      ),
      "home/agents/coder.md": md(
        "bottle: dev\nmodel: openai/gpt-5\nskills: [git, tests]\nbudget:\n  anthropic: { tokens: 50 }",
        "You write code.\n",
      ),
    });
    const a = resolveAgent("coder", loc);
    expect(a.source).toBe("home");
    expect(a.prompt).toBe("You write code.\n");
    expect(a.config.model).toBe("openai/gpt-5");
    expect(a.config.skills).toEqual(["git", "tests"]);
    expect(a.config.budget).toEqual({ anthropic: { tokens: 50 } });
    expect(a.config.sandbox.filesystem.read_only).toEqual(["/usr", "/opt"]);
    expect(a.config.exec_policy.rules).toEqual(["base.rules", "dev.rules"]);
    expect(a.config.agent_provider).toEqual({ name: "codex", credentials: ["OPENAI_API_KEY"] });
    expect(a.config.cutoff).toBe("cutoff");

    const by = Object.fromEntries(a.provenance.map((p) => [p.path, p]));
    const file = (n: string) => `${t.home}/${n}`;
    expect(by["model"]?.source).toMatchObject({
      kind: "agent",
      file: file("agents/coder.md"),
      line: 3,
    });
    expect(by["budget.anthropic.tokens"]?.source.kind).toBe("agent");
    expect(by["budget.anthropic.tokens"]?.overridden[0]?.file).toBe(file("bottles/base.md"));
    expect(by["env.T"]?.source).toMatchObject({ name: "base", line: 4, col: 3 });
    expect(by["agent_provider"]?.source.name).toBe("dev");
    expect(by['sandbox.filesystem.read_only["/opt"]']?.source.name).toBe("dev");
    expect(by['exec_policy.rules["base.rules"]']?.source.name).toBe("dev");
    expect(by["cutoff"]?.source.kind).toBe("default");
    expect(by["bottle"]?.source.kind).toBe("agent");
    // Every leaf of the config has a provenance entry.
    const json = redactConfig(a.config);
    expect(json.env).toEqual({ A: "a", T: "<from $HOST_T>" });
    for (const path of ["env.A", 'skills["git"]', "egress.log", "supervise"]) {
      expect(by[path], path).toBeDefined();
    }
  });

  it("prefers the project's agent, says so, and never reads project bottles", () => {
    const { t, loc } = setup({
      "home/bottles/base.md": md("env:\n  WHERE: home"),
      "home/agents/dev.md": md("bottle: base\nmodel: home-model"),
      "project/.bottlekit/agents/dev.md": md("bottle: base\nmodel: project-model"),
      "project/.bottlekit/bottles/base.md": md("env:\n  WHERE: attacker"),
    });
    const a = resolveAgent("dev", loc);
    expect(a.source).toBe("project");
    expect(a.file).toBe(`${t.cwd}/.bottlekit/agents/dev.md`);
    expect(a.shadows).toBe(`${t.home}/agents/dev.md`);
    expect(a.config.model).toBe("project-model");
    expect(redactConfig(a.config).env).toEqual({ WHERE: "home" });
    expect(a.warnings.map((w) => w.code)).toEqual(["W_SHADOWED", "W_PROJECT_BOTTLES"]);
  });

  it("finds the project from a subdirectory", () => {
    const { t } = setup({
      "home/bottles/base.md": md(""),
      "project/.bottlekit/agents/p.md": md("bottle: base"),
      "project/src/deep/x.txt": "",
    });
    const a = resolveAgent("p", { home: t.home, cwd: `${t.cwd}/src/deep`, env: {} });
    expect(a.source).toBe("project");
  });

  it("uses BOTTLEKIT_HOME from env when no home is given", () => {
    const { t } = setup({});
    expect(resolveDirs({ cwd: t.cwd, env: { BOTTLEKIT_HOME: t.home } }).bottles).toBe(
      `${t.home}/bottles`,
    );
    expect(resolveDirs({ home: "/x", env: { BOTTLEKIT_HOME: t.home } }).home).toBe("/x");
  });

  it("reports a missing agent with suggestions", () => {
    const { loc } = setup({ "home/agents/coder.md": md("bottle: b") });
    const e = thrown(() => resolveAgent("codr", loc));
    expect(e.code).toBe("E_NOT_FOUND");
    expect(e.hint).toContain("did you mean `coder`?");
    expect(thrown(() => resolveAgent("Bad_Name", loc)).code).toBe("E_NAME");
  });

  it("reports an agent whose bottle does not exist, at the `bottle` key", () => {
    const { loc } = setup({
      "home/bottles/base.md": md(""),
      "home/agents/a.md": md("model: m\nbottle: bsae"),
    });
    const e = thrown(() => resolveAgent("a", loc));
    expect(e.code).toBe("E_EXTENDS_MISSING");
    expect(e.issues[0]).toMatchObject({ path: "bottle", line: 3, col: 9 });
    expect(e.hint).toContain("did you mean `base`?");
  });

  it("surfaces a broken parent's own errors with their location", () => {
    const { t, loc } = setup({
      "home/bottles/base.md": md("cutoff: nope"),
      "home/bottles/dev.md": md("extends: base"),
      "home/agents/a.md": md("bottle: dev"),
    });
    const e = thrown(() => resolveAgent("a", loc));
    expect(e.issues[0]).toMatchObject({
      file: `${t.home}/bottles/base.md`,
      path: "cutoff",
      line: 2,
    });
    expect(e.message).toContain("cannot resolve agent `a`");
  });
});

describe("listManifests", () => {
  it("lists names only, marks project agents, and warns about bad names and project bottles", () => {
    const { loc } = setup({
      "home/bottles/base.md": "not even frontmatter",
      "home/bottles/Bad Name.md": md(""),
      "home/bottles/notes.txt": "",
      "home/agents/a.md": md("bottle: base"),
      "home/agents/b.md": md("bottle: base"),
      "project/.bottlekit/agents/b.md": md("bottle: base"),
      "project/.bottlekit/agents/c.md": md("bottle: base"),
      "project/.bottlekit/bottles/evil.md": md(""),
    });
    const l = listManifests(loc);
    expect(l.bottles.map((b) => b.name)).toEqual(["base"]);
    expect(l.agents.map((a) => [a.name, a.source, a.shadows !== undefined])).toEqual([
      ["a", "home", false],
      ["b", "project", true],
      ["c", "project", false],
    ]);
    expect(l.warnings.map((w) => w.code)).toEqual([
      "W_BAD_FILE_NAME",
      "W_SHADOWED",
      "W_PROJECT_BOTTLES",
    ]);
  });
});
