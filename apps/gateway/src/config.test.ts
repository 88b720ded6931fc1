import { describe, expect, it } from "vitest";
import { isLoopbackHost, parseListen, validateGatewayConfig } from "./config.ts";

describe("gateway config", () => {
  it("accepts a full config and fills defaults", () => {
    const v = validateGatewayConfig({
      model_providers: [{ model: "openai/gpt-4o", access_key: "$OPENAI_API_KEY" }],
      budgets: [{ scope: "bottle", key: "dev", provider: "openai", tokens: 1000, window: "daily" }],
      dlp: { outbound: { on_match: "redact" } },
      routes: [{ host: "api.github.com" }],
    });
    expect(v.errors).toEqual([]);
    expect(v.value?.dlp.outbound.detectors).toEqual(["token_patterns", "known_secrets"]);
    expect(v.value?.dlp.inbound.on_match).toBe("warn");
    expect(v.value?.timeouts.upstream_ms).toBe(120_000);
    expect(v.registryInput).toHaveProperty("model_providers");
  });

  it("reports every problem with its key path", () => {
    const v = validateGatewayConfig({
      budgts: [],
      budgets: [{ scope: "galaxy", provider: "openai", tokens: -1 }],
      model_providers: [{ modle: "openai/x" }],
      routes: [{ hots: "x" }],
      listen: "nope",
    });
    expect(v.value).toBeUndefined();
    const text = v.errors.join("\n");
    expect(text).toContain('budgts: unknown key; did you mean "budgets"?');
    expect(text).toContain("budgets[0].scope");
    expect(text).toContain("budgets[0].tokens");
    expect(text).toMatch(/model_providers\[0\]/);
    expect(text).toMatch(/routes\[0\]/);
  });

  it("parses listen addresses", () => {
    expect(parseListen("127.0.0.1:4100")).toEqual({ host: "127.0.0.1", port: 4100 });
    expect(parseListen("[::1]:80")).toEqual({ host: "::1", port: 80 });
    expect(parseListen("localhost:0")).toEqual({ host: "localhost", port: 0 });
    expect(parseListen("4100")).toBeUndefined();
    expect(parseListen("h:99999")).toBeUndefined();
    expect(isLoopbackHost("127.0.0.2")).toBe(true);
    expect(isLoopbackHost("0.0.0.0")).toBe(false);
    expect(isLoopbackHost("::1")).toBe(true);
  });
});
