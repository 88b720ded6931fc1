import { readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { describe, expect, it } from "vitest";

const srcDir = import.meta.dirname;

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return e.name === "__snapshots__" ? [] : sourceFiles(path);
    return e.name.endsWith(".ts") && !e.name.endsWith(".test.ts") ? [path] : [];
  });
}

// The first locale-aware call initialises ICU: about 30 ms of CPU and 8 MiB of memory, which a
// CLI run (~60 ms of work in all) pays again in every process. The CLI bundle holds the whole
// library, so none of it may format or compare through Intl; group digits and sort by hand.
const LOCALE_AWARE =
  /\b(toLocaleString|toLocaleDateString|toLocaleTimeString|localeCompare)\s*\(|\bIntl\s*\./;

describe("CLI start-up", () => {
  it("finds the library's sources", () => {
    const files = sourceFiles(srcDir).map((f) => relative(srcDir, f));
    expect(files).toContain("cli.ts");
    expect(files).toContain(join("shell", "extract.ts"));
  });

  it("no library source calls a locale-aware (ICU-initialising) API", () => {
    const offenders: string[] = [];
    for (const file of sourceFiles(srcDir)) {
      readFileSync(file, "utf8")
        .split("\n")
        .forEach((line, i) => {
          if (LOCALE_AWARE.test(line))
            offenders.push(`${relative(srcDir, file)}:${i + 1}: ${line.trim()}`);
        });
    }
    expect(offenders).toEqual([]);
  });

  it("the detector sees the spellings it is meant to refuse", () => {
    for (const line of [
      "n.toLocaleString('en')",
      "a.localeCompare(b)",
      "new Intl.NumberFormat()",
      "d.toLocaleDateString ()",
    ])
      expect(LOCALE_AWARE.test(line), line).toBe(true);
    for (const line of ["String(n).replace(/x/g, ',')", "a < b ? -1 : 1", "intlike.x"])
      expect(LOCALE_AWARE.test(line), line).toBe(false);
  });
});
