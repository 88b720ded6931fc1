import { writeManifestTree } from "@bottlekit/test-utils";
import { afterEach, describe, expect, it } from "vitest";
import { resolveAgent, validatePaths } from "../src/index.ts";
import { type TempTree, tempTree } from "./home.ts";

let trees: TempTree[] = [];
afterEach(() => {
  for (const t of trees) t.cleanup();
  trees = [];
});

function timeValidate(count: number): number {
  const t = tempTree();
  trees.push(t);
  writeManifestTree(t.home, count);
  const loc = { home: t.home, cwd: t.cwd, env: {} };
  validatePaths([], loc); // warm up module code paths
  const times: number[] = [];
  for (let i = 0; i < 5; i++) {
    const start = performance.now();
    const result = validatePaths([], loc);
    times.push(performance.now() - start);
    expect(result.ok).toBe(true);
    expect(result.files).toHaveLength(count);
  }
  // The fastest of five runs: what a busy machine adds (other processes, GC) only ever slows a
  // run down, so the minimum is the figure least disturbed by load.
  return Math.min(...times);
}

describe("performance bounds", () => {
  it("validation scales about linearly with the number of manifests", () => {
    const small = timeValidate(200);
    const big = timeValidate(400);
    // The bench prints the real figures (and the < 1 s target); a test on a shared CI machine
    // only checks the shape: doubling the tree must not quadruple the time.
    expect(big / Math.max(small, 1)).toBeLessThan(4);
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
