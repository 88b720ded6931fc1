import { captureIo } from "@bottlekit/test-utils";
import { describe, expect, it } from "vitest";
import pkg from "../package.json" with { type: "json" };
import { cliFeatures, run } from "./cli.ts";

describe("execpolicy cli", () => {
  it("prints help with exit codes", async () => {
    const c = captureIo();
    expect(await run(["--help"], c.io)).toBe(0);
    expect(c.out()).toContain("Usage: execpolicy");
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

  it("reports what a run loaded, for the bin's code cache", async () => {
    const c = captureIo();
    await run(["--help"], c.io);
    expect(cliFeatures()).toEqual([]);
    const yaml = new URL("../examples/policy.yaml", import.meta.url).pathname;
    await run(["check", "-r", yaml, "--no-cache", "--shell", "ls"], captureIo().io);
    expect(cliFeatures().sort()).toEqual(["check", "native", "shell"]);
  });
});
