import { describe, expect, it } from "vitest";
import { z } from "zod";
import { describeSchemaIssue, formatSchemaIssue } from "./index.ts";

const schema = z.strictObject({
  scope: z.enum(["agent", "bottle", "global"]),
  tokens: z.number().int().positive(),
  name: z.string().min(2),
  listen: z.string(),
  window: z.string().regex(/^\d+d$/, "use <N>d"),
  tags: z.array(z.string()).max(1),
});

function messages(input: unknown): string[] {
  const r = schema.safeParse(input);
  expect(r.success).toBe(false);
  return r.success ? [] : r.error.issues.map((i) => formatSchemaIssue(i, input));
}

describe("schema issues in our words", () => {
  it("says what a value must be, what it was, and the closest option", () => {
    const out = messages({
      scope: "bottel",
      tokens: -5,
      name: "x",
      listen: 8080,
      window: "daily",
      tags: ["a", "b"],
    });
    expect(out).toContain(
      'scope: must be one of agent, bottle or global (got "bottel"); did you mean "bottle"?',
    );
    expect(out).toContain("tokens: must be greater than 0 (got -5)");
    expect(out).toContain('name: must be at least 2 character(s) long (got "x")');
    expect(out).toContain("listen: must be a string (got 8080)");
    expect(out).toContain('window: use <N>d (got "daily")');
    expect(out).toContain("tags: must have at most 1 item(s) (got a list)");
    for (const line of out) expect(line).not.toMatch(/Invalid|expected|received/);
  });

  it("a missing key is required; unknown keys are named", () => {
    const out = messages({
      scope: "agent",
      tokens: 1,
      name: "ab",
      window: "1d",
      tags: [],
      extra: 1,
    });
    expect(out).toContain("listen: is required");
    expect(out).toContain("(root): unknown key extra");
  });

  it("keeps a schema's own custom message", () => {
    const r = z
      .string()
      .refine(() => false, { message: "a budget needs tokens or usd" })
      .safeParse("x");
    expect(r.success).toBe(false);
    if (!r.success)
      expect(describeSchemaIssue(r.error.issues[0]!, "x")).toBe("a budget needs tokens or usd");
  });
});
