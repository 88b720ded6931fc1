import { mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { capture } from "../../test/cli-capture.ts";
import { run } from "../cli.ts";

/** stderr without the load-time warnings about exec-capable options (the npm test rule has them). */
const withoutExecOptionWarnings = (err: string) =>
  err
    .split("\n")
    .filter((l) => !l.includes("exec-capable options"))
    .join("\n");

let dir: string;
let rules: string;
let yaml: string;
let broken: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "execpolicy-cli-"));
  rules = join(dir, "policy.rules");
  yaml = join(dir, "policy.yaml");
  broken = join(dir, "broken.rules");
  await writeFile(
    rules,
    `prefix_rule(["git"], "prompt")\nprefix_rule(["git", "push"], "forbidden", justification="no pushing")\nprefix_rule(["npm", "test"])\n`,
  );
  await writeFile(
    yaml,
    "version: 1\nrules:\n  - pattern: [terraform]\n    decision: prompt\n    except: [{ pattern: [terraform, fmt], decision: allow }]\n",
  );
  await writeFile(broken, `prefix_rule(["x"], decision="deny")\n`);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("execpolicy check", () => {
  it("argv: one JSON document on stdout, exit 0 whatever the decision", async () => {
    const c = capture();
    expect(await run(["check", "-r", rules, "--", "git", "push", "origin"], c.io)).toBe(0);
    const doc = JSON.parse(c.out());
    expect(doc.decision).toBe("forbidden");
    expect(doc.commands[0]).toMatchObject({
      argv: ["git", "push", "origin"],
      decision: "forbidden",
      unmatched: false,
    });
    expect(doc.matchedRules.map((m: { matchedPrefix: string[] }) => m.matchedPrefix)).toEqual([
      ["git"],
      ["git", "push"],
    ]);
    expect(doc.notes).toEqual([]);
    expect(withoutExecOptionWarnings(c.err())).toBe("");
  });

  it("--fail-on gives exit 3 when reached", async () => {
    expect(
      await run(
        ["check", "-r", rules, "--fail-on", "forbidden", "--", "git", "push"],
        capture().io,
      ),
    ).toBe(3);
    expect(
      await run(
        ["check", "-r", rules, "--fail-on", "forbidden", "--", "git", "status"],
        capture().io,
      ),
    ).toBe(0);
    expect(
      await run(["check", "-r", rules, "--fail-on", "prompt", "--", "git", "status"], capture().io),
    ).toBe(3);
    expect(
      await run(["check", "-r", rules, "--fail-on", "prompt", "--", "npm", "test"], capture().io),
    ).toBe(0);
  });

  it("--shell and --stdin check every command of a script", async () => {
    const c = capture();
    expect(
      await run(["check", "-r", rules, "--shell", "npm test > out.log && git push"], c.io),
    ).toBe(0);
    const doc = JSON.parse(c.out());
    expect(doc.decision).toBe("forbidden");
    expect(doc.commands.map((x: { argv: string[] }) => x.argv.join(" "))).toEqual([
      "npm test",
      "git push",
    ]);
    const s = capture("ls; npm test\n");
    expect(await run(["check", "-r", rules, "--stdin"], s.io)).toBe(0);
    expect(JSON.parse(s.out())).toMatchObject({
      decision: "prompt",
      commands: [{ argv: ["ls"], unmatched: true }, { argv: ["npm", "test"] }],
    });
  });

  it("argv that runs a shell script is analysed (bash -lc)", async () => {
    const c = capture();
    await run(["check", "-r", rules, "--", "bash", "-lc", "npm test && git push"], c.io);
    expect(JSON.parse(c.out()).decision).toBe("forbidden");
  });

  it("--format codex prints exactly the Codex document", async () => {
    const c = capture();
    expect(await run(["check", "-r", rules, "--format", "codex", "--", "git", "push"], c.io)).toBe(
      0,
    );
    expect(c.out()).toBe(
      '{"matchedRules":[{"prefixRuleMatch":{"matchedPrefix":["git"],"decision":"prompt"}},{"prefixRuleMatch":{"matchedPrefix":["git","push"],"decision":"forbidden","justification":"no pushing"}}],"decision":"forbidden"}\n',
    );
    const none = capture();
    await run(["check", "-r", rules, "--format", "codex", "--", "ls"], none.io);
    expect(none.out()).toBe('{"matchedRules":[]}\n');
    const resolved = capture();
    await run(
      [
        "check",
        "-r",
        rules,
        "--format",
        "codex",
        "--resolve-host-executables",
        "--",
        "/usr/bin/git",
        "status",
      ],
      resolved.io,
    );
    expect(JSON.parse(resolved.out()).matchedRules[0].prefixRuleMatch.resolvedProgram).toBe(
      "/usr/bin/git",
    );
  });

  it("mixes Codex and native files", async () => {
    const c = capture();
    await run(["check", "-r", rules, "-r", yaml, "--shell", "terraform fmt && npm test"], c.io);
    expect(JSON.parse(c.out()).decision).toBe("allow");
  });

  it("exits 2 when any file failed to load, and says which; the other files still apply", async () => {
    const c = capture();
    expect(await run(["check", "-r", rules, "-r", broken, "--", "npm", "test"], c.io)).toBe(2);
    expect(c.err()).toContain(`${broken}:1:1: invalid decision: deny`);
    expect(c.err()).toContain(`1 of 2 policy file(s) failed to load: ${broken}`);
    const doc = JSON.parse(c.out());
    expect(doc.decision).toBe("allow");
    expect(doc.loadErrors).toHaveLength(1);
    const codex = capture();
    expect(
      await run(
        ["check", "-r", join(dir, "missing.rules"), "--format", "codex", "--", "ls"],
        codex.io,
      ),
    ).toBe(2);
    expect(codex.out()).toBe("");
  });

  it("YAML files go through the compiled-policy cache; --no-cache bypasses it", async () => {
    const cache = join(dir, "cache");
    const args = ["check", "-r", yaml, "-r", rules, "--shell", "terraform fmt && git push"];
    const outputs: string[] = [];
    for (let i = 0; i < 2; i++) {
      const c = capture();
      c.io.env = { BOTTLEKIT_EXECPOLICY_CACHE_DIR: cache };
      expect(await run(args, c.io)).toBe(0);
      expect(withoutExecOptionWarnings(c.err())).toBe("");
      outputs.push(c.out());
    }
    expect(outputs[1]).toBe(outputs[0]);
    expect(JSON.parse(outputs[0] as string).decision).toBe("forbidden");
    // one entry per file: the YAML and the .rules file
    expect((await readdir(cache)).filter((f) => f.endsWith(".json"))).toHaveLength(2);

    const other = join(dir, "cache-unused");
    const c = capture();
    c.io.env = { BOTTLEKIT_EXECPOLICY_CACHE_DIR: other };
    expect(await run(["check", "--no-cache", ...args.slice(1)], c.io)).toBe(0);
    expect(c.out()).toBe(outputs[0]);
    await expect(readdir(other)).rejects.toThrow(/ENOENT/);
    const t = capture();
    t.io.env = { BOTTLEKIT_EXECPOLICY_CACHE_DIR: other };
    expect(await run(["test", "--no-cache", yaml], t.io)).toBe(0);
    await expect(readdir(other)).rejects.toThrow(/ENOENT/);
  });

  it("usage errors exit 2", async () => {
    expect(await run(["check", "--", "ls"], capture().io)).toBe(2);
    expect(await run(["check", "-r", rules], capture().io)).toBe(2);
    expect(await run(["check", "-r", rules, "--shell", "ls", "--", "ls"], capture().io)).toBe(2);
    expect(await run(["check", "-r", rules, "--format", "yaml", "--", "ls"], capture().io)).toBe(2);
    expect(
      await run(["check", "-r", rules, "--format", "codex", "--shell", "ls"], capture().io),
    ).toBe(2);
    const both = capture();
    expect(
      await run(["check", "-r", rules, "--json", "--format", "codex", "--", "ls"], both.io),
    ).toBe(2);
    expect(both.err()).toContain("contradict");
  });
});

