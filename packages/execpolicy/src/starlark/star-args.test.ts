import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { parseRulesFile } from "../codex-rules.ts";
import type { Diagnostic } from "../diagnostic.ts";
import { Builtin, Interpreter, repr, StarlarkRuntimeError, type Value } from "./eval.ts";
import { StarlarkSyntaxError } from "./lexer.ts";
import { parseModule } from "./parser.ts";

/** Runs `text` and returns what it passed to `out(x)`, each printed with `repr`. */
function run(text: string): string[] {
  const printed: string[] = [];
  const out = new Builtin("out", ([x]) => {
    printed.push(repr(x as Value));
    return null;
  });
  new Interpreter([out], "t.rules").run(parseModule(text));
  return printed;
}

/** The located error `text` gives when loaded as a rules file. */
function loadError(text: string): Pick<Diagnostic, "line" | "column" | "message"> {
  try {
    parseRulesFile(text, "t.rules");
  } catch (err) {
    const d = err as Diagnostic;
    return { line: d.line, column: d.column, message: d.message };
  }
  throw new Error(`expected a load error for: ${text}`);
}

const rules = (text: string) =>
  parseRulesFile(text, "t.rules")
    .policy.rules()
    .map((r) =>
      [
        r.program,
        ...r.rest.map((p) => p.map((a) => ("literal" in a ? a.literal : a.glob)).join("|")),
        `→ ${r.decision}`,
        ...(r.justification ? [`(${r.justification})`] : []),
      ].join(" "),
    );

