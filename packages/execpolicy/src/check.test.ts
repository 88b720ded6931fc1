import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import { checkArgv, checkCommand, checkShellSync, explain } from "./check.ts";
import { parseRulesFile } from "./codex-rules.ts";
import type { Policy } from "./policy.ts";
import { loadBashParser } from "./shell/parser.ts";

function rules(text: string): Policy {
  const parsed = parseRulesFile(text, "test.rules");
  expect(parsed.exampleFailures).toEqual([]);
  return parsed.policy;
}

beforeAll(async () => {
  await loadBashParser();
});

const argvs = (r: ReturnType<typeof checkShellSync>) => r.commands.map((c) => c.argv.join(" "));

describe("shell cases of the reference table (stricter semantics)", () => {
  it("#22 a forbidden command anywhere forbids the script, and names it", () => {
    const r = checkShellSync(
      rules(`prefix_rule(["rm"], "forbidden")\nprefix_rule(["git"])`),
      "git status && rm -rf build",
    );
    expect(r.decision).toBe("forbidden");
    const rm = r.commands.find((c) => c.argv[0] === "rm");
    expect(rm?.decision).toBe("forbidden");
    expect(rm?.matchedRules[0]?.matchedPrefix).toEqual(["rm"]);
  });

  it("#23 pipelines: the unmatched side takes the default", () => {
    const r = checkShellSync(rules(`prefix_rule(["cat"])`), "cat a.log | uploader");
    expect(r.decision).toBe("prompt");
    expect(r.commands.find((c) => c.argv[0] === "uploader")?.unmatched).toBe(true);
    expect(r.notes.join("\n")).toContain("uploader");
  });

  it("#24 || and ; segments are all checked", () => {
    const r = checkShellSync(
      rules(`prefix_rule(["make"])\nprefix_rule(["echo"])\nprefix_rule(["ls"])`),
      "make || echo fail; ls",
    );
    expect(r.decision).toBe("allow");
    expect(argvs(r)).toEqual(["make", "echo fail", "ls"]);
  });

  it("#25 subshells: cd and npm test are evaluated", () => {
    const r = checkShellSync(rules(`prefix_rule(["npm"])`), "(cd web && npm test)");
    expect(argvs(r)).toEqual(["cd web", "npm test"]);
    expect(r.commands[1]?.decision).toBe("allow");
    expect(r.commands[0]?.unmatched).toBe(true);
    const withCd = checkShellSync(
      rules(`prefix_rule(["npm"])\nprefix_rule(["cd"])`),
      "(cd web && npm test)",
    );
    expect(withCd.decision).toBe("allow");
  });

  it("#26 a redirect does not hide the command; the write is reported", () => {
    const r = checkShellSync(rules(`prefix_rule(["npm", "test"])`), "npm test > out.log");
    expect(r.decision).toBe("allow");
    expect(r.commands[0]?.writes).toEqual(["out.log"]);
    expect(r.notes).toContain("writes out.log");
    expect(
      checkShellSync(rules(`prefix_rule(["npm", "test"])`), "npm test 2>/dev/null").commands[0]
        ?.writes,
    ).toBeUndefined();
  });

  it("#27 an env prefix is matched as the command; values are never reported", () => {
    const r = checkShellSync(rules(`prefix_rule(["gh"])`), "GH_TOKEN=s3cr3t gh api /user");
    expect(r.decision).toBe("allow");
    expect(r.commands[0]?.argv).toEqual(["gh", "api", "/user"]);
    expect(r.commands[0]?.assignments).toEqual(["GH_TOKEN"]);
    expect(JSON.stringify(r)).not.toContain("s3cr3t");
  });

  it("#28 env as a wrapper is seen through", async () => {
    const r = await checkCommand(rules(`prefix_rule(["npm"])`), ["env", "CI=1", "npm", "test"]);
    expect(r.decision).toBe("allow");
    expect(r.commands[0]?.wrappers).toEqual(["env"]);
  });

  it("#29 $(…) and backticks are evaluated; expansions in arguments do not hide the command", () => {
    const p = rules(`prefix_rule(["echo"])\nprefix_rule(["rm"], "forbidden")`);
    expect(
      checkShellSync(p, "echo $(whoami)").commands.map((c) => [c.argv[0], c.decision]),
    ).toEqual([
      ["whoami", "prompt"],
      ["echo", "allow"],
    ]);
    expect(checkShellSync(p, "echo `rm -rf /`").decision).toBe("forbidden");
    expect(checkShellSync(p, 'echo "$HOME"').decision).toBe("allow");
  });

  it("#30 a quoted && is not an operator", () => {
    const r = checkShellSync(
      rules(`prefix_rule(["b"], "forbidden")\nprefix_rule(["git"])`),
      "git commit -m 'a && b'",
    );
    expect(r.decision).toBe("allow");
    expect(r.commands).toHaveLength(1);
    expect(r.commands[0]?.argv).toEqual(["git", "commit", "-m", "a && b"]);
  });

  it("#31 concatenated quoting is joined into one token", () => {
    const r = checkShellSync(rules(`prefix_rule(["rg"])`), 'rg -n foo -g"*.py"');
    expect(r.commands[0]?.argv).toEqual(["rg", "-n", "foo", "-g*.py"]);
    expect(r.commands[0]?.notes).toBeUndefined();
    expect(r.decision).toBe("allow");
  });

  it("#32 heredoc bodies are data", () => {
    const p = rules(`prefix_rule(["python3"])\nprefix_rule(["rm"], "forbidden")`);
    expect(checkShellSync(p, "python3 <<'EOF'\nimport os\nrm -rf /\nEOF").decision).toBe("allow");
    expect(checkShellSync(rules(""), "python3 <<'EOF'\nprint(1)\nEOF").decision).toBe("prompt");
  });

  it("#33 substitutions inside here-strings and unquoted heredocs still run", () => {
    const p = rules(
      `prefix_rule(["python3"])\nprefix_rule(["cat"])\nprefix_rule(["rm"], "forbidden")`,
    );
    expect(checkShellSync(p, 'python3 <<< "$(rm -rf /)"').decision).toBe("forbidden");
    expect(checkShellSync(p, "cat <<EOF\n$(rm -rf /)\nEOF").decision).toBe("forbidden");
  });

  it("#34 background jobs are checked", () => {
    const r = checkShellSync(rules(`prefix_rule(["sleep"])\nprefix_rule(["ls"])`), "sleep 5 & ls");
    expect(r.decision).toBe("allow");
    expect(argvs(r)).toEqual(["sleep 5", "ls"]);
  });

  it("#35 bash -x -c and empty scripts", async () => {
    const p = rules(`prefix_rule(["ls"])`);
    expect((await checkCommand(p, ["bash", "-x", "-c", "ls"])).decision).toBe("allow");
    const empty = await checkCommand(p, ["bash", "-lc", ""]);
    expect(empty.commands[0]?.argv).toEqual(["bash", "-lc", ""]);
    expect(empty.decision).toBe("prompt");
  });
});

