import { getProvider, listLocalAgentInterfaces, listProviders } from "@bottlekit/provider-registry";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { detectLocalAgentProviders, interfacesOf } from "./index.ts";

const LOCAL_NAMES = listLocalAgentInterfaces().flatMap((id) => [
  id,
  ...(getProvider(id)?.aliases ?? []),
]);
const NETWORK_NAMES = listProviders()
  .filter((p) => p.kind === "network")
  .flatMap((p) => [p.id, ...p.aliases]);

/** Randomly re-cases a string. */
function recase(name: string, mask: readonly boolean[]): string {
  return [...name].map((ch, i) => (mask[i % mask.length] ? ch.toUpperCase() : ch)).join("");
}

describe("detectLocalAgentProviders", () => {
  it("resolves aliases to the canonical interface", () => {
    const found = detectLocalAgentProviders({
      model_providers: [
        { model: "claude-code/sonnet" },
        { provider_interface: "Claude_Code", model: "x" },
        { model: "codex/gpt-5" },
        { provider: " OpenCode ", model: "y" },
        { name: "GEMINI-CLI/pro", model: "z" },
      ],
    });
    expect(found.map((f) => f.interface)).toEqual([
      "claude-cli",
      "claude-cli",
      "codex-cli",
      "opencode",
      "gemini-cli",
    ]);
    expect(interfacesOf(found)).toEqual(["claude-cli", "codex-cli", "gemini-cli", "opencode"]);
  });

  it("keeps declaration order and indexes, skipping non-object entries", () => {
    const found = detectLocalAgentProviders({
      model_providers: [
        null,
        "claude-cli/x",
        3,
        ["claude-cli"],
        { model: "codex-cli/a" },
        { model: "claude-cli/b" },
      ],
    });
    expect(found.map((f) => [f.index, f.interface])).toEqual([
      [4, "codex-cli"],
      [5, "claude-cli"],
    ]);
  });

  it("reports a local agent hidden behind a network provider_interface (fails closed)", () => {
    const found = detectLocalAgentProviders({
      model_providers: [{ provider_interface: "openai", model: "claude-cli/sonnet" }],
    });
    expect(found).toEqual([
      expect.objectContaining({ interface: "claude-cli", matchedOn: "model" }),
    ]);
  });

  it("uses the first matching field and one record per entry", () => {
    const found = detectLocalAgentProviders({
      model_providers: [{ provider_interface: "codex-cli", model: "claude-cli/x", name: "n" }],
    });
    expect(found).toEqual([
      expect.objectContaining({
        interface: "codex-cli",
        name: "n",
        matchedOn: "provider_interface",
      }),
    ]);
  });

  it("falls back to the interface as the display name", () => {
    expect(
      detectLocalAgentProviders({ model_providers: [{ provider_interface: "claude-cli" }] })[0],
    ).toMatchObject({ name: "claude-cli", model: undefined });
  });

  it("ignores non-string provider fields instead of throwing", () => {
    expect(
      detectLocalAgentProviders({
        model_providers: [{ provider_interface: { x: 1 }, provider: ["claude-cli"], model: 42 }],
      }),
    ).toEqual([]);
  });

  it("does not treat a bare interface name without a slash as a model prefix", () => {
    expect(detectLocalAgentProviders({ model_providers: [{ model: "claude-cli" }] })).toEqual([]);
    expect(detectLocalAgentProviders({ model_providers: [{ model: "/claude-cli" }] })).toEqual([]);
  });

  it("property: arbitrary input never throws and yields well-formed records", () => {
    fc.assert(
      fc.property(fc.anything(), (value) => {
        const wrapped = [value, { model_providers: value }, { llm_providers: [value] }];
        for (const config of wrapped) {
          for (const rec of detectLocalAgentProviders(config)) {
            expect(typeof rec.interface).toBe("string");
            expect(typeof rec.name).toBe("string");
          }
        }
      }),
      { numRuns: 300 },
    );
  });

  it("property: any local-agent id or alias, in any case, as a model prefix is detected", () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...LOCAL_NAMES),
        fc.array(fc.boolean(), { minLength: 1, maxLength: 8 }),
        fc.string({ maxLength: 20 }),
        fc.constantFrom("model", "name", "provider_interface", "provider"),
        (name, mask, suffix, field) => {
          const value =
            field === "model" || field === "name"
              ? `${recase(name, mask)}/${suffix}`
              : recase(name, mask);
          const found = detectLocalAgentProviders({ model_providers: [{ [field]: value }] });
          expect(found).toHaveLength(1);
          expect(found[0]!.interface).toBe(getProvider(name)!.id);
        },
      ),
      { numRuns: 300 },
    );
  });

  it("property: network providers never fire", () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...NETWORK_NAMES),
        fc.string({ maxLength: 20 }).filter((s) => !s.includes("/")),
        (name, suffix) => {
          expect(
            detectLocalAgentProviders({
              model_providers: [
                { model: `${name}/${suffix}`, provider_interface: name, name: suffix },
              ],
            }),
          ).toEqual([]);
        },
      ),
      { numRuns: 200 },
    );
  });

  it("is linear: doubling the entries doubles the reads (counted through proxies)", () => {
    // Counted work, not time: every property read on the config, its list and each entry.
    const reads = (n: number): number => {
      let count = 0;
      const counted = <T extends object>(target: T): T =>
        new Proxy(target, {
          get(t, key, receiver) {
            count++;
            return Reflect.get(t, key, receiver);
          },
        });
      const config = counted({
        model_providers: counted(
          Array.from({ length: n }, (_, i) =>
            counted(i % 2 ? { model: `claude-cli/m${i}` } : { model: `openai/m${i}` }),
          ),
        ),
      });
      const found = detectLocalAgentProviders(config);
      expect(found.length).toBeGreaterThan(0);
      return count;
    };
    const small = reads(4000);
    const large = reads(8000);
    expect(small).toBeGreaterThan(4000);
    expect(large / small).toBeLessThan(2.2);
  });
});
