import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { AhoCorasick } from "./aho.ts";
import { TOKEN_RULES } from "./rules.ts";

/** Every (keyword id, end) pair, found by trying each keyword at each offset (ASCII case folded). */
function naive(patterns: readonly string[], text: string): string[] {
  const lower = text.toLowerCase();
  const out: string[] = [];
  for (let end = 1; end <= text.length; end++) {
    patterns.forEach((p, id) => {
      if (end >= p.length && lower.startsWith(p, end - p.length)) out.push(`${id}@${end}`);
    });
  }
  return out;
}

function found(ac: AhoCorasick, text: string): string[] {
  const out: string[] = [];
  ac.search(text, (id, end) => out.push(`${id}@${end}`));
  return out;
}

describe("keyword automaton", () => {
  it("reports exactly the occurrences of every keyword, overlapping and nested (property)", () => {
    const word = fc.string({
      unit: fc.constantFrom("a", "b", "c", "-", " "),
      minLength: 1,
      maxLength: 6,
    });
    fc.assert(
      fc.property(
        fc.uniqueArray(word, { minLength: 1, maxLength: 12 }),
        fc.string({
          unit: fc.constantFrom("a", "b", "c", "A", "B", "-", " ", "x", "é"),
          maxLength: 80,
        }),
        (patterns, text) => {
          const ac = new AhoCorasick(patterns);
          const expected = naive(patterns, text);
          // the same pairs; at one end, the order of ids is the automaton's own
          expect(found(ac, text).sort()).toEqual(expected.sort());
        },
      ),
      { numRuns: 400 },
    );
  });

  it("builds its transition table in the trie's own memory (one table of states × width, not two)", () => {
    const keywords = [...new Set(TOKEN_RULES.flatMap((r) => r.keywords))];
    const before = process.memoryUsage().arrayBuffers;
    const t = new AhoCorasick(keywords).tables();
    const allocated = process.memoryUsage().arrayBuffers - before;
    const trie = (1 + keywords.reduce((a, k) => a + k.length, 0)) * t.width * 4;
    // the trie table, the 64 Ki symbol map and the small per-state arrays (a few KiB)
    expect(allocated).toBeLessThan(trie + 65_536 + 64 * 1024);
    expect(t.next.buffer.byteLength).toBe(trie);
  });

  it("finds every token keyword inside text around it", () => {
    const keywords = [...new Set(TOKEN_RULES.flatMap((r) => r.keywords))];
    const ac = new AhoCorasick(keywords);
    const text = keywords.map((k, i) => `${i % 2 === 0 ? k.toUpperCase() : k} `).join("x");
    expect(found(ac, text).sort()).toEqual(naive(keywords, text).sort());
  });
});