describe("fail closed", () => {
  const p = () =>
    rules(
      `prefix_rule(["ls"])\nprefix_rule(["echo"])\nprefix_rule(["rm"], "forbidden")\nprefix_rule(["eval"])`,
    );

  it("a program only known at run time is prompt, never allow", () => {
    const r = checkShellSync(p(), "$CMD args");
    expect(r.decision).toBe("prompt");
    expect(r.commands[0]?.notes?.join(" ")).toContain("run time");
  });

  it("eval is at least prompt, and its literal script is analysed", () => {
    expect(checkShellSync(p(), "eval ls").decision).toBe("prompt");
    expect(checkShellSync(p(), "eval 'rm -rf /'").decision).toBe("forbidden");
    expect(checkShellSync(p(), 'eval "$X"').decision).toBe("prompt");
  });

  it("a parse error is prompt, and commands found are still checked", () => {
    expect(checkShellSync(p(), "ls 'unterminated").decision).toBe("prompt");
    expect(checkShellSync(p(), "rm -rf / && ls (").decision).toBe("forbidden");
  });

  it("dangerous assignments raise to prompt", () => {
    for (const s of [
      "LD_PRELOAD=/tmp/x.so ls",
      "PATH=/tmp:$PATH ls",
      "export BASH_ENV=/tmp/x; ls",
      "GIT_SSH_COMMAND='sh -c x' ls",
      "env LD_LIBRARY_PATH=/x ls",
    ]) {
      expect(checkShellSync(p(), s).decision, s).toBe("prompt");
    }
    expect(checkShellSync(p(), "FOO=1 ls").decision).toBe("allow");
  });

  it("a rule that may match an expanded argument is not trusted to allow", () => {
    const q = rules(`prefix_rule(["rm"])\nprefix_rule(["rm", "-rf"], "forbidden")`);
    expect(checkShellSync(q, "rm $FLAGS x").decision).toBe("prompt");
    expect(checkShellSync(q, "rm x").decision).toBe("allow");
    expect(checkShellSync(q, "rm -rf x").decision).toBe("forbidden");
  });

  it("unquoted globs are run-time values", () => {
    const q = rules(`prefix_rule(["git", "push"], "forbidden")\nprefix_rule(["git"])`);
    expect(checkShellSync(q, "git pu*").decision).toBe("prompt");
    expect(checkShellSync(q, "git 'pu*'").decision).toBe("allow");
  });
});

