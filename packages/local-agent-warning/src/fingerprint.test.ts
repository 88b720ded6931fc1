import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  configFingerprint,
  type FingerprintInput,
  normalizeSettings,
  normalizeTools,
  SETTING_KEYS,
} from "./index.ts";

const tool = fc.constantFrom("Read", "Grep", "Bash", "Edit", "WebFetch", "mcp__x");
const sep = fc.constantFrom(",", " ", ", ", "\t", ",,", "\n");
const value = fc.option(fc.string({ minLength: 1, maxLength: 8 }), { nil: null });
const input: fc.Arbitrary<FingerprintInput> = fc.record({
  interface: fc.constantFrom("claude-cli", "codex-cli"),
  binary: fc.option(fc.string({ maxLength: 8 }), { nil: null }),
  binaryPath: fc.option(fc.string({ maxLength: 8 }), { nil: null }),
  permissionMode: fc.string({ maxLength: 8 }),
  settings: fc.record({ tools: value, cwd: value, home: value, runAs: value }),
});

describe("normalizeTools", () => {
  it("property: any order, separators and repeats of the same tools give one value", () => {
    fc.assert(
      fc.property(fc.array(tool, { maxLength: 6 }), sep, fc.integer(), (tools, s, seed) => {
        const shuffled = [...tools, ...tools.slice(0, 2)].sort(
          (a, b) => ((a.charCodeAt(0) * seed) % 7) - ((b.charCodeAt(0) * seed) % 7),
        );
        const a = normalizeTools(tools.join(","));
        expect(normalizeTools(` ${shuffled.join(s)} `)).toBe(a);
        expect(a === null ? tools.length === 0 : a.split(",").length === new Set(tools).size).toBe(
          true,
        );
        // Idempotent.
        expect(normalizeTools(a)).toBe(a);
      }),
      { numRuns: 300 },
    );
    expect(normalizeTools("  ")).toBeNull();
    expect(normalizeTools(undefined)).toBeNull();
  });
});

describe("normalizeSettings", () => {
  it("makes directories absolute against the base; blank is not set", () => {
    expect(
      normalizeSettings({ cwd: "w/../x", home: "/h/", runAs: " nobody ", tools: "" }, "/b"),
    ).toEqual({ tools: null, cwd: "/b/x", home: "/h", runAs: "nobody" });
    expect(normalizeSettings({}, "/b")).toEqual({
      tools: null,
      cwd: null,
      home: null,
      runAs: null,
    });
  });
});

/** The binary as the fingerprint identifies it: the resolved path, else the configured name. */
const bin = (i: FingerprintInput): string =>
  i.binaryPath !== null ? `path:${i.binaryPath}` : `name:${i.binary}`;

describe("configFingerprint", () => {
  it("property: equal configurations agree; a change to any one field changes it", () => {
    fc.assert(
      fc.property(input, input, (a, b) => {
        const fa = configFingerprint(a);
        expect(fa).toMatch(/^sha256:[0-9a-f]{64}$/);
        expect(configFingerprint(structuredClone(a))).toBe(fa);
        // Each field of b, moved into a alone, changes the fingerprint exactly when it differs.
        const variants: FingerprintInput[] = [
          { ...a, interface: b.interface },
          { ...a, binaryPath: b.binaryPath },
          { ...a, permissionMode: b.permissionMode },
          ...SETTING_KEYS.map((k) => ({ ...a, settings: { ...a.settings, [k]: b.settings[k] } })),
        ];
        for (const v of variants) {
          const same =
            v.interface === a.interface &&
            v.permissionMode === a.permissionMode &&
            bin(v) === bin(a) &&
            SETTING_KEYS.every((k) => v.settings[k] === a.settings[k]);
          expect(configFingerprint(v) === fa).toBe(same);
        }
      }),
      { numRuns: 300 },
    );
  });

  it("not set and set to the string null are different configurations", () => {
    const base: FingerprintInput = {
      interface: "claude-cli",
      binary: "claude",
      binaryPath: "/usr/bin/claude",
      permissionMode: "default",
      settings: { tools: null, cwd: null, home: null, runAs: null },
    };
    for (const key of SETTING_KEYS) {
      expect(
        configFingerprint({ ...base, settings: { ...base.settings, [key]: "null" } }),
      ).not.toBe(configFingerprint(base));
    }
  });
});
