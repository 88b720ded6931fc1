import { captureIo } from "@bottlekit/test-utils";
import { describe, expect, it } from "vitest";
import pkg from "../package.json" with { type: "json" };
import { commandWord, run } from "./cli.ts";

describe("bottle cli", () => {
  it("prints help with exit codes", async () => {
    const c = captureIo();
    expect(await run(["--help"], c.io)).toBe(0);
    expect(c.out()).toContain("Usage: bottle");
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

  it("reads the command word after the global options, as the bin does", () => {
    expect(commandWord(["run", "--", "/bin/true"])).toBe("run");
    expect(commandWord(["--home", "/h", "--cwd=/p", "run"])).toBe("run");
    expect(commandWord(["--home=/h", "ps"])).toBe("ps");
    expect(commandWord(["--help", "run"])).toBeUndefined();
    expect(commandWord(["--home"])).toBeUndefined();
  });

  it("`bottle run …` builds only the run commands, and helps and errs as before", async () => {
    const help = captureIo();
    expect(await run(["--home", "/nonexistent", "run", "--help"], help.io)).toBe(0);
    expect(help.out()).toContain("Usage: bottle run [options] [agent] [command...]");
    expect(help.out()).toContain("--dry-run");
    const bad = captureIo();
    expect(await run(["run", "--no-such-flag"], bad.io)).toBe(2);
    expect(bad.err()).toContain("--no-such-flag");
    // The full tree is still there for every other command word.
    const full = captureIo();
    expect(await run(["--help"], full.io)).toBe(0);
    expect(full.out()).toContain("validate");
  });
});