describe("every command anywhere", () => {
  const p = () =>
    rules(
      `prefix_rule(["rm"], "forbidden")\nprefix_rule(["ls"])\nprefix_rule(["echo"])\nprefix_rule(["cat"])`,
    );
  const forbiddenScripts = [
    "{ ls; rm -rf x; }",
    "if ls; then rm x; fi",
    "for f in a b; do rm $f; done",
    "while true; do rm x; done",
    "case $x in a) rm x;; esac",
    "f() { rm x; }; f",
    "cat <(rm x)",
    "ls > >(rm x)",
    "bash -c 'ls && bash -lc \"rm x\"'",
    "sudo rm x",
    "sudo -u root env FOO=1 timeout 5 nice -n 1 nohup rm x",
    "command rm x",
    "exec rm x",
    "time rm x",
    "xargs rm < files",
    "xargs -0 -n 1 rm",
    "find . -name '*.o' -exec rm {} +",
    "ls | while read f; do rm $f; done",
    "echo $(echo $(rm x))",
    "/bin/rm x",
    "ls && ! rm x",
    "[[ $(rm x) ]]",
    "x=$(rm y)",
    "ls > $(rm x)",
    "sh -c 'rm x' sh",
    "zsh -lc 'rm x'",
  ];
  for (const s of forbiddenScripts) {
    it(`finds rm in: ${s}`, async () => {
      const r = checkShellSync(p(), s);
      if (s.startsWith("/bin/rm")) {
        expect(checkShellSync(p(), s, { resolveHostExecutables: true }).decision).toBe("forbidden");
      } else expect(r.decision).toBe("forbidden");
    });
  }

  it("an absolute path cannot bypass a stricter rule for its basename", () => {
    const q = rules(`prefix_rule(["rm"], "forbidden")`);
    q.defaultDecision = "allow";
    expect(checkShellSync(q, "/bin/rm -rf x").decision).toBe("prompt");
    expect(checkShellSync(q, "/bin/rm -rf x", { resolveHostExecutables: true }).decision).toBe(
      "forbidden",
    );
    expect(checkShellSync(q, "/bin/ls").decision).toBe("allow");
  });

  it("a very long chain of wrappers is not trusted", () => {
    const q = rules(`prefix_rule(["nohup"])\nprefix_rule(["ls"])`);
    expect(checkShellSync(q, `${"nohup ".repeat(5)}ls`).decision).toBe("allow");
    expect(checkShellSync(q, `${"nohup ".repeat(40)}rm -rf /`).decision).toBe("prompt");
  });

  it("coproc NAME { … } (misparsed by tree-sitter-bash) is analysed like a command group", () => {
    const q = rules(
      `prefix_rule(["rm"], "forbidden")\nprefix_rule(["ls"])\nprefix_rule(["true"])\nprefix_rule(["cat"])`,
    );
    const forbidden = [
      "coproc W { rm -rf /; }",
      "coproc { ls; rm -rf /; }",
      "coproc W (rm -rf /)",
      "coproc (rm -rf /)",
      "coproc W while true; do rm -rf /; done",
      "coproc if true; then rm -rf /; fi",
      "coproc for x in a; do rm -rf $x; done",
      "f() { coproc W { rm -rf /; }; }",
      "coproc A { coproc B { rm -rf /; }; }",
      "bash -c 'coproc W { rm -rf /; }'",
    ];
    for (const s of forbidden) {
      const r = checkShellSync(q, s);
      expect(r.decision, s).toBe("forbidden");
      const rm = r.commands.find((c) => c.argv[0] === "rm");
      expect(rm?.wrappers, s).toContain("coproc");
    }
    const ok = checkShellSync(q, "coproc W { ls; cat <<EOF\nrm -rf /\nEOF\n} > out.txt");
    expect(ok.decision).toBe("allow");
    expect(ok.commands.map((c) => c.argv)).toEqual([["ls"], ["cat"]]);
    expect(ok.commands[1]?.writes).toEqual(["out.txt"]);
    // only the compound belongs to the coproc
    const after = checkShellSync(q, "coproc { ls; } && rm x");
    expect(after.commands.map((c) => [c.argv[0], c.wrappers ?? []])).toEqual([
      ["ls", ["coproc"]],
      ["rm", []],
    ]);
    // rules written for coproc itself still apply to what it runs
    const noCoproc = rules(`prefix_rule(["ls"])\nprefix_rule(["coproc"], "forbidden")`);
    expect(checkShellSync(noCoproc, "coproc W { ls; }").decision).toBe("forbidden");
    expect(
      checkShellSync(noCoproc, "coproc W { ls; }").matchedRules.map((m) => [m.decision, m.via]),
    ).toEqual([
      ["allow", undefined],
      ["forbidden", "coproc"],
    ]);
    // not understood: at least prompt, never allow
    expect(checkShellSync(noCoproc, "coproc W [[ -f x ]]").decision).not.toBe("allow");
    expect(checkShellSync(q, "coproc W [[ -f x ]]").decision).toBe("prompt");
    // `coproc NAME args` is a simple command named NAME, as in bash
    expect(checkShellSync(q, "coproc ls -la").decision).toBe("allow");
    expect(checkShellSync(q, "coproc W ls").commands[0]?.argv).toEqual(["W", "ls"]);
  });

  it("eval of an empty string records eval once", () => {
    const r = checkShellSync(p(), `eval ""`);
    expect(r.commands.map((c) => c.argv)).toEqual([["eval", ""]]);
    expect(r.decision).toBe("prompt");
  });

  it("trap actions, su -c, builtin, busybox and coproc are seen through", () => {
    const q = rules(
      `prefix_rule(["rm"], "forbidden")\nprefix_rule(["ls"])\nprefix_rule(["trap"])\nprefix_rule(["builtin"])\nprefix_rule(["busybox"])\nprefix_rule(["coproc"])\nprefix_rule(["su"])`,
    );
    for (const s of [
      "trap 'rm x' EXIT",
      "builtin eval 'rm x'",
      "busybox rm x",
      "coproc rm x",
      "su -c 'rm x' root",
      "busybox sh -c 'rm x'",
    ]) {
      expect(checkShellSync(q, s).decision, s).toBe("forbidden");
    }
    expect(checkShellSync(q, "trap 'ls' EXIT").decision).toBe("prompt");
    expect(checkShellSync(q, "trap - EXIT").decision).toBe("allow");
    expect(checkShellSync(q, "su root").decision).toBe("prompt");
  });

  it("sudo without a rule for sudo is at least prompt", () => {
    expect(checkShellSync(p(), "sudo ls").decision).toBe("prompt");
    expect(
      checkShellSync(rules(`prefix_rule(["sudo", "ls"])\nprefix_rule(["ls"])`), "sudo ls").decision,
    ).toBe("allow");
  });

  it("wrapper rules also apply", () => {
    expect(
      checkShellSync(
        rules(`prefix_rule(["timeout"], "forbidden")\nprefix_rule(["ls"])`),
        "timeout 5 ls",
      ).decision,
    ).toBe("forbidden");
  });
});

