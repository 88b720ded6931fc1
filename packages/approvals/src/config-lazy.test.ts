/**
 * The approvals.yml schema is built on first use: importing the package and loading a home
 * without approvals.yml builds no zod schema (the controller loads this package on every run).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it, vi } from "vitest";

const built = vi.hoisted(() => ({ objects: 0 }));
vi.mock("zod", async (importOriginal) => {
  const original = await importOriginal<typeof import("zod")>();
  const strictObject: typeof original.z.strictObject = (...args) => {
    built.objects++;
    return original.z.strictObject(...args);
  };
  return { ...original, z: { ...original.z, strictObject } };
});

const { loadConfig, resolveConfig } = await import("./config.ts");

const home = mkdtempSync(join(tmpdir(), "bk-approvals-lazy-"));
afterAll(() => rmSync(home, { recursive: true, force: true }));

describe("the approvals.yml schema", () => {
  it("is not built at import nor for a home without approvals.yml, only when a config is validated", () => {
    expect(built.objects).toBe(0);
    expect(loadConfig(home).auto).toBe("off");
    expect(built.objects).toBe(0);
    expect(resolveConfig({ auto: "non-widening" }).auto).toBe("non-widening");
    expect(built.objects).toBeGreaterThan(0);
  });
});