describe("*args, **kwargs and keyword-only parameters", () => {
  it("*args collects extra positional arguments into a tuple", () => {
    expect(
      run(
        [
          "def f(a, *args):",
          "    return [a, args, type(args)]",
          'out(f("x"))',
          'out(f("x", "y", 3))',
        ].join("\n"),
      ),
    ).toEqual(['["x", (), "tuple"]', '["x", ("y", 3), "tuple"]']);
  });

  it("**kwargs collects unknown keywords into a new dict, in call order", () => {
    expect(
      run(
        [
          "def f(a, **kwargs):",
          "    kwargs['added'] = 1",
          "    return [a, kwargs, type(kwargs)]",
          'd = {"d": 3, "c": 4}',
          'out(f("x"))',
          'out(f(b=1, a="x", z=2, **d))',
          "out(d)",
          // a keyword named like the ** parameter is just another key
          "def g(**kw):",
          "    return kw",
          "out(g(kw=1))",
          'out(g(**{"not an identifier": 1, "": 2}))',
        ].join("\n"),
      ),
    ).toEqual([
      '["x", {"added": 1}, "dict"]',
      '["x", {"b": 1, "z": 2, "d": 3, "c": 4, "added": 1}, "dict"]',
      '{"d": 3, "c": 4}',
      '{"kw": 1}',
      '{"not an identifier": 1, "": 2}',
    ]);
  });

  it("parameters after * or *args are keyword-only; required ones may follow optional ones", () => {
    expect(
      run(
        [
          'def f(a, b="B", *, c, d="D"):',
          "    return [a, b, c, d]",
          'out(f("a", c="c"))',
          'out(f("a", "b", d="d", c="c"))',
          "def g(*args, b, c=1, d):",
          "    return [args, b, c, d]",
          "out(g(1, 2, d=4, b=3))",
          "def h(a=1, *args, b):",
          "    return [a, args, b]",
          'out(h(b="b"))',
        ].join("\n"),
      ),
    ).toEqual([
      '["a", "B", "c", "D"]',
      '["a", "b", "c", "d"]',
      "[(1, 2), 3, 1, 4]",
      '[1, (), "b"]',
    ]);
  });

  it("all kinds together, in def and lambda, with trailing commas", () => {
    expect(
      run(
        [
          'def f(a, b="B", *args, c, d="D", **kw,):',
          "    return [a, b, args, c, d, kw]",
          "out(f(1, 2, 3, 4, c=5, e=6))",
          "out(f(c=5, a=1))",
          "l = lambda *a, **k,: [a, k]",
          "out(l(1, x=2))",
          "m = lambda x, *, y=2: [x, y]",
          "out([m(1), m(1, y=3)])",
        ].join("\n"),
      ),
    ).toEqual([
      '[1, 2, (3, 4), 5, "D", {"e": 6}]',
      '[1, "B", (), 5, "D", {}]',
      '[(1,), {"x": 2}]',
      "[[1, 2], [1, 3]]",
    ]);
  });

  it("f(*xs) unpacks a list, a tuple or a dict's keys; f(**d) unpacks a dict; mixed with normal arguments", () => {
    expect(
      run(
        [
          "def g(a, b, c):",
          "    return a + b + c",
          'out(g(*["1", "2", "3"]))',
          'out(g(*("1", "2", "3")))',
          'out(g(*{"1": 0, "2": 0, "3": 0}))',
          'out(g(**{"c": "3", "a": "1", "b": "2"}))',
          'out(g("1", *["2"], **{"c": "3"}))',
          'out(g(c="3", *["1", "2"]))',
          'out(g("1", "2", "3", *[], **{}))',
          "out(g(0, *range(3)[1:]))",
        ].join("\n"),
      ),
    ).toEqual(['"123"', '"123"', '"123"', '"123"', '"123"', '"123"', '"123"', "3"]);
  });

  it("works with builtins: prefix_rule(**common) and friends", () => {
    expect(
      rules(
        [
          'common = {"decision": "prompt", "justification": "ask first"}',
          'prefix_rule(pattern=["git", "push"], **common)',
          'prefix_rule(*[["rm"], "forbidden"])',
          'prefix_rule(**{"pattern": ["npm", "ci"]})',
          'args = [["make"]]',
          'prefix_rule(*args, **{"decision": "prompt"})',
          'prefix_rule(pattern=sorted(*[["b", "a"]], **{"reverse": True}))',
          'prefix_rule(["{}-{x}".format(*["p"], **{"x": "q"}), str(len(*[[1, 2]]))])',
          'prefix_rule([k for k in dict(**{"z": 1})])',
        ].join("\n"),
      ),
    ).toEqual([
      "git push → prompt (ask first)",
      "rm → forbidden",
      "npm ci → allow",
      "make → prompt",
      "b a → allow",
      "p-q 2 → allow",
      "z → allow",
    ]);
    const { policy } = parseRulesFile(
      [
        'host_executable(**{"name": "git", "paths": ["/usr/bin/git"]})',
        'network_rule(*["x.com", "https"], **{"decision": "deny"})',
      ].join("\n"),
      "t.rules",
    );
    expect(policy.hostExecutables.get("git")).toEqual(["/usr/bin/git"]);
    expect(policy.networkRules.map((n) => [n.host, n.decision])).toEqual([["x.com", "deny"]]);
  });
});

describe("bounds", () => {
  it("unpacking a list of 1.6 million items neither overflows the stack nor goes quadratic", () => {
    // No wall-clock bound here (a busy machine misses any): a quadratic unpack of 1.6 million
    // items is ~10^12 steps and cannot finish within the test timeout, which is the bound.
    expect(
      run(
        [
          "x = range(100000)",
          "for _ in range(4):",
          "    x = x + x",
          "def f(*args):",
          "    return len(args)",
          "out(f(*x))",
          "out(len(*[x]))",
        ].join("\n"),
      ),
    ).toEqual(["1600000", "1600000"]);
  });

  it("random text around * and ** gives a value or a located error, never a crash", () => {
    const piece = fc.constantFrom(
      "def f(",
      "f = lambda ",
      "):",
      ": 1",
      "\n    return 1\n",
      "f(",
      "prefix_rule(",
      ")",
      "*",
      "**",
      "args",
      "kw",
      "a",
      "=",
      "1",
      ",",
      '["x"]',
      '{"a": 1}',
      "{1: 2}",
      '"s"',
      "None",
      "\n",
    );
    fc.assert(
      fc.property(fc.array(piece, { maxLength: 30 }), (pieces) => {
        try {
          parseRulesFile(pieces.join(""), "t.rules");
        } catch (err) {
          const d = err as Diagnostic;
          expect(typeof d.message).toBe("string");
          expect(d.line).toBeGreaterThanOrEqual(1);
          expect(d.column).toBeGreaterThanOrEqual(1);
        }
      }),
      { numRuns: 1000, seed: 5 },
    );
  });
});

