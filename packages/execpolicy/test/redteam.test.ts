import { readFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { checkShellSync } from "../src/check.ts";
import { loadPolicySources } from "../src/load-sources.ts";
import type { Policy } from "../src/policy.ts";
import { loadBashParser } from "../src/shell/parser.ts";
import { REDTEAM_DIR, readCorpus } from "./redteam/corpus.ts";

function load(file: string): Policy {
  const path = join(REDTEAM_DIR, file);
  const r = loadPolicySources([{ path, text: readFileSync(path, "utf8") }]);
  expect(r.errors).toEqual([]);
  return r.policy;
}

beforeAll(async () => {
  await loadBashParser();
});

describe("red-team corpus (issue 16)", () => {
  const corpus = readCorpus();

  it("has at least 300 scripts covering every class", () => {
    expect(corpus.length).toBeGreaterThanOrEqual(300);
    const kinds = new Set(corpus.map((e) => e.kind));
    for (const k of [
      "expansion",
      "state",
      "runtime-options",
      "startup",
      "variables",
      "exec-options",
      "write-then-run",
      "heredoc",
      "held",
      "benign",
    ])
      expect(kinds).toContain(k);
  });

  it("every script gets its expected decision under the allowlist policy", () => {
    const policy = load("policy.rules");
    const wrong = corpus
      .map((e) => ({ e, got: checkShellSync(policy, e.script).decision }))
      .filter(({ e, got }) => got !== e.expected)
      .map(({ e, got }) => `corpus.txt:${e.line} expected ${e.expected}, got ${got}: ${e.script}`);
    expect(wrong).toEqual([]);
  });

  it("no script that is not allowed by the allowlist is allowed by the deny-only policy", () => {
    const policy = load("deny-only.yaml");
    const allowed = corpus
      .filter((e) => e.expected !== "allow")
      .filter((e) => checkShellSync(policy, e.script).decision === "allow")
      .map((e) => `corpus.txt:${e.line}: ${e.script}`);
    expect(allowed).toEqual([]);
  });
});
