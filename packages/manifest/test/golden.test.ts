/**
 * Golden fixtures: one directory per error (or warning) message under test/fixtures/<case>/, with
 * a `home/` (BOTTLEKIT_HOME), an optional `project/` (the cwd) and `expected.txt`. By default the
 * case runs `validatePaths([])` over the whole tree; a `case.json` with `{"agent": name}` resolves
 * that agent instead, and `{"paths": [...]}` validates those paths (relative to `project/`). Paths are shown relative to the case directory.
 * Regenerate after an intended wording change with `UPDATE_GOLDEN=1 npx vitest run test/golden.test.ts`
 * and review the diff.
 */
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { formatIssue, isManifestError, resolveAgent, validatePaths } from "../src/index.ts";

const fixtures = join(dirname(fileURLToPath(import.meta.url)), "fixtures");
const cases = readdirSync(fixtures).sort();

function run(dir: string): string {
  const loc = { home: join(dir, "home"), cwd: join(dir, "project"), env: {} };
  const casePath = join(dir, "case.json");
  const spec = existsSync(casePath)
    ? (JSON.parse(readFileSync(casePath, "utf8")) as { agent?: string; paths?: string[] })
    : {};
  let out: string;
  if (spec.agent !== undefined) {
    try {
      const a = resolveAgent(spec.agent, loc);
      out = `resolved ${a.name}\n${a.warnings.map(formatIssue).join("\n")}`;
    } catch (error) {
      if (!isManifestError(error)) throw error;
      out = `${error.code}\n${error.message}${error.hint && !error.message.includes(error.hint) ? `\nhint: ${error.hint}` : ""}`;
    }
  } else {
    const v = validatePaths(spec.paths ?? [], loc);
    out = `${v.ok ? "valid" : "invalid"}\n${v.issues.map(formatIssue).join("\n")}`;
  }
  return `${out.split(dir).join("<case>").trimEnd()}\n`;
}

describe("golden error messages", () => {
  it("has fixtures", () => {
    expect(cases.length).toBeGreaterThanOrEqual(20);
  });

  for (const name of cases) {
    it(name, () => {
      const dir = join(fixtures, name);
      const actual = run(dir);
      const expectedPath = join(dir, "expected.txt");
      if (process.env["UPDATE_GOLDEN"] === "1" || !existsSync(expectedPath)) {
        writeFileSync(expectedPath, actual);
      }
      expect(actual).toBe(readFileSync(expectedPath, "utf8"));
      // Every error line names a location.
      for (const line of actual.split("\n")) {
        if (/^<case>\//.test(line)) expect(line).toMatch(/^<case>\/[^:]+:\d+:\d+: /);
      }
    });
  }
});
