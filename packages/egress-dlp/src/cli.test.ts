import { spawn } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { captureIo } from "@bottlekit/test-utils";
import { describe, expect, it } from "vitest";
import pkg from "../package.json" with { type: "json" };
import { run } from "./cli.ts";

describe("egress-dlp cli", () => {
  it("prints help with exit codes", async () => {
    const c = captureIo();
    expect(await run(["--help"], c.io)).toBe(0);
    expect(c.out()).toContain("Usage: egress-dlp");
    expect(c.out()).toContain("Exit codes:");
  });

  it("prints the package version", async () => {
    const c = captureIo();
    expect(await run(["--version"], c.io)).toBe(0);
    expect(c.out().trim()).toBe(pkg.version);
  });

  it("exits 2 with a hint on an unknown command", async () => {
    const c = captureIo();
    expect(await run(["frobnicate"], c.io)).toBe(2);
    expect(c.err()).toContain("--help");
  });

  it("exits quietly when its output is piped to a reader that goes away (| head)", async () => {
    // the bin's two lines (guardPipes, run) on the sources, stdout closed after the first chunk
    const dir = mkdtempSync(join(tmpdir(), "egress-dlp-epipe-"));
    const file = join(dir, "many.env");
    writeFileSync(file, "T=ghp_4U3LSowpDx8XvYE7A8GH56oxU5aWnY2mzIbV\n".repeat(20_000));
    const cli = fileURLToPath(new URL("./cli.ts", import.meta.url));
    const script = `import { guardPipes } from "@bottlekit/diagnostics";
import { run } from ${JSON.stringify(cli)};
guardPipes();
process.exitCode = await run(["scan", ${JSON.stringify(file)}]);`;
    const child = spawn(
      process.execPath,
      ["--import", "tsx", "--conditions=@bottlekit/source", "--input-type=module", "-e", script],
      { cwd: fileURLToPath(new URL("..", import.meta.url)), stdio: ["ignore", "pipe", "pipe"] },
    );
    let stderr = "";
    child.stderr.on("data", (d) => {
      stderr += String(d);
    });
    child.stdout.once("data", () => child.stdout.destroy());
    const code = await new Promise<number | null>((resolve) => child.on("close", resolve));
    expect(stderr).not.toContain("EPIPE");
    expect(stderr).not.toContain("Error");
    expect([0, 3]).toContain(code);
  }, 60_000);
});
