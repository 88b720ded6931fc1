import { afterEach, describe, expect, it } from "vitest";
import { md, type TempTree, tempTree } from "../test/home.ts";
import { explainAgent, renderExplanation } from "./explain.ts";

let tree: TempTree | undefined;
afterEach(() => {
  tree?.cleanup();
  tree = undefined;
});

const base = md(
  [
    'env:\n  API: https://api.example.com\n  TOKEN: "${GH_TOKEN}"\n  ASK: "?"',
    "egress:",
    "  routes:",
    "    - host: api.github.com",
    "      matches: [{ methods: [GET], paths: [{ type: prefix, value: /repos }] }]",
    "    - host: pypi.org",
    "      matches: [{ headers: [{ name: x-ok, value: '1' }] }]",
    "      dlp: { outbound_on_match: block }",
    "    - host: api.openai.com",
    "      auth: { scheme: Bearer, token_ref: OPENAI_A }",
  ].join("\n"),
);

const child = md(
  [
    "extends: base",
    "egress:",
    "  routes:",
    "    - host: api.github.com",
    "      auth: { scheme: Bearer, token_ref: GH_TOKEN }",
    "      matches: [{ methods: [GET, POST], paths: [{ type: prefix, value: /repos/x }, { type: prefix, value: /gists }] }]",
    "    - host: pypi.org",
    "      dlp: { outbound_on_match: redact, inbound_detectors: false }",
    "    - host: api.openai.com",
    "      auth: { scheme: Bearer, token_ref: OPENAI_B }",
    "    - host: files.example.com",
    "    - host: '*.cdn.example.com'",
  ].join("\n"),
);

describe("explainAgent", () => {
  it("shows the chain, provenance and every way the child widens egress", () => {
    tree = tempTree({
      "home/bottles/base.md": base,
      "home/bottles/child.md": child,
      "home/bottles/fresh.md": md("extends: child\negress:\n  inherit_routes: false"),
      "home/agents/dev.md": md("bottle: fresh\nmodel: m"),
    });
    const ex = explainAgent("dev", { home: tree.home, cwd: tree.cwd, env: {} });
    expect(ex.order).toEqual(["base", "child", "fresh"]);
    expect(ex.tree[0]).toContain("fresh");
    expect(ex.tree[1]).toContain("└─ child");
    expect(ex.tree[2]).toContain("   └─ base");
    const changes = ex.egress.map((c) => `${c.bottle} ${c.kind} ${c.host}: ${c.detail}`);
    expect(changes).toEqual([
      "base new-host api.github.com: GET; /repos*",
      "base new-host pypi.org: all methods; all paths; dlp block",
      "base new-host api.openai.com: all methods; all paths; credential $OPENAI_A (Bearer)",
      "child broader-methods api.github.com: adds POST",
      "child broader-paths api.github.com: adds /gists*",
      "child credentials-attached api.github.com: attaches $GH_TOKEN (Bearer)",
      "child fewer-header-conditions pypi.org: the parent required a header; the child does not",
      "child dlp-weakened pypi.org: inbound detectors turned off, on match block -> redact",
      "child credentials-changed api.openai.com: $OPENAI_A -> $OPENAI_B",
      "child new-host files.example.com: all methods; all paths",
      "child new-host *.cdn.example.com: every subdomain of cdn.example.com; all methods; all paths",
      "fresh routes-dropped *: starts from no inherited routes, dropping api.github.com, pypi.org, api.openai.com, files.example.com, *.cdn.example.com",
    ]);
    const text = renderExplanation(ex);
    expect(text).toContain("env.TOKEN = <from $GH_TOKEN>");
    expect(text).toContain("env.ASK = <asked at launch>");
    expect(text).toContain("model = m  <- ");
    expect(text).toContain("cutoff = cutoff  <- default");
  });

  it("reports a path already covered by the parent's prefix as no widening", () => {
    tree = tempTree({
      "home/bottles/base.md": md(
        "egress:\n  routes:\n    - host: a.example.com\n      matches: [{ methods: [GET, POST], paths: [{ type: prefix, value: /v1 }] }]",
      ),
      "home/bottles/narrow.md": md(
        "extends: base\negress:\n  routes:\n    - host: a.example.com\n      matches: [{ methods: [get], paths: [{ type: exact, value: /v1/models }] }]",
      ),
      "home/agents/a.md": md("bottle: narrow"),
    });
    const ex = explainAgent("a", { home: tree.home, cwd: tree.cwd, env: {} });
    expect(ex.egress.filter((c) => c.bottle === "narrow")).toEqual([]);
    const prov = ex.keys.find((k) => k.path === 'egress.routes["a.example.com"]');
    expect(prov?.source.name).toBe("narrow");
    expect(prov?.overridden.map((o) => o.name)).toEqual(["base"]);
  });
});
