import { describe, expect, it } from "vitest";
import { parseManifestText } from "./frontmatter.ts";
import { didYouMean } from "./names.ts";
import { validateFrontmatter, validateManifestText } from "./validate.ts";

function check(kind: "bottle" | "agent", yaml: string) {
  return validateFrontmatter(parseManifestText("m.md", `---\n${yaml}\n---\n`), kind);
}

function bottleOf(yaml: string) {
  return validateFrontmatter(parseManifestText("m.md", `---\n${yaml}\n---\n`), "bottle");
}

function agentOf(yaml: string) {
  return validateFrontmatter(parseManifestText("m.md", `---\n${yaml}\n---\n`), "agent");
}

describe("validateFrontmatter", () => {
  it("accepts a full bottle", () => {
    const r = bottleOf(
      [
        "description: dev bottle",
        "extends: [base, net]",
        'env: { A: x, B: "?", C: "?Token please", D: "${HOME_D}", PORT: 8080, ON: true }',
        "agent_provider: { name: claude, credentials: [ANTHROPIC_API_KEY] }",
        "egress: { log: true, inherit_routes: false, routes: [{ host: api.github.com }] }",
        "budget: { anthropic: { tokens: 100000, usd: 2.5, window: 24h } }",
        "cutoff: kill",
        "supervise: true",
        "exec_policy: { rules: [rules/default.rules] }",
        "sandbox: { filesystem: { read_only: [/usr], read_write: [.], deny_read: [~/.ssh] } }",
        "git_identity: { name: Bot, email: bot@example.com }",
      ].join("\n"),
    );
    expect(r.issues).toEqual([]);
    expect(r.value?.cutoff).toBe("kill");
  });

  it("accepts an agent and warns about Claude Code subagent keys", () => {
    const r = agentOf(
      "bottle: dev\nmodel: anthropic/claude-sonnet-4\nskills: [git]\nname: x\ntools: [Read]",
    );
    expect(r.value?.bottle).toBe("dev");
    expect(r.issues.map((i) => [i.severity, i.code, i.path])).toEqual([
      ["warning", "W_IGNORED_KEY", "name"],
      ["warning", "W_IGNORED_KEY", "tools"],
    ]);
  });

  it("lists every problem, not just the first", () => {
    const r = check(
      "bottle",
      "egres: {}\ncutoff: stop\nsupervise: yes\nbudget: { anthropic: { tokens: -1 } }",
    );
    expect(r.value).toBeUndefined();
    expect(r.issues.map((i) => i.path).sort()).toEqual([
      "budget.anthropic.tokens",
      "cutoff",
      "egres",
      "supervise",
    ]);
    const cutoff = r.issues.find((i) => i.path === "cutoff");
    expect(cutoff?.message).toContain("expected one of: cutoff, freeze, kill");
    expect(cutoff).toMatchObject({ line: 3, col: 9 });
    expect(r.issues.find((i) => i.path === "supervise")?.message).toBe(
      'must be a boolean, not the string "yes"',
    );
  });

  it("suggests nested keys", () => {
    const r = check(
      "bottle",
      "egress: { rotues: [] }\nsandbox: { filesystem: { readonly: [/x] } }",
    );
    expect(r.issues.map((i) => i.message)).toEqual([
      "unknown key `rotues`; did you mean `routes`?",
      "unknown key `readonly`; did you mean `read_only`?",
    ]);
  });

  it("names allowed keys when nothing is close", () => {
    const r = check("agent", "bottle: b\nzzzzzz: 1");
    expect(r.issues[0]?.hint).toContain("allowed keys here: bottle, description, model");
  });

  it("gives a migration message for each removed key", () => {
    const r = check(
      "bottle",
      "git: {}\ngit_user: {}\nssh: {}\nruntime: docker\npath_allowlist: []\negress:\n  routes:\n    - host: a.example.com\n      role: x\n      path_allowlist: [/a]",
    );
    expect(r.issues.map((i) => [i.code, i.path])).toEqual([
      ["E_REMOVED_KEY", "git"],
      ["E_REMOVED_KEY", "git_user"],
      ["E_REMOVED_KEY", "ssh"],
      ["E_REMOVED_KEY", "runtime"],
      ["E_REMOVED_KEY", "path_allowlist"],
      ["E_REMOVED_KEY", "egress.routes[0].role"],
      ["E_REMOVED_KEY", "egress.routes[0].path_allowlist"],
    ]);
    expect(r.issues.every((i) => i.hint !== undefined)).toBe(true);
  });

  it("requires an agent's bottle", () => {
    const r = check("agent", "model: x");
    expect(r.issues[0]).toMatchObject({
      code: "E_SCHEMA",
      path: "bottle",
      message: "required key `bottle` is missing",
    });
  });

  it("rejects malformed host references in env, without echoing the value", () => {
    const r = check("bottle", 'env:\n  A: "Bearer ${TOKEN}"\n  B: "${not-a-name}"\n  C: [x]');
    expect(r.issues.map((i) => [i.path, i.line])).toEqual([
      ["env.A", 3],
      ["env.B", 4],
      ["env.C", 5],
    ]);
    expect(r.issues.map((i) => i.message).join("\n")).not.toContain("Bearer");
  });

  it("rejects two routes for the same host in one file", () => {
    const r = check(
      "bottle",
      "egress:\n  routes:\n    - host: a.example.com\n    - host: a.example.com",
    );
    expect(r.issues[0]).toMatchObject({ path: "egress.routes[1].host", line: 5 });
    expect(r.issues[0]?.message).toContain("first declared at egress.routes[0]");
  });

  it("validates route fields through the egress-dlp route schema", () => {
    const r = check(
      "bottle",
      "egress:\n  routes:\n    - host: API.example.com\n      matches: [{ method: [GET] }]",
    );
    expect(r.issues.map((i) => i.path)).toEqual([
      "egress.routes[0].host",
      "egress.routes[0].matches[0].method",
    ]);
    expect(r.issues[1]?.message).toContain("did you mean `methods`");
  });

  it("rejects an agent_provider with both or neither of name and command", () => {
    expect(check("bottle", "agent_provider: {}").issues[0]?.message).toContain("set exactly one");
    expect(check("bottle", "agent_provider: { name: codex, command: [x] }").issues[0]?.path).toBe(
      "agent_provider",
    );
    expect(check("bottle", "agent_provider: { command: [my-agent, --flag] }").issues).toEqual([]);
  });

  it("rejects invalid names in extends", () => {
    const r = check("bottle", "extends: [Base]");
    expect(r.issues[0]).toMatchObject({ code: "E_NAME", path: "extends[0]" });
  });
});

