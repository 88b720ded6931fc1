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

  it("a workspace bin keeps its whole package (its ../dist) and the workspace packages it links to, transitively", () => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), "bk-install-"));
    const clone = path.join(root, "clone");
    const pkg = (rel: string) => {
      fs.mkdirSync(path.join(clone, rel, "node_modules/@scope"), { recursive: true });
      fs.writeFileSync(path.join(clone, rel, "package.json"), "{}");
    };
    pkg("apps/agent");
    pkg("packages/a");
    pkg("packages/b");
    pkg("packages/unused");
    fs.mkdirSync(path.join(clone, "apps/agent/bin"), { recursive: true });
    fs.writeFileSync(path.join(clone, "apps/agent/bin/agent.js"), "");
    fs.mkdirSync(path.join(clone, "node_modules/.pnpm/dep@1/node_modules/dep"), {
      recursive: true,
    });
    const link = (from: string, to: string) =>
      fs.symlinkSync(path.join(clone, to), path.join(clone, from));
    link("apps/agent/node_modules/@scope/a", "packages/a");
    link("apps/agent/node_modules/dep", "node_modules/.pnpm/dep@1/node_modules/dep");
    link("packages/a/node_modules/@scope/b", "packages/b");
    link("packages/b/node_modules/@scope/a", "packages/a");
    expect(installDirs(path.join(clone, "apps/agent/bin/agent.js"))).toEqual([
      path.join(clone, "apps/agent"),
      path.join(clone, "packages/a"),
      path.join(clone, "packages/b"),
      path.join(clone, "node_modules"),
    ]);
  });

  it("nothing for paths the sandbox shows anyway", () => {
    expect(installDirs("/usr/bin/env")).toEqual([]);
  });
});
