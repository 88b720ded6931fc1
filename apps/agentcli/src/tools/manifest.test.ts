import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { isAgentCliError } from "../errors.ts";
import { parseToolsManifest } from "./manifest.ts";

describe("parseToolsManifest", () => {
  it("normalises envPassthrough to upper case without duplicates and resolves ./tools/bin against the file", () => {
    const [t] = parseToolsManifest(
      JSON.stringify({
        tools: [
          {
            name: "x",
            command: ["./tools/bin/x", "--flag"],
            envPassthrough: ["oai_api_key", "OAI_API_KEY"],
            timeoutSec: 2,
          },
        ],
      }),
      "/kit/tools.json",
      [],
    );
    expect(t).toMatchObject({
      name: "x",
      command: ["./tools/bin/x", "--flag"],
      resolved: ["/kit/tools/bin/x", "--flag"],
      envPassthrough: ["OAI_API_KEY"],
      timeoutSec: 2,
    });
  });

  it("refuses an escape out of ./tools/bin", () => {
    expect(() =>
      parseToolsManifest(
        JSON.stringify({ tools: [{ name: "x", command: ["./tools/bin/../../evil"] }] }),
        "/kit/tools.json",
        [],
      ),
    ).toThrow(/under \.\/tools\/bin/);
  });

  it("property: any JSON document either parses or fails with an AgentCliError naming the file", () => {
    fc.assert(
      fc.property(fc.oneof(fc.json(), fc.string()), (text) => {
        try {
          parseToolsManifest(text, "t.json", ["shell"]);
        } catch (error) {
          expect(isAgentCliError(error)).toBe(true);
          expect((error as Error).message.startsWith("t.json")).toBe(true);
        }
      }),
      { numRuns: 300 },
    );
  });
});
