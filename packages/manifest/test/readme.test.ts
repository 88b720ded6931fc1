// Every manifest the README shows is a fixture: it must validate as the kind it illustrates.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { validateManifestText } from "../src/index.ts";

const readme = readFileSync(new URL("../README.md", import.meta.url), "utf8");
const blocks = [...readme.matchAll(/```markdown\n([\s\S]*?)```/g)].map((m) => m[1] as string);

describe("README manifests", () => {
  it("shows a bottle and an agent", () => {
    expect(blocks.length).toBeGreaterThanOrEqual(2);
  });

  it.each(blocks.map((b, i) => [i, b] as const))("block %i validates", (_i, text) => {
    const kind = /^bottle:/m.test(text) ? "agent" : "bottle";
    const v =
      kind === "agent"
        ? validateManifestText(text, "agent", "README.md")
        : validateManifestText(text, "bottle", "README.md");
    expect(v.errors).toEqual([]);
    expect(v.value).toBeDefined();
  });
});
