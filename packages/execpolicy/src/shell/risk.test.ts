import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { execCapableHits } from "../exec-options.ts";
import {
  arithmeticRisk,
  awkScriptRisk,
  builtinRisk,
  expansionRisk,
  isDangerousVariable,
  isSensitivePath,
  sedScriptRisk,
  targetRisk,
} from "./risk.ts";

const w = (value: string, dynamic = false) => ({ value, dynamic });

describe("risk judgements (issue 16)", () => {
  it("arithmetic is understood only with literal numbers (property)", () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.oneof(
            fc.nat().map(String),
            fc.constantFrom("+", "-", "*", "(", ")", " ", "<<", "?", ":"),
          ),
          {
            maxLength: 20,
          },
        ),
        (parts) => {
          expect(arithmeticRisk(parts.join(""))).toBeUndefined();
        },
      ),
    );
    fc.assert(
      fc.property(fc.string(), fc.constantFrom("x", "a[1]", "$(id)", "`id`", "$y"), (pre, v) => {
        expect(arithmeticRisk(`${pre}${v}`)).toBeDefined();
      }),
    );
  });

  it("parameter expansions: plain forms are understood, indirection and @ transformations are not", () => {
    for (const ok of [
      "${x}",
      "${#x}",
      "${x:-a b}",
      "${x%.txt}",
      "${x//a/b}",
      "${a[@]}",
      "${a[3]}",
      "${!p*}",
      "${!a[@]}",
      "${x:2:3}",
      "${1}",
      "${@}",
      "${x^^}",
    ])
      expect(expansionRisk(ok), ok).toBeUndefined();
    for (const bad of [
      "${!x}",
      "${x@P}",
      "${x@Q}",
      "${x:o}",
      "${x:1:$n}",
      "${a[i]}",
      "${a[$(id)]}",
      "${PATH:=/tmp}",
      "${x:(-1)}",
    ])
      expect(expansionRisk(bad), bad).toBeDefined();
    fc.assert(
      fc.property(fc.string({ maxLength: 40 }), (s) => {
        const r = expansionRisk(`\${${s}}`);
        if (s.includes("@") && /^[A-Za-z_]\w*@/.test(s)) expect(r).toBeDefined();
      }),
    );
  });

  it("dangerous variables by name and family; npm_config_* in any case", () => {
    for (const n of [
      "PATH",
      "LD_PRELOAD",
      "GIT_DIR",
      "GIT_EXTERNAL_DIFF",
      "XDG_CONFIG_HOME",
      "npm_config_script_shell",
      "Npm_Config_Node_Options",
      "NODE_OPTIONS",
      "PYTHONPATH",
      "PERL5OPT",
      "RUBYOPT",
      "BASH_CMDS",
      "HOME",
      "PS4",
    ])
      expect(isDangerousVariable(n), n).toBe(true);
    for (const n of ["CI", "FOO", "NODE", "LANG", "TZ"])
      expect(isDangerousVariable(n), n).toBe(false);
    expect(targetRisk("a[$(id)]", false, "read")).toContain("subscript");
    expect(targetRisk("x", true, "read")).toContain("run time");
    expect(targetRisk("a[2]", false, "read")).toBeUndefined();
  });

  it("builtins that change what later words run", () => {
    expect(builtinRisk("hash", [w("hash"), w("-p"), w("/x"), w("ls")])).toBeDefined();
    expect(builtinRisk("hash", [w("hash"), w("ls")])).toBeUndefined();
    expect(builtinRisk("enable", [w("enable"), w("-n"), w("echo")])).toBeDefined();
    expect(builtinRisk("read", [w("read"), w("-r"), w("line")])).toBeUndefined();
    expect(builtinRisk("read", [w("read"), w("-ra"), w("PATH")])).toBeDefined();
    expect(builtinRisk("read", [w("read"), w("-p"), w("prompt: "), w("PATH")])).toBeDefined();
    expect(builtinRisk("read", [w("read"), w("-d:"), w("x")])).toBeUndefined();
    expect(builtinRisk("printf", [w("printf"), w("-v"), w("PATH"), w("x")])).toBeDefined();
    expect(builtinRisk("printf", [w("printf"), w("%s"), w("x")])).toBeUndefined();
    expect(builtinRisk("export", [w("export"), w("PATH=/tmp")])).toBeDefined();
    expect(builtinRisk("declare", [w("declare"), w("-n"), w("r=x")])).toBeDefined();
    expect(builtinRisk("declare", [w("declare"), w("-a"), w("xs")])).toBeUndefined();
    expect(builtinRisk("test", [w("test"), w("-v"), w("a[$(id)]")])).toBeDefined();
    expect(builtinRisk("mapfile", [w("mapfile"), w("-C"), w("cb"), w("xs")])).toBeDefined();
  });

  it("sed scripts: e and w are found, ordinary scripts are understood; never throws (property)", () => {
    for (const ok of [
      "s/a/b/g",
      "1,10p",
      "/^#/d",
      "s|x|y|",
      "y/abc/xyz/",
      "$!N;P;D",
      "1i\\\nhello",
      "s/e/w/g",
    ])
      expect(sedScriptRisk(ok), ok).toBeUndefined();
    for (const bad of ["e id", "1e id", "s/a/id/e", "w out", "s/a/b/w out", "/x/W out", "k"])
      expect(sedScriptRisk(bad), bad).toBeDefined();
    fc.assert(
      fc.property(fc.string({ maxLength: 200 }), (s) => {
        sedScriptRisk(s);
      }),
    );
    // an e command anywhere in a sequence of ordinary commands is found
    fc.assert(
      fc.property(
        fc.array(fc.constantFrom("p", "s/a/b/", "/x/d", "1,2p", "y/a/b/"), { maxLength: 5 }),
        fc.nat(),
        (cmds, at) => {
          const list: string[] = [...cmds];
          list.splice(at % (list.length + 1), 0, "e id");
          expect(sedScriptRisk(list.join(";"))).toBeDefined();
        },
      ),
    );
  });

  it("awk programs that run commands or write files", () => {
    expect(awkScriptRisk("{ print $1 }")).toBeUndefined();
    expect(awkScriptRisk('BEGIN { system("id") }')).toBeDefined();
    expect(awkScriptRisk('{ print | "sh" }')).toBeDefined();
    expect(awkScriptRisk('{ print > "f" }')).toBeDefined();
    expect(awkScriptRisk('{ print "a > b" }')).toBeUndefined();
  });

  it("sensitive paths", () => {
    for (const p of [
      ".git/config",
      "./.git/hooks/pre-commit",
      "package.json",
      "a/Makefile",
      "/etc/profile",
      "~/.bashrc",
      "node_modules/x/index.js",
      "vitest.config.ts",
      ".npmrc",
    ])
      expect(isSensitivePath(p), p).toBe(true);
    for (const p of ["out.log", "build/app.js", "src/index.ts", "README.md"])
      expect(isSensitivePath(p), p).toBe(false);
  });

  it("exec-capable options, attached and run-time values", () => {
    expect(execCapableHits(["rg", "--pre=curl", "x"]).map((h) => h.option)).toEqual(["--pre"]);
    expect(execCapableHits(["tar", "-Icurl", "-xf", "a"]).map((h) => h.option)).toEqual(["-I"]);
    expect(execCapableHits(["find", ".", "-name", "x"])).toEqual([]);
    expect(execCapableHits(["find", ".", "$x"], [false, false, true]).map((h) => h.option)).toEqual(
      ["*"],
    );
    expect(execCapableHits(["git", "-C", ".", "status"])).toEqual([]);
    expect(execCapableHits(["git", "submodule", "foreach", "id"]).map((h) => h.option)).toEqual([
      "submodule",
      "foreach",
    ]);
    expect(execCapableHits(["make", "CC=curl"]).map((h) => h.option)).toEqual(["(script)"]);
    expect(execCapableHits(["sed", "-n", "s/a/b/w out", "f"]).map((h) => h.option)).toEqual([
      "(script)",
    ]);
    expect(execCapableHits(["ls", "--pre=x"])).toEqual([]);
  });
});
