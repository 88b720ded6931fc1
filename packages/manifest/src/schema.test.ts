import { describe, expect, it, vi } from "vitest";
import { z } from "zod";
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

describe("schemas are built on first use", () => {
  it("importing the package builds none; validating a bottle builds the bottle schema", async () => {
    // egress-dlp's route schema goes into the bottle schema when that is built: count the reads.
    vi.resetModules();
    const real =
      await vi.importActual<typeof import("@bottlekit/egress-dlp")>("@bottlekit/egress-dlp");
    let reads = 0;
    vi.doMock("@bottlekit/egress-dlp", () => ({
      ...real,
      get routeSchema() {
        reads++;
        return real.routeSchema;
      },
    }));
    try {
      const m = await import("./index.ts");
      expect(reads).toBe(0);
      m.validateManifestText("---\nbottle: base\n---\n", "agent", "agents/a.md");
      expect(reads).toBe(0);
      const r = m.validateManifestText("---\ncutoff: nope\n---\n", "bottle", "bottles/b.md");
      expect(r.issues.map((i) => i.path)).toEqual(["cutoff"]);
      expect(reads).toBe(1);
      // The exported constant is the same schema, built once.
      expect(m.bottleSchema.safeParse({ cutoff: "kill" }).success).toBe(true);
      expect(m.bottleSchema).toBeInstanceOf(z.ZodObject);
      expect(Object.keys(m.bottleSchema.shape)).toContain("egress");
      expect(reads).toBe(1);
    } finally {
      vi.doUnmock("@bottlekit/egress-dlp");
      vi.resetModules();
    }
  });
});
