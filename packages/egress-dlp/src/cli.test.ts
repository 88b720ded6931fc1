import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import pkg from "../package.json" with { type: "json" };
import { run } from "./cli.ts";

function capture() {
  const out: string[] = [];
  const err: string[] = [];
  const sink = (into: string[]) =>
    new Writable({
      write(chunk, _enc, cb) {
        into.push(String(chunk));
        cb();
      },
    });
  return {
    io: { stdout: sink(out), stderr: sink(err), env: {} },
    out: () => out.join(""),
    err: () => err.join(""),
  };
}

describe("egress-dlp cli", () => {
  it("prints help with exit codes", async () => {
    const c = capture();
    expect(await run(["--help"], c.io)).toBe(0);
    expect(c.out()).toContain("Usage: egress-dlp");
    expect(c.out()).toContain("Exit codes:");
  });

  it("prints the package version", async () => {
    const c = capture();
    expect(await run(["--version"], c.io)).toBe(0);
    expect(c.out().trim()).toBe(pkg.version);
  });

  it("exits 2 with a hint on an unknown command", async () => {
    const c = capture();
    expect(await run(["frobnicate"], c.io)).toBe(2);
    expect(c.err()).toContain("--help");
  });
});
