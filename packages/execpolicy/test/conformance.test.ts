/**
 * Conformance with the real `codex execpolicy check` (the @openai/codex dev dependency):
 * for argv input, `--format codex` output must be byte-identical.
 */
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { renderCodex } from "../src/codex-format.ts";
import { loadPolicySources } from "../src/load-sources.ts";
import { runCodexCheck } from "./codex-binary.ts";

let dir: string;
let cwd: string;
let env: NodeJS.ProcessEnv;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "execpolicy-conf-"));
  cwd = join(dir, "work");
  await import("node:fs/promises").then((fs) => fs.mkdir(cwd, { recursive: true }));
  env = { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: dir, CODEX_HOME: join(dir, ".codex") };
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

let counter = 0;
async function ours(rules: string[], argv: string[], resolve: boolean): Promise<string> {
  const loaded = loadPolicySources(rules.map((text, i) => ({ path: `r${i}.rules`, text })));
  expect(loaded.errors).toEqual([]);
  return `${renderCodex(loaded.policy.match(argv, { resolveHostExecutables: resolve, cwd, home: dir }))}\n`;
}

async function theirs(rules: string[], argv: string[], resolve: boolean): Promise<string> {
  const files: string[] = [];
  for (const text of rules) {
    const f = join(dir, `case-${counter++}.rules`);
    await writeFile(f, text);
    files.push(f);
  }
  const r = await runCodexCheck(files, argv, { resolve, cwd, env });
  if (r.code !== 0)
    throw new Error(`codex failed (${r.code}): ${r.stderr}\nrules:\n${rules.join("\n---\n")}`);
  return r.stdout;
}

const REFERENCE_ARGV_CASES: { name: string; rules: string; argv: string[]; resolve?: boolean }[] = [
  {
    name: "#1 prefix match",
    rules: `prefix_rule(pattern=["cargo","test"])`,
    argv: ["cargo", "test", "--all"],
  },
  { name: "#2 no match", rules: `prefix_rule(pattern=["cargo","test"])`, argv: ["cargo", "build"] },
  {
    name: "#3 command shorter than pattern",
    rules: `prefix_rule(pattern=["cargo","test","--release"])`,
    argv: ["cargo", "test"],
  },
  {
    name: "#4 alternatives (match)",
    rules: `prefix_rule(pattern=["pnpm",["add","install"]], decision="prompt")`,
    argv: ["pnpm", "install", "x"],
  },
  {
    name: "#4 alternatives (no match)",
    rules: `prefix_rule(pattern=["pnpm",["add","install"]], decision="prompt")`,
    argv: ["pnpm", "remove", "x"],
  },
  {
    name: "#5 first-position alternatives",
    rules: `prefix_rule(pattern=[["python3","python"],"-V"])`,
    argv: ["python", "-V"],
  },
  {
    name: "#6 independent positions",
    rules: `prefix_rule(pattern=["npm",["ci","install"],["--silent","--quiet"]])`,
    argv: ["npm", "install", "--quiet", "p"],
  },
  {
    name: "#7 strictest wins",
    rules: `prefix_rule(pattern=["docker"], decision="prompt")\nprefix_rule(pattern=["docker","rm"], decision="forbidden")`,
    argv: ["docker", "rm", "-f", "c1"],
  },
  {
    name: "#7 broader rule only",
    rules: `prefix_rule(pattern=["docker"], decision="prompt")\nprefix_rule(pattern=["docker","rm"], decision="forbidden")`,
    argv: ["docker", "ps"],
  },
  {
    name: "#8 no exceptions in Codex",
    rules: `prefix_rule(pattern=["terraform"], decision="prompt")\nprefix_rule(pattern=["terraform","fmt"])`,
    argv: ["terraform", "fmt"],
  },
  {
    name: "#9 option before subcommand",
    rules: `prefix_rule(pattern=["git","push"], decision="forbidden")`,
    argv: ["git", "-c", "a=b", "push"],
  },
  {
    name: "#10 no flag normalization",
    rules: `prefix_rule(pattern=["ls","-la"])`,
    argv: ["ls", "-al"],
  },
  {
    name: "#17 absolute path, CLI default",
    rules: `prefix_rule(pattern=["git"], decision="prompt")`,
    argv: ["/usr/bin/git", "status"],
  },
  {
    name: "#18 absolute path resolved",
    rules: `prefix_rule(pattern=["git"], decision="prompt")`,
    argv: ["/usr/bin/git", "status"],
    resolve: true,
  },
  {
    name: "#19 host_executable gates paths",
    rules: `prefix_rule(pattern=["git"], decision="prompt")\nhost_executable(name="git", paths=["/usr/bin/git"])`,
    argv: ["/opt/homebrew/bin/git", "status"],
    resolve: true,
  },
  {
    name: "#19 listed path allowed",
    rules: `prefix_rule(pattern=["git"], decision="prompt")\nhost_executable(name="git", paths=["/usr/bin/git"])`,
    argv: ["/usr/bin/git", "status"],
    resolve: true,
  },
  {
    name: "#19 empty paths block all",
    rules: `prefix_rule(pattern=["git"], decision="prompt")\nhost_executable(name="git", paths=[])`,
    argv: ["/usr/bin/git", "status"],
    resolve: true,
  },
  {
    name: "#20 exact match stops fallback",
    rules: `prefix_rule(pattern=["/usr/bin/git"])\nprefix_rule(pattern=["git"], decision="prompt")`,
    argv: ["/usr/bin/git", "log"],
    resolve: true,
  },
  {
    name: "#28 env prefix is raw argv",
    rules: `prefix_rule(pattern=["npm"])`,
    argv: ["env", "CI=1", "npm", "test"],
  },
  {
    name: "#35 bash -x -c is raw argv",
    rules: `prefix_rule(pattern=["ls"])\nprefix_rule(pattern=["bash"], decision="prompt")`,
    argv: ["bash", "-x", "-c", "ls"],
  },
  {
    name: "#35 empty script",
    rules: `prefix_rule(pattern=["bash", "-lc"], decision="prompt")`,
    argv: ["bash", "-lc", ""],
  },
  {
    name: "#37 justification",
    rules: `prefix_rule(pattern=["rm"], decision="forbidden", justification="use trash")`,
    argv: ["rm", "-rf", "d"],
  },
  {
    name: "relative program path",
    rules: `prefix_rule(pattern=["git"], decision="prompt")`,
    argv: ["./bin/../git", "status"],
    resolve: true,
  },
];

