/**
 * The real-bash oracle in the test suite (issue 16): at least 20,000 generated scripts; every one
 * decided `allow` runs in a sandbox under strace, and no program it executes may be forbidden or
 * missing from the decision. `bench/oracle.ts` runs the longer 200,000-script campaign.
 */
import { accessSync, constants } from "node:fs";
import { describe, expect, it } from "vitest";
import { checkShellSync } from "../src/check.ts";
import { parseRulesFile } from "../src/codex-rules.ts";
import { loadBashParser } from "../src/shell/parser.ts";
import { escapesOf, runOracle } from "./oracle/oracle.ts";
import { REQUIRED_TOOLS, runBatch } from "./oracle/sandbox.ts";

const COUNT = Math.max(20_000, Number(process.env.EXECPOLICY_ORACLE_SCRIPTS ?? 0));

describe("real-bash oracle", () => {
  it("has bubblewrap, strace and bash installed (CI installs them; never skipped)", () => {
    for (const tool of REQUIRED_TOOLS) expect(() => accessSync(tool, constants.X_OK)).not.toThrow();
  });

  it("records what bash really runs and catches a decision that left a program out", async () => {
    await loadBashParser();
    const policy = parseRulesFile(
      `prefix_rule(["ls"])\nprefix_rule(["curl"], "forbidden")`,
      "oracle.rules",
    ).policy;
    const scripts = ["ls", "x='a[$(curl -s x)]'; echo $((x))", "echo hi | cat"];
    const run = await runBatch(scripts, 60_000);
    expect(run.exitCode).toBe(0);
    expect(run.unattributed).toEqual([]);
    expect(run.execs[0]?.map((e) => e.argv)).toEqual([["ls"]]);
    // bash ran curl while expanding the arithmetic: the recording sees it
    expect(run.execs[1]?.map((e) => e.argv)).toEqual([["curl", "-s", "x"]]);
    expect(run.execs[2]?.map((e) => e.argv[0])).toEqual(["cat"]);
    // had the checker allowed script 1 listing only echo, the oracle reports the escape
    const claimed = { ...checkShellSync(policy, "echo"), decision: "allow" as const };
    const escapes = escapesOf(
      policy,
      "oracle.rules",
      scripts[1] as string,
      claimed,
      run.execs[1] ?? [],
    );
    expect(escapes.map((e) => e.why)).toEqual(["ran curl, which the decision did not list"]);
    // and a listed program run with a forbidden argv is an escape too
    const listed = checkShellSync(policy, "curl x || ls");
    expect(escapesOf(policy, "oracle.rules", "…", listed, run.execs[1] ?? [])[0]?.why).toContain(
      "forbidden",
    );
  });

  it(`runs ${COUNT.toLocaleString("en")} generated scripts with no escape`, async () => {
    const stats = await runOracle({ count: COUNT, seed: 16_2026 });
    const report = [
      ...stats.problems,
      ...stats.escapes
        .slice(0, 20)
        .map((e) => `[${e.policy}] ${e.why}\n  script: ${JSON.stringify(e.script)}`),
    ];
    expect(report).toEqual([]);
    expect(stats.generated).toBe(COUNT);
    // enough scripts are allowed, run and recorded for the run to mean something
    expect(stats.executed).toBeGreaterThan(COUNT / 10);
    expect(stats.execs).toBeGreaterThan(COUNT / 20);
  }, 1_800_000);
});