describe("checkArgv (Codex semantics)", () => {
  it("uses the default decision for unmatched commands and says so", () => {
    const p = rules(`prefix_rule(["git"], "prompt")`);
    const r = checkArgv(p, ["ls"]);
    expect(r).toMatchObject({
      decision: "prompt",
      commands: [{ argv: ["ls"], unmatched: true, matchedRules: [] }],
    });
    p.defaultDecision = "forbidden";
    expect(checkArgv(p, ["ls"]).decision).toBe("forbidden");
    expect(checkArgv(p, ["git", "x"]).decision).toBe("prompt");
  });
});

// ---- fuzz ---------------------------------------------------------------------------------

const WORDS = [
  "ls",
  "echo",
  "git",
  "status",
  "-rf",
  "x",
  "$X",
  '"$Y"',
  "'q'",
  "$(ls)",
  "`ls`",
  "a=b",
  "FOO=1",
  "*",
  "{a,b}",
  "\\n",
  "é",
  "#c",
];
const OPS = [
  " && ",
  " || ",
  "; ",
  " | ",
  " & ",
  "\n",
  " > f ",
  " 2>&1 ",
  " <<< w ",
  " ( ",
  " ) ",
  " { ",
  " } ",
  " $( ",
  " ` ",
  " <( ",
  ' " ',
  " ' ",
  " if ",
  " then ",
  " fi ",
  " do ",
  " done ",
];
const WRAP = [
  "sudo ",
  "env A=1 ",
  "timeout 3 ",
  "bash -c '",
  'sh -lc "',
  "xargs ",
  "nohup ",
  "command ",
  "eval ",
  "coproc ",
  "coproc W ",
];