describe("reference table, argv cases", () => {
  for (const c of REFERENCE_ARGV_CASES) {
    it(c.name, async () => {
      const expected = await theirs([c.rules], c.argv, c.resolve === true);
      expect(await ours([c.rules], c.argv, c.resolve === true)).toBe(expected);
    });
  }
});

describe("examples/policy.rules loads in Codex and gives the same answers", () => {
  const argvs = [
    ["git", "status"],
    ["git", "push", "origin", "main"],
    ["rm", "-rf", "/"],
    ["pnpm", "install", "left-pad"],
    ["curl", "https://example.com"],
    ["/usr/bin/git", "log"],
    ["/opt/git", "log"],
    ["sudo", "ls"],
  ];
  for (const argv of argvs) {
    it(argv.join(" "), async () => {
      const text = await readFile(
        fileURLToPath(new URL("../examples/policy.rules", import.meta.url)),
        "utf8",
      );
      const resolve = argv[0]?.startsWith("/") === true;
      expect(await ours([text], argv, resolve)).toBe(await theirs([text], argv, resolve));
    });
  }
});

// ---- generated cases ----------------------------------------------------------------------

const PROGRAMS = ["git", "npm", "rm", "b"] as const;
const ARGS = [
  "status",
  "push",
  "-f",
  "--all",
  "x",
  "test",
  "origin",
  "-c",
  "a=b",
  "é",
  "with space",
] as const;
const JUSTIFICATIONS = ["no", "use trash", 'has "quotes" and \\ backslash', "ünïcode ✓"];
const PATHS = (name: string) => [
  `/usr/bin/${name}`,
  `/opt/homebrew/bin/${name}`,
  `/usr/local/bin/${name}`,
];

const str = (s: string) => JSON.stringify(s);
const position = fc.oneof(
  fc.constantFrom(...ARGS).map((a) => str(a)),
  fc
    .uniqueArray(fc.constantFrom(...ARGS), { minLength: 1, maxLength: 3 })
    .map((alts) => `[${alts.map(str).join(", ")}]`),
);
const head = fc.oneof(
  fc.constantFrom(...PROGRAMS).map((p) => str(p)),
  fc
    .uniqueArray(fc.constantFrom(...PROGRAMS), { minLength: 1, maxLength: 2 })
    .map((alts) => `[${alts.map(str).join(", ")}]`),
  fc.constantFrom(...PROGRAMS).map((p) => str(`/usr/bin/${p}`)),
);
const prefixRule = fc
  .record({
    head,
    rest: fc.array(position, { maxLength: 3 }),
    decision: fc.constantFrom(undefined, "allow", "prompt", "forbidden"),
    justification: fc.option(fc.constantFrom(...JUSTIFICATIONS), { nil: undefined }),
    positional: fc.boolean(),
  })
  .map(({ head, rest, decision, justification, positional }) => {
    const pattern = `[${[head, ...rest].join(", ")}]`;
    if (positional && justification === undefined) {
      return `prefix_rule(${pattern}${decision ? `, ${str(decision)}` : ""})`;
    }
    const parts = [`pattern=${pattern}`];
    if (decision) parts.push(`decision=${str(decision)}`);
    if (justification) parts.push(`justification=${str(justification)}`);
    return `prefix_rule(${parts.join(", ")})`;
  });
