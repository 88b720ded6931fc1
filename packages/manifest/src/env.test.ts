import { inspect } from "node:util";
import { describe, expect, it } from "vitest";
import { classifyEnv, displayEnv, materializeEnv } from "./env.ts";
import { isManifestError } from "./errors.ts";

describe("env values", () => {
  it("classifies literals, asks and host copies", () => {
    expect(classifyEnv("x")).toEqual({ kind: "literal", value: "x" });
    expect(classifyEnv(8080)).toEqual({ kind: "literal", value: "8080" });
    expect(classifyEnv(true)).toEqual({ kind: "literal", value: "true" });
    expect(classifyEnv("?")).toEqual({ kind: "ask", prompt: undefined });
    expect(classifyEnv("? Your key ")).toEqual({ kind: "ask", prompt: "Your key" });
    expect(classifyEnv("${GH_TOKEN}")).toEqual({ kind: "host", name: "GH_TOKEN" });
    expect(displayEnv(classifyEnv("${GH_TOKEN}"))).toBe("<from $GH_TOKEN>");
    expect(displayEnv(classifyEnv("?x"))).toBe("<asked at launch>");
  });

  it("fails closed on a missing host variable, naming only the variable", async () => {
    const err = await materializeEnv(
      { T: { kind: "host", name: "NOPE" }, L: { kind: "literal", value: "v" } },
      { hostEnv: { OTHER: "secret-other" } },
    ).catch((e: unknown) => e);
    expect(isManifestError(err) && err.code).toBe("E_ENV_MISSING");
    expect(String((err as Error).message)).toBe("env.T: host variable $NOPE is not set");
  });

  it("fails closed when a value must be asked but no prompt is available", async () => {
    const err = await materializeEnv(
      { Q: { kind: "ask", prompt: undefined } },
      { hostEnv: {} },
    ).catch((e: unknown) => e);
    expect(isManifestError(err) && err.code).toBe("E_ENV_MISSING");
  });

  it("never shows values through JSON, String or inspect", async () => {
    const env = await materializeEnv(
      { T: { kind: "host", name: "H" }, Q: { kind: "ask", prompt: "p" } },
      { hostEnv: { H: "hostvalue-xyz" }, ask: async () => "asked-abc" },
    );
    expect(JSON.parse(JSON.stringify(env))).toEqual({ T: "<from $H>", Q: "<asked at launch>" });
    const all = [
      String(env),
      inspect(env),
      inspect({ nested: env }, { depth: 5 }),
      inspect({ ...env }, { depth: 5, showHidden: true }),
      JSON.stringify(Object.entries(env)),
    ].join(" ");
    expect(all).not.toMatch(/hostvalue-xyz|asked-abc/);
    expect(env.expose()).toEqual({ T: "hostvalue-xyz", Q: "asked-abc" });
  });
});