describe("execpolicy test", () => {
  it("exit 0 when every example holds", async () => {
    const f = join(dir, "ok.rules");
    await writeFile(
      f,
      `prefix_rule(["git", "status"], match=["git status -s"], not_match=["git log"])\n`,
    );
    const c = capture();
    expect(await run(["test", f], c.io)).toBe(0);
    expect(c.out()).toContain(`ok ${f} (1 rule)`);
  });

  it("exit 3 when an example fails, with file:line:col", async () => {
    const f = join(dir, "fails.rules");
    await writeFile(
      f,
      `prefix_rule(["git"])\nprefix_rule(["git", "status"], not_match=["git status"])\n`,
    );
    const c = capture();
    expect(await run(["test", f], c.io)).toBe(3);
    expect(c.err()).toContain(`${f}:2:1: not_match example matched its rule: "git status"`);
  });

  it("--json prints one document", async () => {
    const f = join(dir, "fails-json.rules");
    await writeFile(f, `prefix_rule(["git", "status"], not_match=["git status"])\n`);
    const c = capture();
    expect(await run(["test", "--json", f], c.io)).toBe(3);
    const doc = JSON.parse(c.out());
    expect(doc).toMatchObject({
      ok: false,
      files: [{ path: f, ok: false }],
      errors: [{ kind: "example", line: 1, column: 1 }],
    });
    expect(doc.errors[0].text).toContain(`${f}:1:1:`);
  });

  it("exit 2 on a load error", async () => {
    const c = capture();
    expect(await run(["test", broken], c.io)).toBe(2);
    expect(c.err()).toMatch(/broken\.rules:1:1: /);
  });
});