const hostExecutable = fc
  .constantFrom(...PROGRAMS)
  .chain((name) =>
    fc
      .subarray(PATHS(name))
      .map((paths) => `host_executable(name=${str(name)}, paths=[${paths.map(str).join(", ")}])`),
  );
const loopRule = fc
  .record({
    progs: fc.uniqueArray(fc.constantFrom(...PROGRAMS), { minLength: 1, maxLength: 3 }),
    arg: fc.constantFrom(...ARGS),
    decision: fc.constantFrom("allow", "prompt", "forbidden"),
  })
  .map(
    ({ progs, arg, decision }) =>
      `for p in [${progs.map(str).join(", ")}]:\n    prefix_rule(pattern=[p, ${str(arg)}], decision=${str(decision)})`,
  );
const ruleFile = fc
  .array(
    fc.oneof(
      { weight: 6, arbitrary: prefixRule },
      { weight: 1, arbitrary: hostExecutable },
      { weight: 1, arbitrary: loopRule },
    ),
    { minLength: 1, maxLength: 8 },
  )
  .map((lines) => lines.join("\n"));
const program = fc.oneof(
  { weight: 5, arbitrary: fc.constantFrom(...PROGRAMS) },
  {
    weight: 3,
    arbitrary: fc
      .constantFrom(...PROGRAMS)
      .chain((p) => fc.constantFrom(...PATHS(p), `./${p}`, `../${p}`, `bin/${p}`, `~/${p}`)),
  },
);
const argv = fc
  .tuple(program, fc.array(fc.constantFrom(...ARGS), { maxLength: 5 }))
  .map(([p, a]) => [p, ...a]);

describe("generated cases (fast-check × real codex)", () => {
  it("matches codex execpolicy check on 320 random rule files × argv", async () => {
    let runs = 0;
    let withDecision = 0;
    let resolved = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(ruleFile, { minLength: 1, maxLength: 2 }),
        argv,
        fc.boolean(),
        async (files, cmd, resolve) => {
          runs++;
          const expected = await theirs(files, cmd, resolve);
          expect(await ours(files, cmd, resolve)).toBe(expected);
          if (expected.includes('"decision"')) withDecision++;
          if (expected.includes("resolvedProgram")) resolved++;
        },
      ),
      { numRuns: 320, seed: Number(process.env.EXECPOLICY_CONFORMANCE_SEED ?? 20260322) },
    );
    expect(runs).toBeGreaterThanOrEqual(300);
    // the generator must exercise matches and host-executable resolution, not only misses
    expect(withDecision).toBeGreaterThan(60);
    expect(resolved).toBeGreaterThan(10);
  }, 900_000); // hang guard: hundreds of real codex runs on a busy machine
});

// ---- load acceptance ----------------------------------------------------------------------

const callPiece = fc.oneof(
  prefixRule,
  hostExecutable,
  fc.constantFrom(
    `prefix_rule(pattern=[])`,
    `prefix_rule(pattern=["a", []])`,
    `prefix_rule(pattern=[3])`,
    `prefix_rule(pattern=["rm"], decision="deny")`,
    `prefix_rule(pattern=["rm"], justification="  ")`,
    `prefix_rule(pattern=["rm"], match=["'unterminated"])`,
    `prefix_rule(pattern=["rm"], match=[""])`,
    `prefix_rule(pattern=["make deploy"], match=["make deploy"])`,
    `prefix_rule(pattern=["rm"], not_match=["rm -i x"])`,
    `prefix_rule(pattern=["git"], match=["git status", ["git", "log"]], not_match=["gitx"])`,
    `prefix_rule(pattern=["git", "x"], match=["/usr/bin/git x"])`,
    `host_executable(name="bin/git", paths=[])`,
    `host_executable(name="git", paths=["/usr/bin/gitx"])`,
    `host_executable(name="git", paths=["git"])`,
    `network_rule(host="example.com", protocol="https", decision="deny")`,
    `network_rule(host="Example.com:8443", protocol="http-connect", decision="allow", justification="j")`,
    `network_rule(host="*.x.com", protocol="https", decision="allow")`,
    `network_rule(host="x.com", protocol="ftp", decision="allow")`,
    `prefix_rule(pattern=["a"], foo=1)`,
    `prefix_rule(["a"], "prompt", ["a b"], ["b"], "why")`,
    `x = ["a"]\nprefix_rule(pattern=x + ["b"])`,
    `prefix_rule(pattern=["a"], decision=None)`,
    `prefix_rule(pattern=["a"], justification=3)`,
    `prefix_rule(pattern=["a"], canonical_matching=True)`,
    `prefix_rule(["a"], "allow", [], [], "j", True)`,
    `prefix_rule(pattern=["a"], canonical_matching="x")`,
    `prefix_rule(pattern=["a"], canonical_matching=None)`,
    `prefix_rule(["a"], "allow", [], [], "j", True, 1)`,
    `prefix_rule(pattern=["a"], match=None)`,
    `prefix_rule(pattern=["a"], justification=None)`,
    `prefix_rule(pattern=("a", "b"))`,
    `prefix_rule(pattern=["a", ("b", "c")])`,
    `prefix_rule(pattern=["a"], match=("a",))`,
    `network_rule("x.com", "https", "deny", None)`,
    `network_rule(host="x.com", protocol="https")`,
    `host_executable("a", None)`,
    `host_executable(name="a")`,
    `x = [1]\nfor i in x:\n    x.append(2)`,
    `x = [1]\nfor i in list(x):\n    x.append(2)`,
    `x = 3 / 2\ny = x * 2`,
    `x = {"a": 1}\nx["b"] = 2\nprefix_rule(pattern=[k for k in x])`,
    `x = [1]\nx[0] = 2`,
    `x = type(1)\nprefix_rule(pattern=[x])`,
    `if True:\n    prefix_rule(["a"])\nelse:\n    prefix_rule([])`,
    `x = [a for a in "ab"]`,
    `x = 2 ** 3`,
    `x = {"a", "b"}`,
    `prefix_rule(["a" "b"])`,
    `fail("stop")`,
  ),
);

