import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { installDirs } from "./execute.ts";

let root: string | undefined;
afterEach(() => {
  if (root) fs.rmSync(root, { recursive: true, force: true });
  root = undefined;
});

describe("installDirs: what stays visible of an install the sandbox's tmpfs would hide", () => {
  it("a program inside node_modules keeps the outermost node_modules (its symlinked siblings live there)", () => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), "bk-install-"));
    const real = path.join(root, "node_modules/.pnpm/agent-x64@1/node_modules/agent-x64/bin");
    fs.mkdirSync(real, { recursive: true });
    fs.writeFileSync(path.join(real, "agent"), "");
    const link = path.join(root, "node_modules/.pnpm/agent@1/node_modules/agent-x64");
    fs.mkdirSync(path.dirname(link), { recursive: true });
    fs.symlinkSync(path.dirname(real), link);
    expect(installDirs(path.join(link, "bin", "agent"))).toEqual([path.join(root, "node_modules")]);
  });

  it("a workspace package outside node_modules keeps itself and the topmost node_modules above it", () => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), "bk-install-"));
    const bin = path.join(root, "clone/packages/tool/bin/tool.cjs");
    fs.mkdirSync(path.dirname(bin), { recursive: true });
    fs.writeFileSync(bin, "");
    fs.mkdirSync(path.join(root, "clone/node_modules/.pnpm"), { recursive: true });
    fs.mkdirSync(path.join(root, "clone/packages/tool/node_modules"), { recursive: true });
    expect(installDirs(path.join(root, "clone/packages/tool"))).toEqual([
      path.join(root, "clone/packages/tool"),
      path.join(root, "clone/node_modules"),
    ]);
  });

  it("nothing for paths the sandbox shows anyway", () => {
    expect(installDirs("/usr/bin/env")).toEqual([]);
  });
});
