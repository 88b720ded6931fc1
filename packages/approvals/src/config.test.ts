import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it, vi } from "vitest";
import { approvalsConfigSchema, loadConfig, resolveConfig } from "./index.ts";

const home = mkdtempSync(join(tmpdir(), "bk-approvals-config-"));
afterAll(() => rmSync(home, { recursive: true, force: true }));

describe("loadConfig", () => {
  it("without approvals.yml: the defaults resolveConfig({}) gives, without parsing anything", () => {
    const parse = vi.spyOn(approvalsConfigSchema, "safeParse");
    try {
      const config = loadConfig(home);
      expect(parse).not.toHaveBeenCalled();
      expect(config).toEqual(resolveConfig({}));
      expect(config).toEqual({
        timeoutMs: 600_000,
        holdTimeoutMs: 60_000,
        rateLimit: { proposals: 10, perMs: 60_000 },
        auto: "off",
        providers: [],
      });
    } finally {
      parse.mockRestore();
    }
  });

  it("with approvals.yml: validated as before", () => {
    writeFileSync(join(home, "approvals.yml"), "timeout: 5m\nauto: sometimes\n");
    expect(() => loadConfig(home)).toThrow(/auto/);
    writeFileSync(join(home, "approvals.yml"), "timeout: 5m\n");
    expect(loadConfig(home).timeoutMs).toBe(300_000);
  });
});
