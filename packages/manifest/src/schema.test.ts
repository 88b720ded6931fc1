import { describe, expect, it } from "vitest";
import { agentJsonSchema, bottleJsonSchema } from "./schema.ts";

describe("JSON Schemas", () => {
  it("bottle frontmatter schema matches the snapshot", () => {
    const s = bottleJsonSchema();
    expect(s["additionalProperties"]).toBe(false);
    expect(s).toMatchSnapshot();
  });

  it("agent frontmatter schema matches the snapshot", () => {
    const s = agentJsonSchema();
    expect(s["required"]).toEqual(["bottle"]);
    expect(s).toMatchSnapshot();
  });
});
