import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { BOTTLE_MD } from "../test/harness.ts";
import { resolveConfig } from "./config.ts";
import { persistedText, unifiedDiff } from "./persist.ts";
import type { Change } from "./types.ts";

/** Applies a unified diff (as `unifiedDiff` prints it) to `a`. */
function patch(a: string, diff: string): string {
  if (diff === "") return a;
  const src = a.split("\n");
  const out: string[] = [];
  let at = 0;
  const lines = diff.split("\n").slice(2);
  for (let i = 0; i < lines.length; i++) {
    const h = /^@@ -(\d+),(\d+) \+\d+,\d+ @@$/.exec(lines[i] as string);
    if (!h) continue;
    const start = Number(h[1]) - 1;
    while (at < start) out.push(src[at++] as string);
    for (i++; i < lines.length && !(lines[i] as string).startsWith("@@"); i++) {
      const l = lines[i] as string;
      if (l === "" && i === lines.length - 1) break;
      if (l.startsWith(" ")) {
        expect(src[at]).toBe(l.slice(1));
        out.push(src[at++] as string);
      } else if (l.startsWith("-")) {
        expect(src[at]).toBe(l.slice(1));
        at++;
      } else if (l.startsWith("+")) out.push(l.slice(1));
    }
    i--;
  }
  while (at < src.length) out.push(src[at++] as string);
  return out.join("\n");
}

const lineArb = fc.constantFrom("a", "b", "c", "", "  - host: x", "# note");
const textArb = fc.array(lineArb, { maxLength: 30 }).map((ls) => ls.join("\n"));

describe("unifiedDiff", () => {
  it("property: patching the first text with the diff gives the second", () => {
    fc.assert(
      fc.property(textArb, textArb, (a, b) => {
        const d = unifiedDiff("f", a, b);
        expect(patch(a, d)).toBe(b);
        if (a === b) expect(d).toBe("");
      }),
      { numRuns: 400 },
    );
  });

  it("stays linear-ish: one added line in a 20,000-line file walks few diagonals", () => {
    const a = Array.from({ length: 20_000 }, (_, i) => `line ${i}`).join("\n");
    const b = a.replace("line 10000\n", "line 10000\nnew\n");
    const d = unifiedDiff("f", a, b);
    expect(d.split("\n").filter((l) => l.startsWith("+") && !l.startsWith("+++"))).toEqual([
      "+new",
    ]);
  });
});

describe("persistedText", () => {
  const route = (host: string): Change => ({ kind: "route", op: "add", route: { host } });

  it("appends a route, replaces the same host, removes an own route; the rest of the text is untouched", () => {
    const added = persistedText("f.md", BOTTLE_MD, route("data.example.com"));
    expect(added).toBe(
      BOTTLE_MD.replace(
        "supervise  # the operator decides\n",
        "supervise  # the operator decides\n    - host: data.example.com\n",
      ),
    );
    const widened = persistedText("f.md", added, {
      kind: "route",
      op: "widen",
      route: { host: "registry.example.com", matches: [{ methods: ["GET", "HEAD"] }] },
    });
    expect(widened).toContain(
      "    # the package registry\n    - host: registry.example.com\n      matches:\n        - methods:\n            - GET\n            - HEAD\n    - host: hold.example.com",
    );
    const removed = persistedText("f.md", added, {
      kind: "route",
      op: "remove",
      route: { host: "data.example.com" },
    });
    expect(removed).toBe(BOTTLE_MD);
  });

  it("budgets: an existing tokens value is replaced in place, a new one added", () => {
    const withBudget = BOTTLE_MD.replace(
      "exec_policy:",
      "budget:\n  anthropic: { tokens: 1000 }  # small\nexec_policy:",
    );
    const raised = persistedText("f.md", withBudget, {
      kind: "budget",
      provider: "anthropic",
      tokens: 5000,
    });
    expect(raised).toBe(withBudget.replace("tokens: 1000 }", "tokens: 5000 }"));
    const fresh = persistedText("f.md", BOTTLE_MD, {
      kind: "budget",
      provider: "openai",
      tokens: 7,
    });
    expect(fresh).toContain("budget:\n  openai:\n    tokens: 7\n");
    expect(fresh).toContain("# the package registry");
  });

  it("refuses what has no manifest form, an inherited route, and a result that would not validate", () => {
    expect(() =>
      persistedText("f.md", BOTTLE_MD, { kind: "provider", provider: "X", host: "a.com" }),
    ).toThrow(expect.objectContaining({ code: "E_UNSUPPORTED" }));
    expect(() =>
      persistedText("f.md", BOTTLE_MD, {
        kind: "route",
        op: "remove",
        route: { host: "nope.example.com" },
      }),
    ).toThrow(expect.objectContaining({ code: "E_UNSUPPORTED" }));
    expect(() => persistedText("f.md", BOTTLE_MD, route("Not A Host"))).toThrow(
      expect.objectContaining({ code: "E_INVALID_INPUT" }),
    );
    expect(() => persistedText("f.md", "no frontmatter", route("a.example.com"))).toThrow(
      /f\.md:1:1/,
    );
  });

  it("property: any valid host added to the list is the only change, and the result validates", () => {
    const label = fc.stringMatching(/^[a-z][a-z0-9]{0,10}$/);
    fc.assert(
      fc.property(fc.array(label, { minLength: 1, maxLength: 3 }), (labels) => {
        const host = `${labels.join(".")}.example.com`;
        const out = persistedText("f.md", BOTTLE_MD, route(host));
        const d = unifiedDiff("f", BOTTLE_MD, out);
        const changed = d.split("\n").filter((l) => /^[+-](?![+-]{2} )/.test(l));
        expect(changed).toEqual([`+    - host: ${host}`]);
      }),
      { numRuns: 100 },
    );
  });
});

describe("config", () => {
  it("defaults, durations, and key paths in errors", () => {
    expect(resolveConfig({})).toMatchObject({
      timeoutMs: 600_000,
      holdTimeoutMs: 60_000,
      auto: "off",
    });
    expect(
      resolveConfig({ timeout: "90s", rate_limit: { proposals: 3, per: "1h" } }),
    ).toMatchObject({
      timeoutMs: 90_000,
      rateLimit: { proposals: 3, perMs: 3_600_000 },
    });
    expect(() => resolveConfig({ rate_limit: { proposals: 3, per: "soon" } })).toThrow(
      /rate_limit\.per/,
    );
    expect(() => resolveConfig({ providers: [{ name: "X", hosts: ["Bad Host"] }] })).toThrow(
      /providers\[0\]\.hosts\[0\]/,
    );
    expect(() => resolveConfig({ timout: "1m" })).toThrow(/timout/);
  });

  it("property: random input never throws anything but a config error", () => {
    fc.assert(
      fc.property(fc.anything(), (input) => {
        try {
          resolveConfig(input);
        } catch (error) {
          expect((error as { code?: string }).code).toBe("E_CONFIG");
        }
      }),
      { numRuns: 300 },
    );
  });
});
