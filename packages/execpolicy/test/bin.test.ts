/**
 * End-to-end: the published bin (needs `dist/`, built by turbo's test → build dependency).
 */
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const bin = fileURLToPath(new URL("../bin/execpolicy.js", import.meta.url));
const example = (name: string) => fileURLToPath(new URL(`../examples/${name}`, import.meta.url));

function runBin(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [bin, ...args],
      { env: { ...process.env, NO_COLOR: "1" } },
      (err, stdout, stderr) => {
        resolve({ code: err ? Number(err.code ?? 1) : 0, stdout, stderr });
      },
    );
  });
}

describe("execpolicy bin", () => {
  it("checks a script against the example policies and gates with --fail-on", async () => {
    const r = await runBin([
      "check",
      "-r",
      example("policy.rules"),
      "-r",
      example("policy.yaml"),
      "--fail-on",
      "forbidden",
      "--shell",
      "git status && git -C repo push",
    ]);
    expect(r.code).toBe(3);
    const doc = JSON.parse(r.stdout);
    expect(doc.decision).toBe("forbidden");
    expect(r.stderr).toBe("");
  });

  it("the example policies pass their own tests", async () => {
    const r = await runBin(["test", example("policy.rules"), example("policy.yaml")]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("ok ");
  });
});
