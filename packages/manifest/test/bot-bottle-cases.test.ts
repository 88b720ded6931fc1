/**
 * The bot-bottle manifest cases (reference §1.8), in bottlekit form. Where bottlekit's merge rules
 * differ on purpose the test says so; the differences are documented in the README ("Merge rules").
 */
import { inspect } from "node:util";
import { matchRoute } from "@bottlekit/egress-dlp";
import { afterEach, describe, expect, it } from "vitest";
import {
  isManifestError,
  listManifests,
  ManifestLoader,
  materializeEnv,
  redactConfig,
  resolveAgent,
  resolveBottle,
} from "../src/index.ts";
import { md, type TempTree, tempTree } from "./home.ts";

let tree: TempTree | undefined;
afterEach(() => {
  tree?.cleanup();
  tree = undefined;
});

function home(files: Record<string, string>): TempTree {
  const prefixed: Record<string, string> = {};
  for (const [k, v] of Object.entries(files)) prefixed[`home/${k}`] = v;
  tree = tempTree(prefixed);
  return tree;
}

function bottle(name: string, t: TempTree) {
  return resolveBottle(name, { home: t.home, cwd: t.cwd, env: {} });
}

function errorOf(fn: () => unknown) {
  try {
    fn();
  } catch (error) {
    if (isManifestError(error)) return error;
    throw error;
  }
  throw new Error("expected a ManifestError");
}

const ROUTE_GH = `    - host: api.github.com
      matches: [{ methods: [GET], paths: [{ type: prefix, value: /repos }] }]`;

