/**
 * Spawns the built bin (turbo's test task builds first). One smoke test: the real process, exit
 * codes and stdout/stderr separation on a 200-manifest tree. Timing is measured in bench/.
 */
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { writeManifestTree } from "@bottlekit/test-utils";
import { afterAll, describe, expect, it } from "vitest";

const bin = join(dirname(fileURLToPath(import.meta.url)), "..", "bin", "bottle.js");
const root = mkdtempSync(join(tmpdir(), "bk-bin-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

function spawnBottle(args: string[]): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [bin, ...args],
      { env: { PATH: process.env["PATH"] ?? "", NO_COLOR: "1" } },
      (error, stdout, stderr) => {
        const code = error ? Number((error as { code?: number }).code ?? 1) : 0;
        resolve({ code, out: stdout, err: stderr });
      },
    );
  });
}

describe("bottle bin", () => {
  it("validates a 200-manifest tree (exit 0), then exits 2 once one file breaks", async () => {
    const home = join(root, "home");
    writeManifestTree(home, 200);
    const ok = await spawnBottle(["validate", "--home", home, "--cwd", root, "--json"]);
    expect(ok.err).toBe("");
    expect(ok.code).toBe(0);
    const doc = JSON.parse(ok.out) as { ok: boolean; files: unknown[] };
    expect(doc.ok).toBe(true);
    expect(doc.files).toHaveLength(200);

    writeFileSync(join(home, "bottles", "b3.md"), "---\negres: {}\n---\n");
    const bad = await spawnBottle(["validate", "--home", home, "--cwd", root]);
    expect(bad.code).toBe(2);
    expect(bad.out).toContain(
      "b3.md:2:1: error: egres: unknown key `egres`; did you mean `egress`?",
    );
    expect(bad.err).toContain("200 manifest(s) checked");
  });

  it("ends quietly when its reader goes away (`| head -c 100`), with no EPIPE stack", async () => {
    const home = join(root, "pipe-home");
    writeManifestTree(home, 1600); // ~160 KB of JSON: more than a pipe holds
    const out = await new Promise<{ err: string }>((resolve) => {
      execFile(
        "sh",
        [
          "-c",
          `"${process.execPath}" "${bin}" validate --json --home "${home}" --cwd "${root}" | head -c 100 >/dev/null`,
        ],
        { env: { PATH: process.env["PATH"] ?? "", NO_COLOR: "1" } },
        (_error, _stdout, stderr) => resolve({ err: stderr }),
      );
    });
    expect(out.err).not.toMatch(/EPIPE|unexpected error|\n\s+at /);
  });
});
