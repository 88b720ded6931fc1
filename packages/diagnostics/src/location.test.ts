import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { formatKeyPath, formatLocation, lineColAt } from "./index.ts";

describe("formatKeyPath", () => {
  it("writes paths as users write them", () => {
    expect(formatKeyPath(["model_providers", 0, "base_url"])).toBe("model_providers[0].base_url");
    expect(formatKeyPath(["models", "gpt-4.1"])).toBe('models["gpt-4.1"]');
    expect(formatKeyPath([])).toBe("(root)");
  });
});

describe("formatLocation", () => {
  it("prints what is known", () => {
    expect(formatLocation("a.yml", 3, 7)).toBe("a.yml:3:7");
    expect(formatLocation("a.yml", 3)).toBe("a.yml:3");
    expect(formatLocation("a.yml")).toBe("a.yml");
  });
});

describe("lineColAt", () => {
  it("agrees with splitting the text at the offset (property)", () => {
    fc.assert(
      fc.property(
        fc.string({ unit: fc.constantFrom("a", "b", "\n", "\r", "é") }),
        fc.nat(),
        (text, n) => {
          const offset = text.length ? n % (text.length + 1) : 0;
          const before = text.slice(0, offset).split("\n");
          expect(lineColAt(text, offset)).toEqual({
            line: before.length,
            col: (before.at(-1) as string).length + 1,
          });
        },
      ),
    );
  });
  it("clamps offsets past the end", () => {
    expect(lineColAt("ab\ncd", 99)).toEqual({ line: 2, col: 3 });
  });
});
