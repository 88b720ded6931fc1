/**
 * The controller imports this package on every `bottle run`: importing it must not load node:tls
 * (only the stdio shim, which runs in the sandbox, needs it). Counted in a fresh process, since a
 * module once loaded stays loaded.
 */
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

describe("importing @bottlekit/approvals", () => {
  it("loads neither node:tls nor node:https", async () => {
    // Less what the builtins it imports load by themselves: on Node 24 an ESM import of node:http
    // loads node:tls (a require of it, as in the bundled bin, does not).
    const script = [
      'await import("node:http");',
      "const builtin = process.moduleLoadList.slice();",
      'await import("@bottlekit/approvals");',
      'const tls = ["NativeModule tls", "NativeModule https", "NativeModule _tls_wrap"];',
      "const loaded = process.moduleLoadList.filter((m) => tls.includes(m) && !builtin.includes(m));",
      "console.log(JSON.stringify(loaded));",
    ].join("\n");
    const out = await new Promise<string>((resolve, reject) => {
      execFile(
        process.execPath,
        ["--import", "tsx", "--conditions=@bottlekit/source", "--input-type=module", "-e", script],
        { cwd: fileURLToPath(new URL("..", import.meta.url)) },
        (error, stdout, stderr) => (error ? reject(new Error(stderr)) : resolve(stdout)),
      );
    });
    expect(JSON.parse(out.trim().split("\n").at(-1) ?? "null")).toEqual([]);
  }, 60_000);
});
