import { writeManifestTree } from "@bottlekit/test-utils";
import { afterEach, describe, expect, it, vi } from "vitest";
import { resolveAgent, validatePaths } from "../src/index.ts";
import { type TempTree, tempTree } from "./home.ts";

// Counted work, not time: every file-system call and YAML parse validation makes, and the bytes
// it parses. The wrappers pass each call through to the real module unchanged.
const work = { calls: 0, bytes: 0 };
vi.mock("node:fs", async (importOriginal) => {
  const fs = await importOriginal<typeof import("node:fs")>();
  const counted =
    <A extends unknown[], R>(fn: (...args: A) => R) =>
    (...args: A): R => {
      work.calls++;
      return fn(...args);
    };
  const wrapped = {
    ...fs,
    existsSync: counted(fs.existsSync),
    readdirSync: counted(fs.readdirSync),
    readFileSync: counted(fs.readFileSync),
    statSync: counted(fs.statSync),
  };
  return { ...wrapped, default: wrapped };
});
vi.mock("yaml", async (importOriginal) => {
  const yaml = await importOriginal<typeof import("yaml")>();
  return {
    ...yaml,
    parseDocument: (...args: Parameters<typeof yaml.parseDocument>) => {
      work.calls++;
      work.bytes += args[0].length;
      return yaml.parseDocument(...args);
    },
  };
});

let trees: TempTree[] = [];
afterEach(() => {
  for (const t of trees) t.cleanup();
  trees = [];
});

function validateWork(count: number): { calls: number; bytes: number } {
  const t = tempTree();
  trees.push(t);
  writeManifestTree(t.home, count);
  const loc = { home: t.home, cwd: t.cwd, env: {} };
  work.calls = 0;
  work.bytes = 0;
  const result = validatePaths([], loc);
  expect(result.ok).toBe(true);
  expect(result.files).toHaveLength(count);
  return { ...work };
}

describe("performance bounds", () => {
  it("validation scales linearly with the number of manifests (counted calls and bytes)", () => {
    const small = validateWork(200);
    const big = validateWork(400);
    expect(small.calls).toBeGreaterThan(200);
    // The bench prints the time (and the < 1 s target); here, doubling the tree doubles the work.
    expect(big.calls / small.calls).toBeLessThan(2.2);
    expect(big.bytes / small.bytes).toBeLessThan(2.2);
  });

  it("resolves an agent over a deep extends graph with every key attributed", () => {
    const t = tempTree();
    trees.push(t);
    const names = writeManifestTree(t.home, 200);
    const a = resolveAgent(names[names.length - 1] as string, {
      home: t.home,
      cwd: t.cwd,
      env: {},
    });
    expect(a.bottle.order.length).toBeGreaterThan(3);
    const paths = new Set(a.provenance.map((p) => p.path));
    for (const host of a.config.egress.routes.map((r) => r.host)) {
      expect(paths.has(`egress.routes[${JSON.stringify(host)}]`)).toBe(true);
    }
    for (const name of Object.keys(a.config.env)) expect(paths.has(`env.${name}`)).toBe(true);
  });
});