describe("bot-bottle manifest cases in bottlekit form", () => {
  it("case 1: a leaf bottle with no extends parses unchanged", () => {
    const t = home({
      "bottles/leaf.md": md(
        `env:\n  A: "1"\ncutoff: freeze\nsupervise: true\negress:\n  routes:\n${ROUTE_GH}`,
        "notes\n",
      ),
    });
    const b = bottle("leaf", t);
    expect(b.config.env).toEqual({ A: { kind: "literal", value: "1" } });
    expect(b.config.cutoff).toBe("freeze");
    expect(b.config.supervise).toBe(true);
    expect(b.config.egress.routes.map((r) => r.host)).toEqual(["api.github.com"]);
    expect(b.notes).toBe("notes\n");
    expect(b.order).toEqual(["leaf"]);
  });

  it("case 2: a child that only says `extends: base` equals base", () => {
    const t = home({
      "bottles/base.md": md(
        `env:\n  A: x\nbudget:\n  anthropic: { tokens: 1000 }\negress:\n  routes:\n${ROUTE_GH}`,
      ),
      "bottles/child.md": md("extends: base"),
    });
    const base = bottle("base", t);
    const child = bottle("child", t);
    expect(child.config).toEqual(base.config);
    expect(child.provenance.find((p) => p.path === "env.A")?.source.name).toBe("base");
  });

  it("case 3: env {A:1} + child {B:2} gives both", () => {
    const t = home({
      "bottles/base.md": md("env:\n  A: 1"),
      "bottles/child.md": md("extends: base\nenv:\n  B: 2"),
    });
    expect(redactConfig(bottle("child", t).config).env).toEqual({ A: "1", B: "2" });
  });

  it("case 4: env {A:1} + child {A:9} gives A=9 and records what it overrode", () => {
    const t = home({
      "bottles/base.md": md("env:\n  A: 1"),
      "bottles/child.md": md("extends: base\nenv:\n  A: 9"),
    });
    const b = bottle("child", t);
    expect(redactConfig(b.config).env).toEqual({ A: "9" });
    const p = b.provenance.find((x) => x.path === "env.A");
    expect(p?.source).toMatchObject({ name: "child", line: 4, col: 3 });
    expect(p?.overridden.map((o) => o.name)).toEqual(["base"]);
  });

  it("case 5 (differs on purpose): a child's routes merge by host; omitting egress inherits", () => {
    const t = home({
      "bottles/base.md": md(`egress:\n  log: true\n  routes:\n${ROUTE_GH}`),
      "bottles/omit.md": md("extends: base"),
      "bottles/more.md": md("extends: base\negress:\n  routes:\n    - host: pypi.org"),
      "bottles/replace.md": md(
        "extends: base\negress:\n  inherit_routes: false\n  routes:\n    - host: pypi.org",
      ),
    });
    expect(bottle("omit", t).config.egress.routes.map((r) => r.host)).toEqual(["api.github.com"]);
    // bot-bottle: declaring egress replaced the parent's. bottlekit: hosts merge; the parent's stays.
    expect(bottle("more", t).config.egress.routes.map((r) => r.host)).toEqual([
      "api.github.com",
      "pypi.org",
    ]);
    expect(bottle("more", t).config.egress.log).toBe(true);
    // bot-bottle's replacement, spelled explicitly:
    expect(bottle("replace", t).config.egress.routes.map((r) => r.host)).toEqual(["pypi.org"]);
  });

  it("case 6: an explicit reset clears inherited routes; an empty list alone does not", () => {
    const t = home({
      "bottles/base.md": md(`egress:\n  routes:\n${ROUTE_GH}`),
      "bottles/cleared.md": md("extends: base\negress:\n  inherit_routes: false\n  routes: []"),
      "bottles/empty.md": md("extends: base\negress:\n  routes: []"),
    });
    expect(bottle("cleared", t).config.egress.routes).toEqual([]);
    expect(bottle("empty", t).config.egress.routes.map((r) => r.host)).toEqual(["api.github.com"]);
    expect(bottle("cleared", t).provenance.some((p) => p.path.startsWith("egress.routes"))).toBe(
      false,
    );
  });

  it("case 7: git_identity {name} + child {email} sets both; the agent overlays field by field", () => {
    const t = home({
      "bottles/base.md": md("git_identity:\n  name: X"),
      "bottles/child.md": md("extends: base\ngit_identity:\n  email: y@example.com"),
      "agents/dev.md": md("bottle: child\ngit_identity:\n  name: Dev Bot"),
    });
    expect(bottle("child", t).config.git_identity).toEqual({ name: "X", email: "y@example.com" });
    const agent = resolveAgent("dev", { home: t.home, cwd: t.cwd, env: {} });
    expect(agent.config.git_identity).toEqual({ name: "Dev Bot", email: "y@example.com" });
    expect(agent.provenance.find((p) => p.path === "git_identity.name")?.source.kind).toBe("agent");
  });

  it("case 8: grandparent -> parent -> child resolves; a missing parent lists the bottles", () => {
    const t = home({
      "bottles/gp.md": md("env:\n  G: g"),
      "bottles/parent.md": md("extends: gp\nenv:\n  P: p"),
      "bottles/child.md": md("extends: parent\nenv:\n  C: c"),
      "bottles/orphan.md": md("extends: nope"),
    });
    const b = bottle("child", t);
    expect(b.order).toEqual(["gp", "parent", "child"]);
    expect(redactConfig(b.config).env).toEqual({ G: "g", P: "p", C: "c" });
    const err = errorOf(() => bottle("orphan", t));
    expect(err.code).toBe("E_EXTENDS_MISSING");
    expect(err.issues[0]).toMatchObject({ line: 2, col: 10, path: "extends" });
    expect(err.issues[0]?.hint).toBe("available bottles: child, gp, orphan, parent");
  });

  it("case 9: self-extension, 2-cycle, 3-cycle and `extends: 5` are errors showing the chain", () => {
    const t = home({
      "bottles/self.md": md("extends: self"),
      "bottles/a.md": md("extends: b"),
      "bottles/b.md": md("extends: a"),
      "bottles/x.md": md("extends: y"),
      "bottles/y.md": md("extends: z"),
      "bottles/z.md": md("extends: [x]"),
      "bottles/num.md": md("extends: 5"),
    });
    expect(errorOf(() => bottle("self", t)).message).toContain("bottle `self` extends itself");
    expect(errorOf(() => bottle("a", t)).message).toContain("extends cycle: a -> b -> a");
    const three = errorOf(() => bottle("x", t));
    expect(three.code).toBe("E_EXTENDS_CYCLE");
    expect(three.message).toContain("extends cycle: x -> y -> z -> x");
    expect(three.issues[0]).toMatchObject({ path: "extends[0]" });
    const num = errorOf(() => bottle("num", t));
    expect(num.code).toBe("E_SCHEMA");
    expect(num.message).toContain("extends: must be a bottle name or a list of bottle names");
  });

  it("case 10: a child budget entry overrides field by field; routes are replaced whole", () => {
    const t = home({
      "bottles/base.md": md(
        "budget:\n  anthropic: { tokens: 1000, usd: 5, window: 24h }\negress:\n  routes:\n    - host: api.github.com\n      auth: { scheme: Bearer, token_ref: GH_TOKEN }\n      matches: [{ methods: [GET] }]",
      ),
      "bottles/child.md": md(
        "extends: base\nbudget:\n  anthropic: { tokens: 50 }\negress:\n  routes:\n    - host: api.github.com\n      matches: [{ methods: [GET, POST] }]",
      ),
    });
    const b = bottle("child", t);
    expect(b.config.budget).toEqual({ anthropic: { tokens: 50, usd: 5, window: "24h" } });
    // bot-bottle merged repo fields; a bottlekit route is one unit: the credential does not
    // silently carry over to the child's broader route.
    expect(b.config.egress.routes).toHaveLength(1);
    expect(b.config.egress.routes[0]?.auth).toBeUndefined();
  });

  it("case 11: extends [a, b]: b's env wins, routes merge by host, a diamond is parsed once", () => {
    const t = home({
      "bottles/root.md": md("env:\n  R: root\negress:\n  routes:\n    - host: pypi.org"),
      "bottles/a.md": md(
        "extends: root\nenv:\n  X: a\negress:\n  routes:\n    - host: a.example.com",
      ),
      "bottles/b.md": md(
        "extends: root\nenv:\n  X: b\negress:\n  routes:\n    - host: b.example.com",
      ),
      "bottles/d.md": md("extends: [a, b]"),
    });
    const loader = new ManifestLoader();
    const d = resolveBottle("d", { home: t.home, cwd: t.cwd, env: {}, loader });
    expect(redactConfig(d.config).env).toEqual({ R: "root", X: "b" });
    // bot-bottle concatenated routes (pypi.org twice); bottlekit keys them by host.
    expect(d.config.egress.routes.map((r) => r.host)).toEqual([
      "pypi.org",
      "a.example.com",
      "b.example.com",
    ]);
    expect(d.order).toEqual(["root", "a", "b", "d"]);
    expect(loader.reads).toBe(4);
  });

  it("case 12: a top-level `git:` is a migration error", () => {
    const t = home({ "bottles/old.md": md("git:\n  repos: {}") });
    const err = errorOf(() => bottle("old", t));
    expect(err.code).toBe("E_REMOVED_KEY");
    expect(err.message).toContain("`git` was removed");
    expect(err.hint).toContain("git_identity");
  });

  it("case 13: an agent declaring git-gate.repos is rejected", () => {
    const t = home({
      "bottles/base.md": md(""),
      "agents/dev.md": md("bottle: base\ngit-gate:\n  repos:\n    r: { url: x }"),
    });
    const err = errorOf(() => resolveAgent("dev", { home: t.home, cwd: t.cwd, env: {} }));
    expect(err.code).toBe("E_REMOVED_KEY");
    expect(err.issues[0]).toMatchObject({ path: "git-gate", line: 3, col: 1 });
  });

  it("case 14: a route with any `role` is rejected", () => {
    const t = home({
      "bottles/r.md": md(
        "egress:\n  routes:\n    - host: api.anthropic.com\n      role: claude_code_oauth",
      ),
    });
    const err = errorOf(() => bottle("r", t));
    expect(err.code).toBe("E_REMOVED_KEY");
    expect(err.issues).toHaveLength(1);
    expect(err.issues[0]).toMatchObject({ path: "egress.routes[0].role", line: 5, col: 7 });
  });

  it("case 15: a typo `egres` says did you mean `egress`", () => {
    const t = home({ "bottles/typo.md": md("egres:\n  routes: []") });
    const err = errorOf(() => bottle("typo", t));
    expect(err.code).toBe("E_UNKNOWN_KEY");
    expect(err.message).toContain("unknown key `egres`; did you mean `egress`?");
    expect(err.issues[0]).toMatchObject({ line: 2, col: 1 });
  });

  it("case 16: `?` asks at launch, `${X}` copies from the host, neither value leaks", async () => {
    const t = home({
      "bottles/s.md": md(
        'env:\n  ASKED: "?Your token"\n  COPIED: "${HOST_SECRET}"\n  PLAIN: hello',
      ),
    });
    const b = bottle("s", t);
    expect(b.config.env["ASKED"]).toEqual({ kind: "ask", prompt: "Your token" });
    expect(b.config.env["COPIED"]).toEqual({ kind: "host", name: "HOST_SECRET" });
    expect(redactConfig(b.config).env).toEqual({
      ASKED: "<asked at launch>",
      COPIED: "<from $HOST_SECRET>",
      PLAIN: "hello",
    });
    const secret = "s3cr3t-host-value-123";
    const answer = "typed-answer-456";
    const launch = await materializeEnv(b.config.env, {
      hostEnv: { HOST_SECRET: secret },
      ask: async () => answer,
    });
    expect(launch.expose()).toEqual({ ASKED: answer, COPIED: secret, PLAIN: "hello" });
    for (const shown of [JSON.stringify(launch), String(launch), inspect(launch, { depth: 9 })]) {
      expect(shown).not.toContain(secret);
      expect(shown).not.toContain(answer);
    }
  });

  it("case 17: one malformed agent file: the others list, and it fails only when selected", () => {
    const t = home({
      "bottles/base.md": md(""),
      "agents/good.md": md("bottle: base"),
      "agents/bad.md": md("bottle: [unclosed"),
    });
    const listing = listManifests({ home: t.home, cwd: t.cwd, env: {} });
    expect(listing.agents.map((a) => a.name)).toEqual(["bad", "good"]);
    expect(resolveAgent("good", { home: t.home, cwd: t.cwd, env: {} }).config.bottle).toBe("base");
    const err = errorOf(() => resolveAgent("bad", { home: t.home, cwd: t.cwd, env: {} }));
    expect(err.code).toBe("E_YAML");
    expect(err.issues[0]?.file).toBe(`${t.home}/agents/bad.md`);
  });
});

describe("effective routes feed the egress-dlp matcher", () => {
  it("a child's replaced route is what the gateway matches (case 10, end to end)", () => {
    const t = home({
      "bottles/base.md": md(
        "egress:\n  routes:\n    - host: api.github.com\n      auth: { scheme: Bearer, token_ref: GH_TOKEN }\n      matches: [{ methods: [GET] }]\n    - host: pypi.org",
      ),
      "bottles/child.md": md(
        "extends: base\negress:\n  routes:\n    - host: api.github.com\n      matches: [{ methods: [GET, POST], paths: [{ type: prefix, value: /repos }] }]",
      ),
    });
    const routes = bottle("child", t).config.egress.routes;
    const post = matchRoute(routes, { host: "api.github.com", method: "POST", path: "/repos/x" });
    expect(post.ok && post.route.auth).toBeUndefined();
    expect(matchRoute(routes, { host: "api.github.com", method: "GET", path: "/user" }).ok).toBe(
      false,
    );
    expect(matchRoute(routes, { host: "pypi.org", method: "GET", path: "/simple/" }).ok).toBe(true);
    expect(matchRoute(routes, { host: "evil.example.com", method: "GET", path: "/" }).ok).toBe(
      false,
    );
  });
});