describe("didYouMean", () => {
  it("finds close keys and ignores far ones", () => {
    expect(didYouMean("egres", ["env", "egress", "extends"])).toBe("egress");
    expect(didYouMean("supervize", ["supervise"])).toBe("supervise");
    expect(didYouMean("read-only", ["read_only"])).toBe("read_only");
    expect(didYouMean("zzzz", ["env", "egress"])).toBeUndefined();
  });
});

describe("validateManifestText", () => {
  it("returns value, body and `line:col path: message` errors and warnings", () => {
    const ok = validateManifestText("---\nbottle: base\ncolor: red\n---\nPrompt.\n", "agent");
    expect(ok.value?.bottle).toBe("base");
    expect(ok.body).toBe("Prompt.\n");
    expect(ok.errors).toEqual([]);
    expect(ok.warnings).toEqual([
      "3:1 color: `color` is a Claude Code subagent key and is ignored by bottlekit",
    ]);
    const bad = validateManifestText("---\ncutoff: nope\nsupervise: 1\n---\n", "bottle");
    expect(bad.value).toBeUndefined();
    expect(bad.errors).toEqual([
      '2:9 cutoff: the string "nope" is not allowed; expected one of: cutoff, freeze, kill',
      "3:12 supervise: must be a boolean, not number 1",
    ]);
  });
});