describe("errors, at file:line:col", () => {
  const BARE =
    "a bare '*' must be followed by a keyword-only parameter (write '*args' to accept extra positional arguments)";
  const cases: [string, string, [number, number, string]][] = [
    // parameter lists (syntax errors: reported even in code that never runs)
    ["bare * last", "def f(*):\n    pass", [1, 7, BARE]],
    ["bare * then trailing comma", "def f(*,):\n    pass", [1, 7, BARE]],
    ["bare * then **kwargs", "def f(a, *, **kw):\n    pass", [1, 10, BARE]],
    ["bare * in a lambda", "f = lambda *: 1", [1, 12, BARE]],
    [
      "two *args",
      "def f(*a, *b):\n    pass",
      [1, 11, "only one '*' or '*args' is allowed in a parameter list"],
    ],
    [
      "* after *args",
      "def f(*a, b, *):\n    pass",
      [1, 14, "only one '*' or '*args' is allowed in a parameter list"],
    ],
    [
      "parameter after **kwargs",
      "def f(**kw, a):\n    pass",
      [1, 13, "'**kw' must be the last parameter; move it to the end"],
    ],
    [
      "*args after **kwargs",
      "f = lambda **kw, *a: 1",
      [1, 18, "'**kw' must be the last parameter; move it to the end"],
    ],
    [
      "two **kwargs",
      "def f(**a, **b):\n    pass",
      [1, 12, "'**a' must be the last parameter; move it to the end"],
    ],
    [
      "*args named like a parameter",
      "def f(a, *a):\n    pass",
      [1, 11, "duplicated parameter name 'a'"],
    ],
    [
      "**kwargs named like a parameter",
      "def f(a, **a):\n    pass",
      [1, 12, "duplicated parameter name 'a'"],
    ],
    [
      "required positional after optional, before *",
      "def f(a=1, b, *c):\n    pass",
      [1, 12, "parameter 'b' without a default follows a parameter with one"],
    ],
    ["*args with a default", "def f(*a=1):\n    pass", [1, 9, "expected ',', found '='"]],
    [
      "** without a name",
      "def f(**):\n    pass",
      [1, 9, "expected a parameter name after '**', found ')'"],
    ],
    // call sites (syntax errors)
    [
      "positional after *args",
      'if False:\n    f(*x, "b")',
      [2, 11, "positional argument follows *args or **kwargs; move it before them"],
    ],
    [
      "positional after **kwargs",
      "f(**d, 1)",
      [1, 8, "positional argument follows *args or **kwargs; move it before them"],
    ],
    [
      "keyword after *args",
      "f(*x, b=1)",
      [1, 7, "keyword argument follows *args or **kwargs; move it before them"],
    ],
    [
      "keyword after **kwargs",
      'prefix_rule(**{"pattern": ["a"]}, decision="forbidden")',
      [1, 35, "keyword argument follows *args or **kwargs; move it before them"],
    ],
    [
      "*args after **kwargs",
      "f(**d, *x)",
      [1, 8, "only one *args is allowed in a call, and it must come before **kwargs"],
    ],
    [
      "two *args",
      "f(*x, *y)",
      [1, 7, "only one *args is allowed in a call, and it must come before **kwargs"],
    ],
    ["two **kwargs", "f(**d, **e)", [1, 8, "only one **kwargs is allowed in a call"]],
    // call sites (run-time errors)
    [
      "*string (strings are not iterable)",
      'def f(*a):\n    pass\nf(*"ab")',
      [3, 4, "the argument after * must be a list, tuple or dict, got string"],
    ],
    [
      "*int",
      "def f(*a):\n    pass\nf(*1)",
      [3, 4, "the argument after * must be a list, tuple or dict, got int"],
    ],
    [
      "*None",
      "prefix_rule(*None)",
      [1, 14, "the argument after * must be a list, tuple or dict, got NoneType"],
    ],
    [
      "**list",
      'def f(**k):\n    pass\nf(**["a"])',
      [3, 5, "the argument after ** must be a dict, got list"],
    ],
    [
      "**None",
      "prefix_rule(**None)",
      [1, 15, "the argument after ** must be a dict, got NoneType"],
    ],
    [
      "** with a non-string key",
      'def f(**k):\n    pass\nf(**{1: "a"})',
      [3, 5, "keywords in the dict after ** must be strings, got int 1"],
    ],
    [
      "keyword and ** give the same name",
      'def f(x, **kw):\n    pass\nf(x="a", **{"x": "b"})',
      [3, 1, "f() got multiple values for parameter 'x'"],
    ],
    [
      "positional and ** give the same parameter",
      'def f(a, b):\n    pass\nf("a", **{"a": "a", "b": "b"})',
      [3, 1, "f() got multiple values for parameter 'a'"],
    ],
    [
      "*args and ** give the same parameter",
      'def f(a, b):\n    pass\nf("a", *["b"], **{"b": 1})',
      [3, 1, "f() got multiple values for parameter 'b'"],
    ],
    [
      "positional and keyword give the same parameter",
      'def f(a, **kw):\n    pass\nf("x", a=1)',
      [3, 1, "f() got multiple values for parameter 'a'"],
    ],
    [
      "builtin: positional and ** give the same parameter",
      'prefix_rule(["a"], **{"pattern": ["a"]})',
      [1, 1, "prefix_rule() got multiple values for parameter 'pattern'"],
    ],
    [
      "builtin: unknown keyword through **",
      'x = len(**{"x": 1})',
      [1, 5, "len() got an unexpected keyword argument 'x'"],
    ],
    [
      "builtin: too many positional arguments through *",
      'prefix_rule(["a"], *[1, 2, 3, 4, 5, 6, 7])',
      [1, 1, "prefix_rule() takes at most 6 positional arguments, got 8"],
    ],
    [
      "too many positional arguments through *",
      'def f(a, b):\n    pass\nf(*["a", "b", "c"])',
      [3, 1, "f() takes 2 positional arguments but 3 were given"],
    ],
    [
      "keyword-only parameter given by position",
      "def f(a, *, b):\n    pass\nf(1, 2)",
      [3, 1, "f() takes 1 positional argument but 2 were given"],
    ],
    [
      "missing keyword-only parameter",
      "def f(a, *, b):\n    pass\nf(1)",
      [3, 1, "f() missing keyword-only argument 'b'"],
    ],
    [
      "missing positional parameter through *",
      'def f(a, b):\n    pass\nf(*["a"])',
      [3, 1, "f() missing argument 'b'"],
    ],
    [
      "the *args parameter cannot be given by keyword",
      "def f(*args):\n    pass\nf(args=1)",
      [3, 1, "f() got an unexpected keyword argument 'args'"],
    ],
    [
      "unknown keyword through ** without **kwargs",
      'def f(a):\n    pass\nf(**{"a": 1, "c": 2})',
      [3, 1, "f() got an unexpected keyword argument 'c'"],
    ],
    [
      "*args is a tuple",
      "def f(*a):\n    a.append(1)\nf()",
      [2, 6, "tuple has no method 'append'"],
    ],
  ];
  for (const [name, text, [line, column, message]] of cases) {
    it(name, () => {
      expect(loadError(text)).toEqual({ line, column, message });
    });
  }
});

