import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { applyHunks, PatchError, parseUnifiedDiff } from "./patch.ts";

/** A one-hunk unified diff replacing lines [start, start+del) of `a` by `ins`, with up to 3 lines of context. */
function makeDiff(a: string[], start: number, del: number, ins: string[]): string {
  const ctxStart = Math.max(0, start - 3);
  const ctxEnd = Math.min(a.length, start + del + 3);
  const lines: string[] = [];
  for (let i = ctxStart; i < start; i++) lines.push(` ${a[i]}`);
  for (let i = start; i < start + del; i++) lines.push(`-${a[i]}`);
  for (const l of ins) lines.push(`+${l}`);
  for (let i = start + del; i < ctxEnd; i++) lines.push(` ${a[i]}`);
  const oldLines = ctxEnd - ctxStart;
  const newLines = oldLines - del + ins.length;
  const oldStart = oldLines === 0 ? ctxStart : ctxStart + 1;
  const newStart = newLines === 0 ? ctxStart : ctxStart + 1;
  return `--- a/f.txt\n+++ b/f.txt\n@@ -${oldStart},${oldLines} +${newStart},${newLines} @@\n${lines.join("\n")}\n`;
}

describe("unified diffs", () => {
  it("creates, modifies and reports a mismatch", () => {
    const [create] = parseUnifiedDiff("--- /dev/null\n+++ b/n.txt\n@@ -0,0 +1,2 @@\n+a\n+b\n");
    expect(create?.oldPath).toBeUndefined();
    expect(applyHunks(undefined, create!)).toBe("a\nb\n");
    const [mod] = parseUnifiedDiff("--- a/x\n+++ b/x\n@@ -2,1 +2,1 @@\n-two\n+TWO\n");
    expect(applyHunks("one\ntwo\nthree\n", mod!)).toBe("one\nTWO\nthree\n");
    // context found at an offset (the file grew above the hunk)
    expect(applyHunks("zero\none\ntwo\nthree\n", mod!)).toBe("zero\none\nTWO\nthree\n");
    expect(() => applyHunks("one\nthree\n", mod!)).toThrow(PatchError);
    expect(() => parseUnifiedDiff("--- a/x\n+++ b/x\n@@ -1,2 +1,1 @@\n-a\n")).toThrow(
      /hunk says -2 \+1 lines but has -1 \+0/,
    );
    expect(() => parseUnifiedDiff("not a diff")).toThrow(/no file patch found/);
  });

  it("property: a diff of a random edit applies and gives the edited text", () => {
    const line = fc.string({ maxLength: 6 }).map((s) => s.replace(/[\r\n]/g, ""));
    fc.assert(
      fc.property(
        fc.array(line, { minLength: 1, maxLength: 30 }),
        fc.nat(),
        fc.nat(5),
        fc.array(line, { maxLength: 5 }),
        (a, s, d, ins) => {
          const start = s % (a.length + 1);
          const del = Math.min(d, a.length - start);
          if (del === 0 && ins.length === 0) return;
          const expected = [...a.slice(0, start), ...ins, ...a.slice(start + del)];
          const patches = parseUnifiedDiff(makeDiff(a, start, del, ins));
          const out = applyHunks(`${a.join("\n")}\n`, patches[0]!);
          expect(out).toBe(expected.length === 0 ? "" : `${expected.join("\n")}\n`);
        },
      ),
      { numRuns: 300 },
    );
  });

  it("property: random text never throws anything but PatchError", () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 300 }), (text) => {
        try {
          for (const p of parseUnifiedDiff(`--- a/x\n+++ b/x\n${text}`)) applyHunks("a\nb\n", p);
        } catch (error) {
          expect(error).toBeInstanceOf(PatchError);
        }
      }),
    );
  });
});
