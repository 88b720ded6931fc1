import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { parseManifestText, validateFrontmatter } from "../src/index.ts";
import { emptyAcc, layerToAcc, mergeAcc } from "../src/merge.ts";

const KEYS = [
  "env",
  "extends",
  "egress",
  "routes",
  "host",
  "matches",
  "budget",
  "tokens",
  "cutoff",
  "supervise",
  "sandbox",
  "filesystem",
  "read_only",
  "bottle",
  "model",
  "git",
  "role",
  "__proto__",
  "constructor",
  "A",
];

/** Arbitrary YAML-ish values built from manifest vocabulary, so the schema is exercised deeply. */
const value: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
  leaf: fc.oneof(
    fc.constantFrom(
      "base",
      "api.github.com",
      "?",
      "${HOST}",
      "${bad",
      "cutoff",
      "kill",
      "/repos",
      "24h",
    ),
    fc.string(),
    fc.integer(),
    fc.double(),
    fc.boolean(),
    fc.constant(null),
  ),
  node: fc.oneof(
    { depthSize: "small" },
    tie("leaf"),
    fc.array(tie("node"), { maxLength: 4 }),
    fc.dictionary(fc.oneof(fc.constantFrom(...KEYS), fc.string()), tie("node"), { maxKeys: 5 }),
  ),
})).node;

/** Broken YAML: valid YAML text with random edits applied. */
const mutated = fc
  .tuple(
    fc.dictionary(fc.constantFrom(...KEYS), value, { maxKeys: 6 }),
    fc.array(
      fc.tuple(
        fc.nat(),
        fc.constantFrom(
          "",
          ":",
          "- ",
          "[",
          "]",
          "{",
          "}",
          "\t",
          "  ",
          "'",
          '"',
          "&a",
          "*a",
          "!!x",
          "\n",
          "---",
          "? ",
        ),
      ),
      { maxLength: 4 },
    ),
  )
  .map(([obj, edits]) => {
    let text = stringify(obj);
    for (const [at, s] of edits) {
      const i = text.length === 0 ? 0 : at % text.length;
      text = text.slice(0, i) + s + text.slice(i + 1);
    }
    return text;
  });

const frontmatter = fc.oneof(
  mutated,
  fc.string(),
  value.map((v) => stringify(v)),
);
const file = fc.oneof(
  frontmatter.map((y) => `---\n${y}\n---\nbody`),
  frontmatter, // no frontmatter markers at all
  fc.string().map((s) => `---\n${s}`),
);

describe("loader properties", () => {
  it("never throws on any input, and every issue names a file, line:col and severity", () => {
    fc.assert(
      fc.property(file, fc.constantFrom("bottle" as const, "agent" as const), (text, kind) => {
        const parsed = parseManifestText("/h/bottles/x.md", text);
        const res = validateFrontmatter(parsed, kind);
        const lines = text.split("\n").length;
        for (const issue of res.issues) {
          expect(issue.file).toBe("/h/bottles/x.md");
          expect(Number.isInteger(issue.line) && issue.line >= 1 && issue.line <= lines + 1).toBe(
            true,
          );
          expect(Number.isInteger(issue.col) && issue.col >= 1).toBe(true);
          expect(issue.message.length).toBeGreaterThan(0);
          expect(typeof issue.path).toBe("string");
        }
        if (res.value !== undefined) {
          expect(res.issues.filter((i) => i.severity === "error")).toEqual([]);
          // A valid layer always merges.
          const acc = emptyAcc();
          mergeAcc(
            acc,
            layerToAcc(
              res.value as Record<string, unknown>,
              { kind, name: "x", file: "f" },
              parsed.locate,
            ),
          );
          mergeAcc(
            acc,
            layerToAcc(
              res.value as Record<string, unknown>,
              { kind, name: "x", file: "f" },
              parsed.locate,
            ),
          );
        } else {
          expect(res.issues.some((i) => i.severity === "error")).toBe(true);
        }
      }),
      { numRuns: 600 },
    );
  });

  it("turns deep nesting, huge files and error floods into located issues", () => {
    const cases = [
      `---\na: ${"[".repeat(50000)}\n---\n`,
      `---\ntools: ${"[".repeat(20000)}${"]".repeat(20000)}\n---\n`,
      `---\n${Array.from({ length: 3000 }, (_, i) => `${" ".repeat(i)}k${i}:`).join("\n")}\n---\n`,
      `---\nbottle: b\n---\n${"x".repeat(1024 * 1024)}`,
    ];
    for (const text of cases) {
      const res = validateFrontmatter(parseManifestText("f.md", text), "agent");
      expect(res.value).toBeUndefined();
      expect(res.issues.length).toBeGreaterThan(0);
      expect(res.issues.length).toBeLessThanOrEqual(21);
      for (const i of res.issues) expect(i.line).toBeGreaterThanOrEqual(1);
    }
  });

  it("never lets a key like __proto__ reach an object prototype", () => {
    const proto = validateFrontmatter(
      parseManifestText("f.md", '---\nenv:\n  __proto__: "x"\n---\n'),
      "bottle",
    );
    expect(proto.issues[0]).toMatchObject({ path: "env.__proto__", line: 3, col: 3 });
    const parsed = parseManifestText("f.md", "---\nenv:\n  constructor: y\n  toString: z\n---\n");
    const res = validateFrontmatter(parsed, "bottle");
    expect(res.value).toBeDefined();
    const acc = emptyAcc();
    mergeAcc(
      acc,
      layerToAcc(
        res.value as Record<string, unknown>,
        { kind: "bottle", name: "x", file: "f" },
        parsed.locate,
      ),
    );
    const env = acc.value["env"] as Record<string, unknown>;
    expect(Object.getPrototypeOf(env)).toBe(Object.prototype);
    expect(Object.keys(env).sort()).toEqual(["constructor", "toString"]);
    expect(({} as Record<string, unknown>)["kind"]).toBeUndefined();
  });
});
