import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { parseRulesFile } from "./codex-rules.ts";
import type { Diagnostic } from "./diagnostic.ts";
import type { PrefixRule } from "./policy.ts";

function load(text: string) {
  return parseRulesFile(text, "t.rules");
}

function loadError(text: string): Diagnostic {
  try {
    const r = load(text);
    if (r.exampleFailures[0]) return r.exampleFailures[0];
  } catch (err) {
    return err as Diagnostic;
  }
  throw new Error(`expected a load error for: ${text}`);
}

const describeRule = (r: PrefixRule) =>
  [
    r.program,
    ...r.rest.map((p) => p.map((a) => ("literal" in a ? a.literal : a.glob)).join("|")),
  ].join(" ");

describe("Starlark subset used by real rules files", () => {
  it("supports variables, list concatenation, for loops, comprehensions, f-strings, def and if", () => {
    const { policy } = load(`
# comment
GIT = ["git"]
READ_ONLY = ["status", "log", "diff"]
for sub in READ_ONLY:
    prefix_rule(pattern=GIT + [sub], decision="allow")
[prefix_rule(pattern=[tool, "--version"]) for tool in ["node", "npm", "x"] if tool != "x"]
def deny(cmd, why="no"):
    prefix_rule(pattern=cmd, decision="forbidden", justification=f"{why}: {cmd[0]}")
    return len(cmd)
n = deny(["rm", "-rf"])
if n == 2:
    prefix_rule(["two"])
else:
    prefix_rule(["not-two"])
items = []
items += ["a"]
prefix_rule(pattern=items, decision="prompt")
prefix_rule(pattern=["multi",
                    "line"])
prefix_rule(pattern=[r"raw\\d", """triple"""], decision = 'prompt')
`);
    const rules = [...policy.rules()];
    expect(rules.map(describeRule)).toEqual([
      "git status",
      "git log",
      "git diff",
      "node --version",
      "npm --version",
      "rm -rf",
      "two",
      "a",
      "multi line",
      "raw\\d triple",
    ]);
    expect(rules.find((r) => r.program === "rm")?.justification).toBe("no: rm");
    expect(rules.find((r) => r.program === "git")?.source).toEqual({
      file: "t.rules",
      line: 6,
      column: 5,
    });
  });

  it("records host executables (last wins) and network rules", () => {
    const { policy } = load(`
host_executable(name="git", paths=["/usr/bin/git"])
host_executable(name="git", paths=["/opt/homebrew/bin/git", "/usr/bin/git"])
network_rule(host="API.Example.com:443", protocol="https_connect", decision="deny", justification="no")
network_rule("pypi.org", "https", "allow")
`);
    expect(policy.hostExecutables.get("git")).toEqual(["/opt/homebrew/bin/git", "/usr/bin/git"]);
    expect(policy.networkRules.map((n) => [n.host, n.protocol, n.decision])).toEqual([
      ["api.example.com", "https", "deny"],
      ["pypi.org", "https", "allow"],
    ]);
  });

  it("first-position alternatives become one rule per head", () => {
    const rules = [...load(`prefix_rule(pattern=[["python3", "python"], "-V"])`).policy.rules()];
    expect(rules.map((r) => r.program)).toEqual(["python3", "python"]);
  });
});

describe("lambda", () => {
  it("simple lambdas, defaults, closures by reference and sorted(key=)", () => {
    const r = load(
      [
        `rule = lambda p, d="prompt": prefix_rule(pattern=p, decision=d)`,
        `rule(["terraform"])`,
        `rule(["rm"], d="forbidden")`,
        `def tool(name):`,
        `    mk = lambda sub: [name, sub]`,
        `    name = name.upper()`,
        `    return mk("x")`,
        `prefix_rule(pattern=tool("gh"))`,
        `prefix_rule(pattern=sorted(["bb", "a"], key=lambda s: len(s), reverse=True))`,
      ].join("\n"),
    );
    expect(r.policy.rules().map((x) => `${describeRule(x)} → ${x.decision}`)).toEqual([
      "terraform → prompt",
      "rm → forbidden",
      "GH x → allow",
      "bb a → allow",
    ]);
  });

  it("what Codex refuses, or what is beyond the subset, is a located load error", () => {
    expect(loadError(`f = lambda x, x: x`)).toMatchObject({
      line: 1,
      column: 15,
      message: "duplicated parameter name 'x'",
    });
    expect(loadError(`f = lambda *: 1`)).toMatchObject({
      line: 1,
      column: 12,
      message:
        "a bare '*' must be followed by a keyword-only parameter (write '*args' to accept extra positional arguments)",
    });
    expect(loadError(`f = lambda x: f(x)\nf(1)`).message).toMatch(/recursive call to 'lambda'/);
    expect(loadError(`x = "a b".split(sep=" ")`)).toMatchObject({
      line: 1,
      message: "split() got an unexpected keyword argument 'sep'",
    });
    expect(loadError(`x = sorted(["a"], key=None)`).message).toMatch(/not callable/);
  });
});