describe("load acceptance matches codex", () => {
  it("a file loads in bottlekit exactly when it loads in codex (150 generated files)", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(callPiece, { minLength: 1, maxLength: 4 }), async (calls) => {
        const text = calls.join("\n");
        const f = join(dir, `accept-${counter++}.rules`);
        await writeFile(f, text);
        const r = await runCodexCheck([f], ["a"], { cwd, env });
        const loaded = loadPolicySources([{ path: f, text }]);
        expect(
          loaded.errors.length === 0,
          `${text}\n--- codex: ${r.stderr.split("\n").slice(0, 4).join(" ")}`,
        ).toBe(r.code === 0);
      }),
      { numRuns: 150, seed: 31337 },
    );
  }, 900_000); // hang guard: hundreds of real codex runs on a busy machine
});

describe("Starlark features give the same rules as codex", () => {
  const files: [string, string[]][] = [
    [
      `for c in ["git status", "git log -p"]:\n    prefix_rule(pattern=c.split())`,
      ["git", "log", "-p", "x"],
    ],
    [
      `prefix_rule(pattern=["{}-{}".format("a", 1), "%s:%d" % ("b", 2)], justification="x %s" % "y")`,
      ["a-1", "b:2"],
    ],
    [
      `cmds = []\nfor t in ["ls", "cat"]:\n    cmds.append([t])\ncmds.extend([["rm", "-rf"]])\n[prefix_rule(pattern=c, decision="prompt") for c in cmds]`,
      ["rm", "-rf", "/"],
    ],
    [
      `D = {"rm": "forbidden", "ls": "allow"}\nfor k, v in D.items():\n    prefix_rule(pattern=[k], decision=v)`,
      ["rm", "x"],
    ],
    [
      `def rule(p, d="prompt", j=None):\n    if j:\n        prefix_rule(pattern=p, decision=d, justification=j)\n    else:\n        prefix_rule(pattern=p, decision=d)\nrule(["git", "push"], "forbidden", "no")\nrule(["git"])`,
      ["git", "push"],
    ],
    [
      `for i, t in enumerate(sorted(["b", "a"])):\n    prefix_rule(pattern=[t, str(i)])`,
      ["a", "0"],
    ],
    [
      `prefix_rule(pattern=[" ".join(["x", "y"]).upper(), "a,b".split(",")[1]], decision="prompt" if len("ab") == 2 else "allow")`,
      ["X Y", "b"],
    ],
    [`P = ("git", "x")\nprefix_rule(pattern=list(P) + [f"{P[1]}y"])`, ["git", "x", "xy"]],
    [
      `C = ["npm", "run", "test", "lint"]\nprefix_rule(pattern=C[:2] + [C[2:]], decision="prompt")\nprefix_rule(pattern=[C[-1][1:]])`,
      ["npm", "run", "lint"],
    ],
    [
      `D = {}\nD["git"] = "prompt"\nD["rm"] = "forbidden"\nfor k, v in D.items():\n    prefix_rule(pattern=[k], decision=v)\nprefix_rule(pattern=[type(1), str(7 // 2), repr("x")])`,
      ["int", "3", '"x"'],
    ],
    [
      `d = {"git": 1, "npm": 2}\nx = ["a"]\nx += x\nx.extend(x)\nprefix_rule(pattern=[list(d), "status"], decision="forbidden", justification="n=%d t=%s" % (len(x), tuple(d)))`,
      ["npm", "status"],
    ],
  ];
  for (const [text, argv] of files) {
    it(text.split("\n")[0] ?? text, async () => {
      expect(await ours([text], argv, false)).toBe(await theirs([text], argv, false));
    });
  }
});

