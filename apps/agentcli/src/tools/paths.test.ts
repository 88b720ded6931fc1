import { mkdir, mkdtemp, realpath, rm, symlink } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { inside, PathRefused, resolveInWorkspace } from "./paths.ts";

let dir: string;
let root: string;
beforeAll(async () => {
  dir = await realpath(await mkdtemp(join(tmpdir(), "agentcli-paths-")));
  root = join(dir, "ws");
  await mkdir(join(root, "sub"), { recursive: true });
  await mkdir(join(dir, "ws-evil"));
  await symlink(join(dir, "ws-evil"), join(root, "sub", "out"));
  await symlink(join(root, "sub"), join(root, "in"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("resolveInWorkspace", () => {
  it("accepts paths inside (also through an inner link) and refuses escapes", async () => {
    expect((await resolveInWorkspace(root, "sub/new/file.txt", "write")).rel).toBe(
      "sub/new/file.txt",
    );
    expect((await resolveInWorkspace(root, "in/x", "write")).real).toBe(join(root, "sub", "x"));
    expect((await resolveInWorkspace(root, join(root, "sub"), "read")).rel).toBe("sub");
    for (const p of [
      "..",
      "../ws-evil/x",
      "sub/out/x",
      "sub/out",
      "/etc/passwd",
      "sub/../../ws-evil",
    ]) {
      await expect(resolveInWorkspace(root, p, "read"), p).rejects.toBeInstanceOf(PathRefused);
    }
    await expect(resolveInWorkspace(root, ".git/hooks/pre-commit", "write")).rejects.toMatchObject({
      code: "PROTECTED",
    });
    await expect(resolveInWorkspace(root, "", "read")).rejects.toMatchObject({ code: "BAD_PATH" });
  });

  it("inside() does not mistake a sibling with the same prefix for the root", () => {
    expect(inside("/a/ws", "/a/ws-evil")).toBe(false);
    expect(inside("/a/ws", "/a/ws/x")).toBe(true);
    expect(inside("/a/ws", "/a/ws")).toBe(true);
  });

  it("property: whatever the path, a resolved result is inside the root", async () => {
    const seg = fc.constantFrom("..", ".", "sub", "out", "in", "x", "ws-evil", "", "/");
    await fc.assert(
      fc.asyncProperty(fc.array(seg, { minLength: 1, maxLength: 6 }), async (segs) => {
        const p = segs.join("/");
        try {
          const r = await resolveInWorkspace(root, p, "write");
          expect(inside(root, r.real)).toBe(true);
        } catch (error) {
          expect(error).toBeInstanceOf(PathRefused);
        }
      }),
      { numRuns: 200 },
    );
  });
});