describe("execpolicy schema / amend", () => {
  it("prints the JSON Schema", async () => {
    const c = capture();
    expect(await run(["schema"], c.io)).toBe(0);
    expect(JSON.parse(c.out()).properties.rules.type).toBe("array");
  });

  it("amends the project rules and refuses banned prefixes", async () => {
    const project = join(dir, "proj");
    const c = capture();
    expect(await run(["amend", "--project-dir", project, "--", "cargo", "build"], c.io)).toBe(0);
    expect(c.err()).toContain('prefix_rule(pattern=["cargo", "build"], decision="allow")');
    const again = capture();
    await run(["amend", "--project-dir", project, "--", "cargo", "build"], again.io);
    expect(again.err()).toContain("already in");
    const refused = capture();
    expect(
      await run(["amend", "--project-dir", project, "--", "bash", "-lc", "x"], refused.io),
    ).toBe(2);
    expect(refused.err()).toContain("refusing");
  });
});

describe("execpolicy check: inputs too big or too deep (issue 16)", () => {
  const cases: [string, string][] = [
    ["5,000 nested (", `${"(".repeat(5000)}git status${")".repeat(5000)}`],
    ["5,000 nested $(", `echo ${"$(".repeat(5000)}x${")".repeat(5000)}`],
    ["5,000 nested {", `${"{ ".repeat(5000)}x${"; }".repeat(5000)}`],
    ["5,000 &&", `${"npm test && ".repeat(5000)}npm test`],
    ["5,000 [[ ( ) ]]", `[[ ${"( ".repeat(5000)}x${" )".repeat(5000)} ]]`],
    ["1 MB", `npm test; ${"npm test; ".repeat(105_000)}`],
  ];
  for (const [what, script] of cases) {
    it(`${what}: prompt with a reason; --fail-on prompt exits 3 (--shell and --stdin)`, async () => {
      const c = capture();
      expect(
        await run(["check", "-r", rules, "--fail-on", "prompt", "--shell", script], c.io),
      ).toBe(3);
      const doc = JSON.parse(c.out());
      expect(doc.decision).toBe("prompt");
      expect(doc.notes.join(" ")).toMatch(/too long or too deeply nested|not understood/);
      expect(withoutExecOptionWarnings(c.err())).toBe("");
      const s = capture(script);
      expect(await run(["check", "-r", rules, "--fail-on", "prompt", "--stdin"], s.io)).toBe(3);
    });
  }
});

describe("execpolicy check for people (issue 23)", () => {
  it("on a terminal: one line per command, then the overall decision; JSON stays for --json", async () => {
    const c = capture();
    (c.io.stdout as { isTTY?: boolean }).isTTY = true;
    expect(await run(["check", "-r", rules, "--shell", "npm test && git push origin"], c.io)).toBe(
      0,
    );
    const lines = c.out().trimEnd().split("\n");
    expect(lines[0]).toMatch(/^allow\s+npm test\s+npm test \(.*policy\.rules:3:1\)$/);
    expect(lines[1]).toMatch(
      /^forbidden\s+git push origin\s+git push \(.*policy\.rules:2:1\) — no pushing$/,
    );
    expect(lines.at(-1)).toBe("decision: forbidden — `git push origin` rejected: no pushing");
    const j = capture();
    (j.io.stdout as { isTTY?: boolean }).isTTY = true;
    await run(["check", "-r", rules, "--json", "--", "npm", "test"], j.io);
    expect(JSON.parse(j.out()).decision).toBe("allow");
    const t = capture();
    await run(["check", "-r", rules, "--format", "text", "--", "uploader"], t.io);
    expect(t.out()).toContain("prompt     uploader  no rule matches (default)");
    expect(
      await run(["check", "-r", rules, "--json", "--format", "text", "--", "x"], capture().io),
    ).toBe(2);
  });

  it("loads the amendment files 'execpolicy amend' writes; --no-amendments does not", async () => {
    const project = await mkdtemp(join(tmpdir(), "execpolicy-amended-"));
    const home = await mkdtemp(join(tmpdir(), "execpolicy-home-"));
    try {
      const p = capture(undefined, project);
      expect(await run(["amend", "--project-dir", project, "--", "cargo", "build"], p.io)).toBe(0);
      const u = capture(undefined, project);
      u.io.env.BOTTLEKIT_HOME = home;
      expect(await run(["amend", "--scope", "user", "--", "make", "lint"], u.io)).toBe(0);
      const check = async (args: string[]) => {
        const c = capture(undefined, project);
        c.io.env.BOTTLEKIT_HOME = home;
        await run(["check", "-r", rules, ...args], c.io);
        return JSON.parse(c.out()).decision;
      };
      expect(await check(["--", "cargo", "build"])).toBe("allow");
      expect(await check(["--", "make", "lint"])).toBe("allow");
      expect(await check(["--no-amendments", "--", "cargo", "build"])).toBe("prompt");
      // an amendment never loosens a stricter rule of the -r files
      const a = capture(undefined, project);
      await run(["amend", "--project-dir", project, "--", "git", "push", "origin"], a.io);
      expect(await check(["--", "git", "push", "origin"])).toBe("forbidden");
    } finally {
      await rm(project, { recursive: true, force: true });
      await rm(home, { recursive: true, force: true });
    }
  });
});