/** Ours and Codex on the very same file path (Starlark prints user functions as `path.name`). */
async function samePath(text: string, argv: string[]) {
  const f = join(dir, `same-${counter++}.rules`);
  await writeFile(f, text);
  const r = await runCodexCheck([f], argv, { cwd, env });
  const loaded = loadPolicySources([{ path: f, text }]);
  return {
    codexLoaded: r.code === 0,
    codex: r.code === 0 ? r.stdout : r.stderr.split("\n").slice(0, 8).join("\n"),
    oursLoaded: loaded.errors.length === 0,
    ours:
      loaded.errors.length === 0
        ? `${renderCodex(loaded.policy.match(argv, { cwd, home: dir }))}\n`
        : JSON.stringify(loaded.errors),
  };
}

/** One test per file: it loads in codex, and bottlekit prints the same answer (a rule matched). */
function itLoadsAsInCodex(files: [string, string[]][]): void {
  for (const [text, argv] of files) {
    it(text.split("\n")[0] ?? text, async () => {
      const r = await samePath(text, argv);
      expect(r.codexLoaded, r.codex).toBe(true);
      expect(r.ours).toBe(r.codex);
      expect(JSON.parse(r.ours).matchedRules.length).toBeGreaterThan(0);
    });
  }
}

/** One test per file: neither codex nor bottlekit loads it (named by its first or last line). */
function itRejectedByBoth(files: string[], name: "first" | "last", argv = ["git"]): void {
  for (const text of files) {
    const lines = text.split("\n");
    it(`rejected by both: ${name === "first" ? lines[0] : lines[lines.length - 1]}`, async () => {
      const r = await samePath(text, argv);
      expect(r.codexLoaded, r.codex).toBe(false);
      expect(r.oursLoaded, r.ours).toBe(false);
    });
  }
}

describe("lambda, closures and keyword arguments give the same rules as codex", () => {
  const same: [string, string[]][] = [
    [`f = lambda x: ["git", x]\nprefix_rule(pattern=f("status"))`, ["git", "status"]],
    [
      `rule = lambda p, d="prompt": prefix_rule(pattern=p, decision=d)\nrule(["git"])\nrule(["rm"], d="forbidden")`,
      ["rm", "-rf"],
    ],
    [`f = lambda x: lambda y: [x, y]\nprefix_rule(pattern=f("git")("log"))`, ["git", "log"]],
    [`prefix_rule(pattern=["git"], decision=(lambda: "prompt")())`, ["git"]],
    // closures see the enclosing variables by reference, at call time
    [
      `def outer(p):\n    f = lambda x: [p, x]\n    p = "npm"\n    return f("test")\nprefix_rule(pattern=outer("git"))`,
      ["npm", "test"],
    ],
    [
      `def outer(p):\n    def inner(x):\n        return [p, x]\n    return inner("status")\nprefix_rule(pattern=outer("git"))`,
      ["git", "status"],
    ],
    [
      `f = lambda x: [n, x]\nn = "git"\nprefix_rule(pattern=f("push"), decision="forbidden")`,
      ["git", "push"],
    ],
    [`fs = [lambda: i for i in ["git", "ls"]]\nprefix_rule(pattern=[fs[0]()])`, ["ls"]],
    [
      `T = sorted(["b1", "a", "b2"], key=lambda s: s[0], reverse=True)\nprefix_rule(pattern=T)`,
      ["b1", "b2", "a"],
    ],
    [`prefix_rule(pattern=sorted(["ccc", "a", "bb"], key=len))`, ["a", "bb", "ccc"]],
    [`prefix_rule(pattern=sorted(["a", "b"], reverse=True))`, ["b", "a"]],
    [
      `f = lambda x: [x]\ndef g():\n    pass\nprefix_rule(pattern=f("x"), justification=str(f) + " " + repr(g) + " " + str(len) + " " + str([f]))`,
      ["x"],
    ],
    [
      `prefix_rule(pattern=["{a}".format(a="git"), "{0}{0}".format("x"), "{{{}}}".format("y"), "{a!r}".format(a="q")])`,
      ["git", "xx", "{y}", '"q"'],
    ],
    [
      `prefix_rule(pattern=[str(i) + t for i, t in enumerate(["a", "b"], 3)] + [str(i) for i, _ in enumerate(["c"], start=7)])`,
      ["3a", "4b", "7"],
    ],
    [
      `prefix_rule(pattern=["xxgitxx".strip("x"), "--a--".lstrip("-"), "b..".rstrip("."), " c ".strip()])`,
      ["git", "a--", "b", "c"],
    ],
    [
      `prefix_rule(pattern=["git"], decision="prompt" if "git push".startswith(("hg", "git")) and "a.py".endswith((".rb", ".py")) else "allow")`,
      ["git"],
    ],
    [
      `prefix_rule(pattern=["%x-%o-%d%%" % (255, 8, -3), "%s" % ("a",), "%r" % "b"])`,
      ["ff-10--3%", "a", '"b"'],
    ],
  ];
  itLoadsAsInCodex(same);

  const rejectedByBoth = [
    `f = lambda x, x: [x]`,
    `f = lambda x=1, y: [x]\nf(1, 2)`,
    `f = lambda x: f(x)\nprefix_rule(pattern=f("git"))`,
    `f = lambda x: [x, y]\nprefix_rule(pattern=f("git"))`,
    `f = lambda x: [x]\nprefix_rule(pattern=f())`,
    `f = lambda x: x = 1`,
    `prefix_rule(pattern=sorted(["b", "a"], reverse=1))`,
    `prefix_rule(pattern=sorted(["b", "a"], key=None))`,
    `prefix_rule(pattern=sorted(["b", "a"], foo=len))`,
    `prefix_rule(pattern="a,b".split(sep=","))`,
    `prefix_rule(pattern=[str(len(x=[1]))])`,
    `prefix_rule(pattern=["{:>3}".format("q")])`,
    `prefix_rule(pattern=["{} {1}".format("p", "q")])`,
    `prefix_rule(pattern=["{b}".format(a=1)])`,
    `def f(x, x):\n    return [x]`,
    `prefix_rule(pattern=["a".upper(1)])`,
    `prefix_rule(pattern=[str(len([1], [2]))])`,
    `L = []\nL.append("a", "b")`,
    `prefix_rule(pattern=["a".replace("a", "b", 1, 2)])`,
    `prefix_rule(pattern=[str("a".startswith(["a"]))])`,
    `prefix_rule(pattern=["%5s" % "a"])`,
    `prefix_rule(pattern=["100%" % ()])`,
    `prefix_rule(pattern=["%x" % ()])`,
    `prefix_rule(pattern=["%(a)s" % {"a": 1}])`,
    `prefix_rule(pattern=["%s" % ("a", "b")])`,
  ];
  itRejectedByBoth(rejectedByBoth, "first");
});

