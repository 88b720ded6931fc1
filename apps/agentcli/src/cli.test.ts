import { captureIo } from "@bottlekit/test-utils";
import { describe, expect, it } from "vitest";
import pkg from "../package.json" with { type: "json" };
import { run } from "./cli.ts";

describe("agentcli cli", () => {
  it("prints help with the exit codes", async () => {
    const c = captureIo();
    expect(await run(["--help"], c.io)).toBe(0);
    expect(c.out()).toContain("Usage: agentcli [options] [prompt]");
    expect(c.out()).toContain("Exit codes:");
    expect(c.out()).toContain("--max-steps");
  });

  it("prints the package version", async () => {
    const c = captureIo();
    expect(await run(["--version"], c.io)).toBe(0);
    expect(c.out().trim()).toBe(pkg.version);
  });

  it("exits 2 without a prompt", async () => {
    const c = captureIo();
    expect(await run([], c.io)).toBe(2);
    expect(c.err()).toContain("a prompt is required");
  });

  it("exits 2 on two prompts (quote the prompt) and on an unknown option, with a suggestion", async () => {
    const c = captureIo();
    expect(await run(["fix", "it"], c.io)).toBe(2);
    expect(c.err()).toContain("too many arguments");
    const d = captureIo();
    expect(await run(["--max-step", "3", "x"], d.io)).toBe(2);
    expect(d.err()).toContain("--max-steps");
  });
});