const scriptPiece = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom(...WORDS) },
  { weight: 4, arbitrary: fc.constantFrom(...OPS) },
  { weight: 2, arbitrary: fc.constantFrom(...WRAP) },
  { weight: 1, arbitrary: fc.string({ maxLength: 6 }) },
);
const randomScript = fc
  .array(scriptPiece, { maxLength: 400 })
  .map((parts) => parts.join(" ").slice(0, 4096));

describe("fuzz: random scripts up to 4 KB", () => {
  const policy = () =>
    rules(
      `prefix_rule(["rm"], "forbidden")\nprefix_rule(["ls"])\nprefix_rule(["echo"])\nprefix_rule(["git"])`,
    );

  // their time (under 50 ms each) is measured by bench/run.ts, not asserted here
  it("never throw, never allow a script containing rm", () => {
    const p = policy();
    fc.assert(
      fc.property(
        randomScript,
        fc.integer({ min: 0, max: 400 }),
        fc.constantFrom(" rm -rf / ", "; rm x; ", " && rm x ", " $(rm x) ", "\nrm x\n"),
        (script, at, injected) => {
          const cut = Math.min(at, script.length);
          const withRm = `${script.slice(0, cut)}${injected}${script.slice(cut)}`.slice(0, 4096);
          for (const s of [script, withRm]) {
            const r = checkShellSync(p, s);
            expect(["allow", "prompt", "forbidden"]).toContain(r.decision);
          }
          // wherever rm lands (inside quotes it may be plain data), the script must not be allowed
          // unless rm ended up as data: then no command may be rm
          const r = checkShellSync(p, withRm);
          if (r.decision === "allow") {
            expect(r.commands.some((c) => c.argv[0] === "rm")).toBe(false);
          }
        },
      ),
      { numRuns: 300, seed: 4242 },
    );
  });

  it("arbitrary Unicode input up to 4 KB never throws", () => {
    const p = policy();
    fc.assert(
      fc.property(fc.string({ unit: "binary", maxLength: 4096 }), (script) => {
        const r = checkShellSync(p, script);
        expect(["allow", "prompt", "forbidden"]).toContain(r.decision);
      }),
      { numRuns: 150, seed: 7 },
    );
  });

  it("a forbidden command in executable position is never allowed", () => {
    const p = policy();
    fc.assert(
      fc.property(
        fc.array(
          fc.constantFrom("ls", "echo hi", "git status", "$(ls)", "X=1 ls", "sudo ls", "echo $Y"),
          { maxLength: 8 },
        ),
        fc.constantFrom(" && ", " || ", "; ", " | ", " & ", "\n"),
        fc.nat(),
        fc.constantFrom(
          "rm x",
          "sudo rm x",
          "env A=1 rm x",
          "(rm x)",
          "{ rm x; }",
          "$(rm x)",
          "bash -c 'rm x'",
          "echo `rm x`",
          "timeout 1 rm x",
          "A=1 rm x",
          "coproc rm x",
          "coproc W { rm x; }",
          "coproc { ls; rm x; }",
          "coproc W (rm x)",
          "coproc W while true; do rm x; done",
          "coproc A { coproc B { rm x; }; }",
          "coproc W { ls; } > f; rm x",
        ),
        (cmds, op, at, rm) => {
          const list: string[] = [...cmds];
          list.splice(at % (list.length + 1), 0, rm);
          const r = checkShellSync(p, list.join(op));
          expect(r.decision).toBe("forbidden");
        },
      ),
      { numRuns: 300, seed: 99 },
    );
  });

  it("scales linearly: 4x the script is about 4x the counted work", async () => {
    const { analysisWork } = await import("./shell/extract.ts");
    const p = policy();
    // Small enough that the parse stays far inside its CPU budget even cold or on a loaded
    // machine (a parse over budget is refused before the analysis counts any work).
    const base = Array.from({ length: 25 }, (_, i) => `echo ${i} && ls -la | git status`).join(
      "; ",
    );
    const quad = [base, base, base, base].join("; ");
    const work = (s: string) => {
      const before = analysisWork.units;
      const r = checkShellSync(p, s);
      expect(r.decision).toBe("allow");
      return analysisWork.units - before;
    };
    work(quad); // warm-up: the first large parse also pays for the wasm parser's tier-up
    const w1 = work(base);
    const w4 = work(quad);
    expect(w1).toBeGreaterThan(200);
    // linear is ~4x; anything quadratic would be ~16x
    expect(w4 / w1).toBeGreaterThan(3.5);
    expect(w4 / w1).toBeLessThan(4.5);
  });
});