describe("property: f(*xs, **d) is f(xs[0], …, k=v, …)", () => {
  /** The parameter names of a signature: `a=1, *rest, c` → a, rest, c. */
  const names = (signature: string) =>
    signature
      .split(",")
      .map((p) => p.trim().replace(/^\*+/, "").replace(/=.*$/, ""))
      .filter((p) => p !== "");
  const SIGNATURES = [
    "a, b",
    'a, b="B", *rest',
    'a, b="B", *rest, **kw',
    "*args, **kwargs",
    'a, *, c, d="D"',
    "a=1, *rest, c",
    "**kw",
  ];
  const value = fc.constantFrom('"x"', '"y"', "1", "None", "[]", "(2,)");
  const keyword = fc.constantFrom("a", "b", "c", "d", "rest", "kw", "z");
  it("unpacked and written-out calls give the same value or the same error", () => {
    let values = 0;
    let errors = 0;
    fc.assert(
      fc.property(
        fc.constantFrom(...SIGNATURES),
        fc.boolean(),
        fc.array(value, { maxLength: 4 }),
        fc.array(value, { maxLength: 4 }),
        fc.uniqueArray(fc.tuple(keyword, value), { maxLength: 4, selector: ([k]) => k }),
        fc.nat(4),
        (signature, isLambda, positional, starred, keywords, split) => {
          const named = keywords.slice(0, split);
          const dict = keywords.slice(split);
          const body = `[${names(signature).join(", ")}]`;
          const def = isLambda
            ? `f = lambda ${signature}: ${body}`
            : `def f(${signature}):\n    return ${body}`;
          const kw = (pairs: [string, string][]) => pairs.map(([k, v]) => `${k}=${v}`);
          const unpacked = [
            ...positional,
            ...kw(named),
            `*[${starred.join(", ")}]`,
            `**{${dict.map(([k, v]) => `"${k}": ${v}`).join(", ")}}`,
          ];
          const written = [...positional, ...starred, ...kw(named), ...kw(dict)];
          const outcome = (args: string[]) => {
            try {
              return run(`${def}\nout(f(${args.join(", ")}))`);
            } catch (err) {
              if (err instanceof StarlarkRuntimeError || err instanceof StarlarkSyntaxError)
                return `error: ${err.message}`;
              throw err;
            }
          };
          const expected = outcome(written);
          expect(outcome(unpacked)).toEqual(expected);
          if (typeof expected === "string") errors++;
          else values++;
        },
      ),
      { numRuns: 400, seed: 7 },
    );
    // both outcomes must be exercised, not only binding errors
    expect(values).toBeGreaterThan(50);
    expect(errors).toBeGreaterThan(50);
  });
});

describe("growing and converting lists", () => {
  it("+= and extend() take a list of a million items (no stack overflow)", () => {
    const text = [
      "big = range(62500)",
      "for _ in range(4):",
      "    big = big + big",
      "y = []",
      "y += big",
      "z = []",
      "z.extend(big)",
      "out([len(y), len(z)])",
    ].join("\n");
    expect(run(text)).toEqual(["[1000000, 1000000]"]);
  });

  it("x += x and x.extend(x) double the list once", () => {
    expect(run(["x = [1, 2]", "x += x", "out(x)", "x.extend(x)", "out(x)"].join("\n"))).toEqual([
      "[1, 2, 1, 2]",
      "[1, 2, 1, 2, 1, 2, 1, 2]",
    ]);
  });

  it("list() and tuple() of a dict are its keys, in insertion order", () => {
    expect(run(['d = {"b": 1, "a": 2}', "out(list(d))", "out(tuple(d))"].join("\n"))).toEqual([
      '["b", "a"]',
      '("b", "a")',
    ]);
  });
});
