import { describe, expect, it } from "vitest";
import { createRegistry, registryConfigJsonSchema, validateRegistryConfig } from "./index.ts";

const errorsOf = (input: unknown) => validateRegistryConfig(input).errors;

describe("validateRegistryConfig", () => {
  it("accepts a valid Plano-style config and normalizes it", () => {
    const r = validateRegistryConfig({
      model_providers: [
        { model: "openai/gpt-4o", access_key: "$OPENAI_API_KEY", default: true },
        {
          name: "proxy",
          model: "corp/llama",
          provider_interface: "openai",
          base_url: "https://llm.corp.example/v1/",
        },
      ],
      model_aliases: { fast: { target: "proxy" } },
    });
    expect(r.errors).toEqual([]);
    expect(r.value?.defaultName).toBe("openai/gpt-4o");
    expect(r.value?.providers[0]).toMatchObject({
      provider: "openai",
      modelId: "gpt-4o",
      accessKeyEnv: "OPENAI_API_KEY",
    });
    expect(r.value?.providers[1]).toMatchObject({
      provider: "corp",
      custom: true,
      baseUrl: "https://llm.corp.example/v1",
    });
  });

  it("an unknown prefix needs base_url and provider_interface", () => {
    expect(errorsOf({ model_providers: [{ model: "corp/llama" }] })).toEqual([
      expect.stringMatching(
        /^model_providers\[0\]\.provider_interface: "corp" is not a built-in provider/,
      ),
      'model_providers[0].base_url: required for the custom provider prefix "corp"',
    ]);
  });

  it("suggests a built-in provider for a near-miss prefix", () => {
    expect(errorsOf({ model_providers: [{ model: "anthropc/claude-sonnet-4-5" }] })[0]).toContain(
      'did you mean "anthropic"?',
    );
  });

  it("a known prefix must not set provider_interface", () => {
    expect(
      errorsOf({ model_providers: [{ model: "openai/gpt-4o", provider_interface: "openai" }] }),
    ).toEqual([expect.stringMatching(/^model_providers\[0\]\.provider_interface: remove it/)]);
  });

  it("an unknown provider_interface is reported with a suggestion", () => {
    expect(
      errorsOf({
        model_providers: [
          { model: "corp/x", provider_interface: "opanai", base_url: "https://x.example" },
        ],
      }),
    ).toEqual([
      expect.stringMatching(
        /provider_interface: unknown interface "opanai", did you mean "openai"/,
      ),
    ]);
  });

  it("names are unique", () => {
    expect(
      errorsOf({
        model_providers: [
          { name: "a", model: "openai/gpt-4o" },
          { name: "a", model: "openai/gpt-4o-mini" },
        ],
      }),
    ).toEqual([
      'model_providers[1].name: duplicate name "a" (already used by model_providers[0]); names must be unique',
    ]);
  });

  it("at most one default", () => {
    expect(
      errorsOf({
        model_providers: [
          { model: "openai/gpt-4o", default: true },
          { model: "openai/gpt-4o-mini", default: true },
        ],
      }),
    ).toEqual([expect.stringMatching(/^model_providers: 2 entries set default: true/)]);
  });

  it("a wildcard cannot be the default", () => {
    expect(errorsOf({ model_providers: [{ model: "openai/*", default: true }] })).toEqual([
      expect.stringMatching(/^model_providers\[0\]\.default: a wildcard entry/),
    ]);
  });

  it("aliases must point at configured models, through chains, without cycles", () => {
    const base = { model_providers: [{ name: "fast", model: "groq/llama-3.3-70b-versatile" }] };
    expect(
      errorsOf({ ...base, model_aliases: { a: { target: "b" }, b: { target: "fast" } } }),
    ).toEqual([]);
    expect(errorsOf({ ...base, model_aliases: { a: { target: "fsat" } } })).toEqual([
      'model_aliases.a.target: "fsat" is not a configured model (did you mean "fast"?); aliases must point at a model_providers name or model',
    ]);
    expect(
      errorsOf({ ...base, model_aliases: { a: { target: "b" }, b: { target: "a" } } })[0],
    ).toMatch(/^model_aliases\.a\.target: alias cycle a -> b -> a/);
    expect(errorsOf({ ...base, model_aliases: { fast: { target: "fast" } } })[0]).toMatch(
      /shadows a configured model/,
    );
  });

  it("an alias may point at any model a provider/* wildcard configures", () => {
    const base = { model_providers: [{ model: "openai/*" }] };
    expect(
      errorsOf({ ...base, model_aliases: { fast: { target: "openai/gpt-4o-mini" } } }),
    ).toEqual([]);
    // the wildcard covers its own provider only, and not the bare prefix
    expect(errorsOf({ ...base, model_aliases: { a: { target: "anthropic/claude" } } })[0]).toMatch(
      /"anthropic\/claude" is not a configured model/,
    );
    expect(errorsOf({ ...base, model_aliases: { a: { target: "openai/" } } })[0]).toMatch(
      /is not a configured model/,
    );
  });

  it("refuses literal access keys without echoing them", () => {
    const errs = errorsOf({
      model_providers: [{ model: "openai/gpt-4o", access_key: "sk-live-abcdef123456" }],
    });
    expect(errs[0]).toMatch(
      /^model_providers\[0\]\.access_key: must reference an environment variable/,
    );
    expect(errs.join("\n")).not.toContain("sk-live-abcdef123456");
  });

  it("refuses credentials in URLs and literal credential headers", () => {
    const errs = errorsOf({
      model_providers: [
        { model: "openai/gpt-4o", base_url: "https://user:hunter2@api.example/v1" },
        { model: "openai/gpt-4o-mini", headers: { Authorization: "Bearer sk-abc" } },
        { model: "openai/o3", headers: { Authorization: "$PROXY_AUTH" } },
      ],
    });
    expect(errs).toHaveLength(2);
    expect(errs.join("\n")).not.toMatch(/hunter2|sk-abc/);
  });

  it("azure_openai needs base_url", () => {
    expect(errorsOf({ model_providers: [{ model: "azure_openai/my-deploy" }] })).toEqual([
      expect.stringMatching(
        /^model_providers\[0\]\.base_url: azure_openai has no default endpoint/,
      ),
    ]);
  });

  it("a bare model needs a prefix or provider_interface", () => {
    expect(errorsOf({ model_providers: [{ model: "gpt-4o" }] })[0]).toMatch(
      /has no provider prefix/,
    );
    expect(
      errorsOf({ model_providers: [{ model: "gpt-4o", provider_interface: "openai" }] }),
    ).toEqual([]);
  });

  it("unknown keys get a key path and a did-you-mean", () => {
    expect(errorsOf({ model_providers: [{ model: "openai/gpt-4o", acess_key: "$X" }] })[0]).toMatch(
      /^model_providers\[0\]\.acess_key: unknown key, did you mean "access_key"\?/,
    );
    expect(errorsOf({ model_alias: {} })[0]).toMatch(
      /^model_alias: unknown key, did you mean "model_aliases"\?/,
    );
    expect(errorsOf({ model_providers: [{ model: 3 }] })[0]).toMatch(
      /^model_providers\[0\]\.model: /,
    );
  });

  it("warns about the legacy key, plain http and ignored keys", () => {
    const r = validateRegistryConfig({
      llm_providers: [
        { model: "vllm/x", base_url: "http://gpu.example:8000" },
        { model: "openai/gpt-4o", access_key: "$K", passthrough_auth: true },
      ],
    });
    expect(r.errors).toEqual([]);
    expect(r.warnings).toEqual([
      "llm_providers: deprecated key, rename it to model_providers",
      "llm_providers[0].base_url: plain http to gpu.example sends the key unencrypted; use https",
      "llm_providers[1].access_key: ignored because passthrough_auth forwards the client's credential",
    ]);
  });

  it("an empty or null config is valid", () => {
    expect(validateRegistryConfig(undefined).errors).toEqual([]);
    expect(validateRegistryConfig({}).value?.providers).toEqual([]);
  });

  it("createRegistry throws E_INVALID_CONFIG with every detail", () => {
    let caught: { code?: string; details?: readonly string[] } | undefined;
    try {
      createRegistry({
        model_providers: [{ model: "corp/x" }, { model: "openai/*", default: true }],
      });
    } catch (e) {
      caught = e as typeof caught;
    }
    expect(caught?.code).toBe("E_INVALID_CONFIG");
    expect(caught?.details).toHaveLength(3);
  });
});

describe("JSON Schema", () => {
  it("is generated from the zod schema (snapshot)", () => {
    const schema = registryConfigJsonSchema();
    expect(schema).toMatchObject({ type: "object", additionalProperties: false });
    expect(schema).toMatchSnapshot();
  });
});