describe("matcher cost", () => {
  it("an argv check does not depend on the total number of rules (indexed by program)", async () => {
    const { matchWork } = await import("./policy.ts");
    const make = (n: number) =>
      rules(
        Array.from({ length: n }, (_, i) => `prefix_rule(["tool${i}", "x"])`).join("\n") +
          `\nprefix_rule(["git", "status"])`,
      );
    // Counted work, not time (the timing is in bench/run.ts): rules compared per lookup.
    const compared = (p: Policy) => {
      const before = matchWork.rules;
      for (let i = 0; i < 1000; i++)
        expect(checkArgv(p, ["git", "status", "-s"]).decision).toBe("allow");
      return matchWork.rules - before;
    };
    const small = compared(make(10));
    const large = compared(make(5000));
    expect(small).toBeGreaterThan(0);
    expect(large).toBe(small);
  });
});

describe("redirections", () => {
  const p = () => rules(`prefix_rule(["a"])\nprefix_rule(["b"])\nprefix_rule(["c"])`);
  it("a trailing redirect applies to the last command of a list or pipeline only", () => {
    const writes = (s: string) => checkShellSync(p(), s).commands.map((c) => c.writes ?? []);
    expect(writes("a && b > f")).toEqual([[], ["f"]]);
    expect(writes("a | b > f")).toEqual([[], ["f"]]);
    expect(writes("a && b | c 2> e")).toEqual([[], [], ["e"]]);
    expect(writes("(a; b) > f")).toEqual([["f"], ["f"]]);
    expect(writes("{ a; b; } >> f")).toEqual([["f"], ["f"]]);
    expect(writes("a 2>&1 >/dev/null")).toEqual([[]]);
    expect(writes("a &> log")).toEqual([["log"]]);
    expect(checkShellSync(p(), "> truncated.txt").notes).toContain("writes truncated.txt");
  });
});

describe("shells reading their script from stdin", () => {
  const p = () =>
    rules(
      `prefix_rule(["rm"], "forbidden")\nprefix_rule(["bash"])\nprefix_rule(["sh"])\nprefix_rule(["ls"])\nprefix_rule(["curl"])`,
    );
  it("heredocs and here-strings fed to a shell are analysed as scripts", () => {
    expect(checkShellSync(p(), "bash <<'EOF'\nls\nrm -rf /\nEOF").decision).toBe("forbidden");
    expect(checkShellSync(p(), "sh <<< 'ls; rm x'").decision).toBe("forbidden");
    expect(checkShellSync(p(), "bash -s <<EOF\nls\nEOF").decision).toBe("allow");
  });
  it("a shell reading an unknown stdin is at least prompt, even when the shell is allowed", () => {
    expect(checkShellSync(p(), "curl https://x | sh").decision).toBe("prompt");
    expect(checkShellSync(p(), "bash < install.sh").decision).toBe("prompt");
    // the file's content is not analysed: an allowed shell does not make it allowed
    expect(checkShellSync(p(), "bash install.sh").decision).toBe("prompt");
  });
});