describe("load errors of the reference table, at file:line:col", () => {
  const cases: [string, string, RegExp][] = [
    [
      "#11 example did not match",
      `prefix_rule(pattern=["make deploy"], match=["make deploy"])`,
      /example did not match/,
    ],
    [
      "#12 not_match matched",
      `prefix_rule(pattern=["rm"], not_match=["rm -i x"])`,
      /not_match example matched/,
    ],
    ["#13 empty pattern", `prefix_rule(pattern=[])`, /pattern cannot be empty/],
    ["#13 empty alternatives", `prefix_rule(pattern=["a", []])`, /alternatives cannot be empty/],
    ["#13 bad element type", `prefix_rule(pattern=[3])`, /must be a string or a list of strings/],
    [
      "#14 invalid decision",
      `prefix_rule(pattern=["rm"], decision="deny")`,
      /invalid decision: deny/,
    ],
    [
      "#15 blank justification",
      `prefix_rule(pattern=["rm"], justification="  ")`,
      /justification cannot be empty/,
    ],
    [
      "#16 invalid shell syntax",
      `prefix_rule(pattern=["rm"], match=["'unterminated"])`,
      /invalid shell syntax/,
    ],
    ["#16 empty example", `prefix_rule(pattern=["rm"], match=[""])`, /example is empty/],
    [
      "#21 host name with a slash",
      `host_executable(name="bin/git", paths=[])`,
      /bare executable name/,
    ],
    ["#21 wrong basename", `host_executable(name="git", paths=["/usr/bin/gitx"])`, /basename/],
    ["#21 relative path", `host_executable(name="git", paths=["git"])`, /must be absolute/],
    ["unknown keyword", `prefix_rule(pattern=["a"], foo=1)`, /unexpected keyword argument 'foo'/],
    ["unknown function", `print("x")`, /'print' is not defined/],
    ["load()", `load("x.star", "y")`, /load\(\) is not supported/],
    ["while", `while True:\n    pass`, /'while' is not supported/],
    ["unterminated call", `prefix_rule(pattern=["a"]`, /expected/],
    [
      "bad protocol",
      `network_rule(host="x.com", protocol="ftp", decision="allow")`,
      /invalid protocol/,
    ],
    [
      "wildcard host",
      `network_rule(host="*.x.com", protocol="https", decision="allow")`,
      /wildcards/,
    ],
    ["recursion", `def f():\n    f()\nf()`, /recursive/],
  ];
  for (const [name, text, re] of cases) {
    it(name, () => {
      const d = loadError(text);
      expect(d.message).toMatch(re);
      expect(d.file).toBe("t.rules");
      expect(d.line).toBeGreaterThanOrEqual(1);
      expect(d.column).toBeGreaterThanOrEqual(1);
    });
  }

  it("points at the offending line and column", () => {
    const d = loadError(`prefix_rule(["ok"])\n\nx = 1\n    prefix_rule(["indented"])`);
    expect([d.line, d.column]).toEqual([4, 1]);
    const e = loadError(`prefix_rule(["ok"])\nprefix_rule(["rm"], decision="nope")`);
    expect([e.line, e.column, e.message]).toEqual([
      2,
      1,
      `invalid decision: nope (expected "allow", "prompt" or "forbidden")`,
    ]);
  });

  it("examples are checked with host executables known by the end of the file", () => {
    const r = load(
      `prefix_rule(pattern=["git"], match=["/usr/bin/git status"])\nhost_executable(name="git", paths=["/usr/bin/git"])`,
    );
    expect(r.exampleFailures).toEqual([]);
    const bad = load(
      `prefix_rule(pattern=["git"], match=["/opt/git status"])\nhost_executable(name="git", paths=["/usr/bin/git"])`,
    );
    expect(bad.exampleFailures[0]?.kind).toBe("example");
  });
});

describe("property: the loader never crashes", () => {
  const piece = fc.constantFrom(
    "prefix_rule(",
    ")",
    "[",
    "]",
    '"a"',
    "'b'",
    ",",
    "pattern=",
    "decision=",
    '"prompt"',
    "\n",
    "    ",
    "for x in ",
    ":",
    "x",
    "+",
    "=",
    "#",
    '"""',
    "f'{x}'",
    "def f():",
    "lambda",
    "lambda x: ",
    "f(x)",
    "key=",
    "if",
    "else",
    "\\",
    "1",
    "(",
    "{",
    "}",
  );
  it("returns a policy or a located diagnostic for any input", () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.array(piece, { maxLength: 60 }).map((p) => p.join("")),
          fc.string({ maxLength: 200 }),
        ),
        (text) => {
          try {
            load(text);
          } catch (err) {
            const d = err as Diagnostic;
            expect(typeof d.message).toBe("string");
            expect(d.line).toBeGreaterThanOrEqual(1);
            expect(d.column).toBeGreaterThanOrEqual(1);
          }
        },
      ),
      { numRuns: 500, seed: 11 },
    );
  });

  it("lambdas and closures cannot escape the step budget", () => {
    const d = loadError(
      `f = lambda n: [i for i in range(n)]\nfor a in range(100000):\n    f(100000)`,
    );
    expect(d.message).toMatch(/step budget/);
  });

  it("a huge loop is stopped by the step budget", () => {
    const d = loadError(`for a in range(100000):\n    for b in range(100000):\n        x = 1`);
    expect(d.message).toMatch(/step budget/);
  });
});
