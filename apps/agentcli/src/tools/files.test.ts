import { mkdir, mkdtemp, readFile, realpath, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { applyPatchTool, readFileTool, searchFilesTool } from "./files.ts";

let root: string;
beforeEach(async () => {
  root = await realpath(await mkdtemp(join(tmpdir(), "agentcli-files-")));
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

describe("file tools", () => {
  it("read_file returns the first 256 KiB of a large file and says so", async () => {
    await writeFile(join(root, "big.txt"), "x".repeat(300 * 1024));
    const r = await readFileTool(root, { path: "big.txt" });
    expect(r).toMatchObject({ sizeBytes: 300 * 1024, truncated: true });
    expect(r.content.length).toBe(256 * 1024);
  });

  it("search_files finds literal text, skips .git and node_modules, never follows links", async () => {
    await mkdir(join(root, "src"));
    await mkdir(join(root, ".git"));
    await mkdir(join(root, "node_modules"));
    await writeFile(join(root, "src/a.ts"), "const needle = 1;\nother\n");
    await writeFile(join(root, ".git/x"), "needle");
    await writeFile(join(root, "node_modules/y"), "needle");
    await writeFile(join(root, "regex.txt"), "a.*b needle?");
    const r = await searchFilesTool(root, { query: "needle" });
    expect(r.matches.map((m) => `${m.path}:${m.line}`)).toEqual(["regex.txt:1", "src/a.ts:1"]);
    expect((await searchFilesTool(root, { query: ".*b" })).matches).toHaveLength(1);
  });

  it("apply_patch changes nothing when one of its files does not apply", async () => {
    await writeFile(join(root, "a.txt"), "one\ntwo\n");
    await writeFile(join(root, "b.txt"), "three\n");
    const patch =
      "--- a/a.txt\n+++ b/a.txt\n@@ -1,2 +1,2 @@\n one\n-two\n+TWO\n--- a/b.txt\n+++ b/b.txt\n@@ -1 +1 @@\n-four\n+FOUR\n";
    await expect(applyPatchTool(root, { patch })).rejects.toMatchObject({ code: "PATCH_MISMATCH" });
    expect(await readFile(join(root, "a.txt"), "utf8")).toBe("one\ntwo\n");
    const del = "--- a/b.txt\n+++ /dev/null\n@@ -1 +0,0 @@\n-three\n";
    expect(await applyPatchTool(root, { patch: del })).toEqual({
      files: [{ path: "b.txt", action: "deleted" }],
    });
  });
});
