import { homedir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  isCi,
  isInteractive,
  isTruthyEnvValue,
  resolveBottlekitHome,
  shouldUseColor,
} from "./index.ts";

describe("env helpers", () => {
  it("truthy values are 1/true/yes/on in any case", () => {
    for (const v of ["1", "true", "TRUE", "Yes", "on", " on\n"])
      expect(isTruthyEnvValue(v)).toBe(true);
    for (const v of [undefined, "", "0", "false", "no", "off", "maybe", "2"]) {
      expect(isTruthyEnvValue(v)).toBe(false);
    }
  });

  it("home comes from BOTTLEKIT_HOME, else ~/.bottlekit", () => {
    expect(resolveBottlekitHome({ BOTTLEKIT_HOME: "/x" })).toBe("/x");
    expect(resolveBottlekitHome({ BOTTLEKIT_HOME: " " })).toBe(join(homedir(), ".bottlekit"));
    expect(resolveBottlekitHome({})).toBe(join(homedir(), ".bottlekit"));
  });

  it("interactive needs both TTYs and no CI", () => {
    const tty = { isTTY: true };
    const pipe = { isTTY: false };
    expect(isInteractive({ stdin: tty, stdout: tty, env: {} })).toBe(true);
    expect(isInteractive({ stdin: pipe, stdout: tty, env: {} })).toBe(false);
    expect(isInteractive({ stdin: tty, stdout: pipe, env: {} })).toBe(false);
    expect(isInteractive({ stdin: tty, stdout: tty, env: { CI: "true" } })).toBe(false);
    expect(isInteractive({ stdin: tty, stdout: tty, env: { CI: "false" } })).toBe(false);
    expect(isInteractive({ stdin: tty, stdout: tty, env: { CI: "" } })).toBe(true);
    expect(isCi({})).toBe(false);
  });

  it("colour follows NO_COLOR, FORCE_COLOR, TERM=dumb and the TTY", () => {
    const tty = { isTTY: true };
    const pipe = {};
    expect(shouldUseColor(tty, {})).toBe(true);
    expect(shouldUseColor(pipe, {})).toBe(false);
    expect(shouldUseColor(tty, { NO_COLOR: "1" })).toBe(false);
    expect(shouldUseColor(tty, { NO_COLOR: "" })).toBe(true);
    expect(shouldUseColor(tty, { TERM: "dumb" })).toBe(false);
    expect(shouldUseColor(pipe, { FORCE_COLOR: "1" })).toBe(true);
    expect(shouldUseColor(tty, { FORCE_COLOR: "0" })).toBe(false);
    expect(shouldUseColor(pipe, { FORCE_COLOR: "1", NO_COLOR: "1" })).toBe(false);
  });
});