describe("*args, **kwargs and keyword-only parameters give the same rules as codex", () => {
  const same: [string, string[]][] = [
    [
      `common = {"decision": "prompt", "justification": "ask first"}\nprefix_rule(pattern=["git", "push"], **common)`,
      ["git", "push"],
    ],
    [`prefix_rule(*[["rm"], "forbidden"])`, ["rm", "-rf"]],
    [`prefix_rule(**{"pattern": ["a"], "decision": "forbidden", "justification": "no"})`, ["a"]],
    [`prefix_rule(["a"], *[], **{})`, ["a"]],
    [
      `host_executable(**{"name": "git", "paths": ["/usr/bin/git"]})\nprefix_rule(*[["git"]], **{"decision": "prompt"})`,
      ["git", "status"],
    ],
    [
      `def rule(*pattern, **opts):\n    prefix_rule(pattern=list(pattern), **opts)\nrule("git", "push", decision="forbidden", justification="no")\nrule("git")`,
      ["git", "push", "origin"],
    ],
    [
      `def f(*args, **kwargs):\n    return " ".join([type(args), type(kwargs), str(args), str(kwargs)])\nprefix_rule(["a"], justification=f("x", 1, b=2, **{"c": 3, "a": 1}))`,
      ["a"],
    ],
    [
      `def f(a, b="B", *args, **kwargs):\n    return " ".join([a, b, str(args), str(kwargs)])\nprefix_rule(["a"], justification=f("x", *["y", "z"], **{"k": "v"}) + f(**{"k": "v", "a": "A"}))`,
      ["a"],
    ],
    [
      `def f(a, *args, b, **kw):\n    return str([a, b, args, kw])\nprefix_rule(["a"], justification=f("a", "c", b="b", z=1) + f(b=1, *[2, 3]))`,
      ["a"],
    ],
    [
      `def g(*, a="x"):\n    return a\nprefix_rule(["a"], justification=g() + g(a="y") + g(**{"a": "z"}))`,
      ["a"],
    ],
    [
      `def g(a, b, c):\n    return a + b + c\nprefix_rule([g("1", *["2"], **{"c": "3"}), g(c="3", *("1", "2")), g(*{"x": 0, "y": 0, "z": 0})])`,
      ["123", "123", "xyz"],
    ],
    [
      `def f(**kw):\n    kw["x"] = 1\n    return str(kw)\nd = {"a": 1}\nprefix_rule(["a"], justification=f(**d) + str(d) + f(kw=2) + f(**{"not an ident": 3, "": 4}))`,
      ["a"],
    ],
    [
      `f = lambda *a, **k,: str(a) + str(k) + repr(f)\ng = lambda x, *, y=2: [x, str(y)]\nprefix_rule(g("a", y=3), justification=f(1, *[2], **{"y": 4}))`,
      ["a", "3"],
    ],
    [
      `x = sorted(*[["b", "a"]], **{"reverse": True})\ny = "{}-{a}".format(*["p"], **{"a": "q"})\nprefix_rule(x + [y, str(len(*[[1, 2]]))], justification=str(dict(**{"z": 1})))`,
      ["b", "a", "p-q", "2"],
    ],
    [`def f(*args):\n    return args\nprefix_rule(["a"], justification=str(f(*range(3))))`, ["a"]],
  ];
  itLoadsAsInCodex(same);

  const rejectedByBoth = [
    `def f(*):\n    pass`,
    `def f(*,):\n    pass`,
    `def f(a, *, **kw):\n    pass`,
    `f = lambda *: 1`,
    `def f(*a, *b):\n    pass`,
    `def f(*, *b):\n    pass`,
    `def f(**kw, a):\n    pass`,
    `def f(**kw, *a):\n    pass`,
    `def f(**a, **b):\n    pass`,
    `def f(a, *a):\n    pass`,
    `def f(a, **a):\n    pass`,
    `def f(a=1, b, *c):\n    pass`,
    `def f(*a=1):\n    pass`,
    `def f(a, b):\n    return [a, b]\nif False:\n    f(*["a"], "b")`,
    `def f(a, b):\n    return [a, b]\nprefix_rule(f(*["a"], b="b"))`,
    `prefix_rule(**{"pattern": ["a"]}, decision="forbidden")`,
    `prefix_rule(**{"pattern": ["a"]}, *[])`,
    `prefix_rule(*[["a"]], *[])`,
    `prefix_rule(**{"pattern": ["a"]}, **{})`,
    `def f(a, b):\n    return [a, b]\nprefix_rule(f(*"ab"))`,
    `def f(a, b):\n    return [a, b]\nprefix_rule(f(*1))`,
    `prefix_rule(*None)`,
    `prefix_rule(**["a"])`,
    `prefix_rule(**None)`,
    `def f(**k):\n    return ["a"]\nprefix_rule(f(**{1: "a"}))`,
    `def f(x, **kw):\n    return [x]\nprefix_rule(f(x="a", **{"x": "b"}))`,
    `def f(a, b):\n    return [a, b]\nprefix_rule(f("a", **{"a": "a", "b": "b"}))`,
    `def f(a, b):\n    return [a, b]\nprefix_rule(f("a", *["b"], **{"b": "b"}))`,
    `prefix_rule(["a"], **{"pattern": ["a"]})`,
    `prefix_rule(**{"pattern": ["a"], "bogus": 1})`,
    `prefix_rule([str(len(**{"x": 1}))])`,
    `prefix_rule(["a"], *[1, 2, 3, 4, 5, 6, 7])`,
    `def f(a, b):\n    return [a, b]\nprefix_rule(f(*["a", "b", "c"]))`,
    `def f(a, *, b):\n    return [a, b]\nprefix_rule(f("a", "b"))`,
    `def f(a, *, b):\n    return [a, b]\nprefix_rule(f("a"))`,
    `def f(*args):\n    return list(args)\nprefix_rule(f(args=["a"]))`,
    `def f(*args):\n    args.append(1)\n    return ["a"]\nprefix_rule(f())`,
  ];
  itRejectedByBoth(rejectedByBoth, "last", ["a"]);

  // Random parameter lists and call arguments: the file loads in bottlekit exactly when it loads in
  // codex, and when it does, the values bound to each parameter print the same. Most lists are in
  // Starlark's order (positional, optional, `*`/`*args`, keyword-only, `**kw`), some in any order.
  const orderedParams = fc
    .tuple(
      fc.subarray(["a", "b"]),
      fc.subarray(["c=3", "d=4"]),
      fc.constantFrom([], ["*args"], ["*"]),
      fc.subarray(["e", "g=1"]),
      fc.constantFrom([], ["**kw"]),
    )
    .map((parts) => parts.flat());
  const paramList = fc.oneof(
    { weight: 3, arbitrary: orderedParams },
    {
      weight: 1,
      arbitrary: fc.uniqueArray(
        fc.constantFrom("a", "b", "c=3", "d=4", "a=5", "*", "*args", "**kw", "e"),
        { maxLength: 5 },
      ),
    },
  );
  const STAR = [`*["p", "q"]`, `*()`, `*("r",)`, `*{"s": 0}`, `*"s"`, `*None`];
  const STARSTAR = [
    `**{"b": "z"}`,
    `**{"e": 7, "f": 8}`,
    `**{}`,
    `**{"a": 9}`,
    `**[1]`,
    `**{1: 2}`,
  ];
  const randomArgs = fc.array(
    fc.constantFrom(`"x"`, `1`, `a="y"`, `c=5`, `e=6`, `kw=7`, ...STAR, ...STARSTAR),
    { maxLength: 4 },
  );
  /** Arguments meant for `params`: some by position, some by keyword, parts of each unpacked. */
  const fittedArgs = (params: string[]) => {
    const star = params.findIndex((p) => p.startsWith("*") && !p.startsWith("**"));
    const named = (p: string) => !p.startsWith("*");
    const positional = (star < 0 ? params : params.slice(0, star)).filter(named);
    const name = (p: string) => p.replace(/=.*$/, "");
    return fc
      .record({
        npos: fc.nat(positional.length + 1),
        optional: fc.subarray(params.filter((p) => named(p) && p.includes("=")).map(name)),
        unknown: fc.constantFrom(false, false, false, true),
        written: fc.nat(3),
        writtenKw: fc.nat(3),
      })
      .map(({ npos, optional, unknown, written, writtenKw }) => {
        const values = Array.from({ length: npos }, (_, i) => `"v${i}"`);
        // the required parameters not given by position, some optional ones, maybe an unknown one
        const byPosition = new Set(positional.slice(0, npos).map(name));
        const required = params.filter((p) => named(p) && !p.includes("=")).map(name);
        const byKeyword = [...required, ...optional, ...(unknown ? ["zz"] : [])].filter(
          (k, i, all) => !byPosition.has(k) && all.indexOf(k) === i,
        );
        const kws = byKeyword.map((k) => [k, `"k${k}"`] as const);
        const out = values.slice(0, written);
        out.push(...kws.slice(0, writtenKw).map(([k, v]) => `${k}=${v}`));
        if (values.length > written) out.push(`*[${values.slice(written).join(", ")}]`);
        if (kws.length > writtenKw)
          out.push(
            `**{${kws
              .slice(writtenKw)
              .map(([k, v]) => `"${k}": ${v}`)
              .join(", ")}}`,
          );
        return out;
      });
  };
  const defAndCall = paramList.chain((params) =>
    fc.tuple(
      fc.constant(params),
      fc.oneof({ weight: 3, arbitrary: fittedArgs(params) }, { weight: 1, arbitrary: randomArgs }),
    ),
  );
  it("random def/lambda parameters × call arguments (300 files)", async () => {
    let loaded = 0;
    let refused = 0;
    await fc.assert(
      fc.asyncProperty(defAndCall, fc.boolean(), async ([params, args], isLambda) => {
        const names = params.map((p) => p.replace(/^\*+/, "").replace(/=.*$/, "")).filter(Boolean);
        const rule = `prefix_rule(pattern=["git"], justification=str([${names.join(", ")}]))`;
        const def = isLambda
          ? `f = lambda ${params.join(", ")}: ${rule}`
          : `def f(${params.join(", ")}):\n    ${rule}`;
        const text = `${def}\nf(${args.join(", ")})`;
        const r = await samePath(text, ["git"]);
        expect(r.oursLoaded, `${text}\n--- codex: ${r.codex}\n--- ours: ${r.ours}`).toBe(
          r.codexLoaded,
        );
        if (r.codexLoaded) {
          loaded++;
          expect(r.ours, text).toBe(r.codex);
        } else refused++;
      }),
      { numRuns: 300, seed: 4242 },
    );
    // both sides of the property must be exercised
    expect(loaded).toBeGreaterThan(60);
    expect(refused).toBeGreaterThan(60);
  }, 900_000); // hang guard: hundreds of real codex runs on a busy machine

  const builtinArgs = fc
    .tuple(
      fc.subarray([`["git"]`, `"prompt"`], { maxLength: 2 }),
      fc.subarray([`pattern=["git"]`, `decision="prompt"`, `justification="j"`]),
      fc.subarray([`*[["git"], "forbidden"]`, `*[["git"]]`, `*[]`, `*(["git", "x"],)`], {
        maxLength: 1,
      }),
      fc.subarray(
        [
          `**{"decision": "forbidden"}`,
          `**{"justification": "j2", "decision": "prompt"}`,
          `**{"pattern": ["git"]}`,
          `**{"pattern": ["git"], "match": ["git x"], "not_match": ["hg"]}`,
          `**{"bogus": 1}`,
          `**{}`,
        ],
        { maxLength: 1 },
      ),
    )
    .map((parts) => parts.flat())
    .filter((args) => args.length > 0);
  it("random prefix_rule(*xs, **d) calls (150 files)", async () => {
    let loaded = 0;
    await fc.assert(
      fc.asyncProperty(builtinArgs, async (args) => {
        const text = `prefix_rule(${args.join(", ")})`;
        const r = await samePath(text, ["git", "x"]);
        expect(r.oursLoaded, `${text}\n--- codex: ${r.codex}\n--- ours: ${r.ours}`).toBe(
          r.codexLoaded,
        );
        if (r.codexLoaded) {
          loaded++;
          expect(r.ours, text).toBe(r.codex);
        }
      }),
      { numRuns: 150, seed: 777 },
    );
    expect(loaded).toBeGreaterThan(30);
  }, 900_000); // hang guard: hundreds of real codex runs on a busy machine
});