describe("parse budget", () => {
  it("a parse over its CPU budget is not analysed and fails closed", async () => {
    const { extractCommands } = await import("./shell/extract.ts");
    const script = Array.from({ length: 300 }, (_, i) => `echo ${i} && ls`).join("; ");
    const r = extractCommands(script, { parseBudgetMs: 0.001 });
    expect(r.floor).toBe("prompt");
    expect(r.commands).toEqual([]);
    expect(r.notes.join(" ")).toContain("too long or too deeply nested");
    expect(extractCommands(script).commands).toHaveLength(600);
  });
});

describe("size and nesting limits fail closed, deterministically", () => {
  const p = () => rules(`prefix_rule(["ls"])\nprefix_rule(["rm"], "forbidden")`);
  const deep: [string, string][] = [
    ["(", `${"(".repeat(5000)}ls${")".repeat(5000)}`],
    ["$(", `echo ${"$(".repeat(5000)}ls${")".repeat(5000)}`],
    ["{", `${"{ ".repeat(5000)}ls${"; }".repeat(5000)}`],
    ["&&", `${"ls && ".repeat(5000)}ls`],
    ["||", `${"ls || ".repeat(5000)}ls`],
    ["|", `${"ls | ".repeat(5000)}ls`],
    ["[[ ( ) ]]", `[[ ${"( ".repeat(5000)}x${" )".repeat(5000)} ]]`],
    ["bash -c", "bash -c ".repeat(12).concat("ls")],
    ["if", `${"if ls; then ".repeat(3000)}ls${"; fi".repeat(3000)}`],
    ["1 MB", `ls && ${"echo aaaaaaaa; ".repeat(100_000)}`],
  ];
  for (const [what, script] of deep) {
    it(`${what}: prompt with a reason, never an exception`, async () => {
      const { TOO_BIG_NOTE } = await import("./shell/extract.ts");
      const r = checkShellSync(p(), script);
      expect(r.decision).toBe("prompt");
      const again = checkShellSync(p(), script);
      expect(again.notes).toEqual(r.notes);
      if (what !== "bash -c" && what !== "|") expect(r.notes).toContain(TOO_BIG_NOTE);
    });
  }
  it("the reason is the same whichever limit fires first", async () => {
    const { extractCommands, TOO_BIG_NOTE } = await import("./shell/extract.ts");
    const chain = `${"ls && ".repeat(5000)}ls`;
    expect(extractCommands(chain).notes).toEqual([TOO_BIG_NOTE]);
    // with a tiny parse budget the parse time limit fires instead: same answer
    expect(extractCommands(chain, { parseBudgetMs: 0.001 }).notes).toEqual([TOO_BIG_NOTE]);
    expect(extractCommands("x".repeat(300_000)).notes).toEqual([TOO_BIG_NOTE]);
  });
  it("a forbidden command inside a too-deep script is never allowed", () => {
    expect(checkShellSync(p(), `${"(".repeat(900)}rm -rf /${")".repeat(900)}`).decision).not.toBe(
      "allow",
    );
  });
});

describe("explain", () => {
  it("#37 renders Codex-style reasons", () => {
    const p = rules(
      `prefix_rule(["rm"], "forbidden", justification="use trash")\nprefix_rule(["git", "push"], "forbidden")\nprefix_rule(["ls"])`,
    );
    expect(explain(checkArgv(p, ["rm", "-rf", "d"]))).toBe("`rm -rf d` rejected: use trash");
    expect(explain(checkArgv(p, ["git", "push", "x"]))).toBe(
      "`git push x` rejected: policy forbids commands starting with `git push`",
    );
    expect(explain(checkShellSync(p, "ls && uploader"))).toBe(
      "`uploader` needs approval: no rule matches it",
    );
    expect(explain(checkShellSync(p, "ls"))).toBe(
      "`ls` allowed: policy allows commands starting with `ls`",
    );
    expect(explain(checkShellSync(p, "LD_PRELOAD=/x.so ls"))).toBe(
      "`ls` needs approval: assignment to LD_PRELOAD can change what runs",
    );
  });
});
