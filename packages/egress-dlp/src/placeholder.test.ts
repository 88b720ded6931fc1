import { describe, expect, it } from "vitest";
import { createPlaceholderResolver, shapePlaceholder } from "./placeholder.ts";
import { routesSchema } from "./route.ts";
import { createScanner } from "./scan.ts";

const [telegram, github, anthropic, open] = routesSchema.parse([
  { host: "api.telegram.org", auth: { scheme: "Bearer", token_ref: "BOT_TOKEN" } },
  {
    host: "api.github.com",
    auth: { scheme: "Bearer", token_ref: "GITHUB_TOKEN" },
    body_placeholders: true,
  },
  { host: "api.anthropic.com", auth: { scheme: "x-api-key", token_ref: "ANTHROPIC_API_KEY" } },
  { host: "example.com" },
]);

const credentials = {
  ANTHROPIC_API_KEY: "sk-ant-api03-realKeyValue0123456789",
  GITHUB_TOKEN: "ghp_4U3LSowpDx8XvYE7A8GH56oxU5aWnY2mzIbV",
  BOT_TOKEN: "123456:AAbbCCdd",
  API_TOKEN: "tok-live-1234567890",
  EVIL: "line1\r\nX-Injected: yes",
  PATHY: "../../admin",
};
const resolver = createPlaceholderResolver({
  credentials,
  bindings: {
    API_TOKEN: ["api.anthropic.com"],
    EVIL: ["api.anthropic.com"],
    PATHY: ["api.telegram.org"],
  },
  key: "test-key",
});
const req = (over: Partial<Parameters<typeof resolver.resolve>[0]>) => ({
  method: "POST",
  host: "api.anthropic.com",
  path: "/v1/messages",
  headers: {},
  ...over,
});

describe("placeholders (OpenShell cases)", () => {
  it("resolves header placeholders (Authorization and x-api-key) and leaves other headers alone", () => {
    const r = resolver.resolve(
      req({
        headers: {
          "x-api-key": "bottlekit:resolve:env:ANTHROPIC_API_KEY",
          authorization: "Bearer openshell:resolve:env:ANTHROPIC_API_KEY",
          accept: "application/json",
        },
      }),
      anthropic,
    );
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.request.headers["x-api-key"]).toBe(credentials.ANTHROPIC_API_KEY);
    expect(r.request.headers.authorization).toBe(`Bearer ${credentials.ANTHROPIC_API_KEY}`);
    expect(r.request.headers.accept).toBe("application/json");
    expect(r.scanView.headers["x-api-key"]).toBe("[CREDENTIAL]");
    expect(JSON.stringify(r.scanView)).not.toContain("realKeyValue");
    expect(r.used).toEqual([
      { name: "ANTHROPIC_API_KEY", surface: "header:x-api-key" },
      { name: "ANTHROPIC_API_KEY", surface: "header:authorization" },
    ]);
  });

  it("resolves the whole-token alias, and refuses an unknown alias at the header", () => {
    const ok = resolver.resolve(
      req({ headers: { authorization: "Bearer vendor-OPENSHELL-RESOLVE-ENV-API_TOKEN" } }),
      anthropic,
    );
    expect(ok.ok && ok.request.headers.authorization).toBe("Bearer tok-live-1234567890");
    const bad = resolver.resolve(
      req({ headers: { authorization: "Bearer vendor-OPENSHELL-RESOLVE-ENV-NOPE" } }),
      anthropic,
    );
    expect(bad).toMatchObject({
      ok: false,
      reason: "unknown_placeholder",
      surface: "header:authorization",
    });
  });

  it("resolves inside path segments, masking them in the scan view", () => {
    const r = resolver.resolve(
      req({ host: "api.telegram.org", path: "/botbottlekit:resolve:env:BOT_TOKEN/sendMessage" }),
      telegram,
    );
    expect(r.ok && r.request.path).toBe(
      `/bot${encodeURIComponent(credentials.BOT_TOKEN)}/sendMessage`,
    );
    expect(r.ok && r.scanView.path).toBe("/bot[CREDENTIAL]/sendMessage");
  });

  it("resolves percent-encoded placeholders in queries and refuses unknown ones in paths", () => {
    const r = resolver.resolve(
      req({ host: "api.telegram.org", path: "/x?token=bottlekit%3Aresolve%3Aenv%3ABOT_TOKEN&q=1" }),
      telegram,
    );
    expect(r.ok && r.request.path).toBe(
      `/x?token=${encodeURIComponent(credentials.BOT_TOKEN)}&q=1`,
    );
    expect(r.ok && r.scanView.path).toBe("/x?token=[CREDENTIAL]&q=1");
    const bad = resolver.resolve(
      req({ host: "api.telegram.org", path: "/a/openshell%3Aresolve%3Aenv%3AUNKNOWN/b" }),
      telegram,
    );
    expect(bad).toMatchObject({ ok: false, reason: "unknown_placeholder", surface: "path" });
  });

  it("decodes, resolves and re-encodes Basic auth", () => {
    const basic = Buffer.from("user:bottlekit:resolve:env:API_TOKEN").toString("base64");
    const r = resolver.resolve(req({ headers: { Authorization: `Basic ${basic}` } }), anthropic);
    expect(r.ok && r.request.headers.Authorization).toBe(
      `Basic ${Buffer.from(`user:${credentials.API_TOKEN}`).toString("base64")}`,
    );
  });

  it("refuses resolved values with CR, LF or NUL, and path values with path syntax", () => {
    const crlf = resolver.resolve(
      req({ headers: { "x-api-key": "bottlekit:resolve:env:EVIL" } }),
      anthropic,
    );
    expect(crlf).toMatchObject({ ok: false, reason: "invalid_value", name: "EVIL" });
    const path = resolver.resolve(
      req({ host: "api.telegram.org", path: "/files/bottlekit:resolve:env:PATHY" }),
      telegram,
    );
    expect(path).toMatchObject({ ok: false, reason: "invalid_path_value" });
    expect(JSON.stringify(crlf)).not.toContain("X-Injected");
  });

  it("refuses placeholders headed to a route not bound to the credential", () => {
    const r = resolver.resolve(
      req({
        host: "example.com",
        headers: { authorization: "Bearer bottlekit:resolve:env:GITHUB_TOKEN" },
      }),
      open,
    );
    expect(r).toMatchObject({ ok: false, reason: "unbound_route", name: "GITHUB_TOKEN" });
    expect(
      resolver.resolve(req({ headers: { a: "bottlekit:resolve:env:GITHUB_TOKEN" } }), undefined).ok,
    ).toBe(false);
    expect(resolver.resolve(req({ host: "bottlekit:resolve:env:GITHUB_TOKEN" }), open).ok).toBe(
      false,
    );
  });

  it("resolves in bodies only where the route opts in", () => {
    const body = '{"token":"bottlekit:resolve:env:GITHUB_TOKEN"}';
    const denied = resolver.resolve(
      req({ host: "api.anthropic.com", body: body.replace("GITHUB", "ANTHROPIC_API") }),
      anthropic,
    );
    expect(denied).toMatchObject({ ok: false, reason: "body_denied" });
    const ok = resolver.resolve(req({ host: "api.github.com", body }), github);
    expect(ok.ok && ok.request.body).toContain(credentials.GITHUB_TOKEN);
  });
});

describe("format-preserving placeholders", () => {
  it("keep prefix, length and character classes, and GitHub ones fail their checksum", () => {
    const ph = resolver.shapedPlaceholderFor("GITHUB_TOKEN");
    expect(ph).toMatch(/^ghp_[A-Za-z0-9]{36}$/);
    expect(ph).not.toBe(credentials.GITHUB_TOKEN);
    const s = shapePlaceholder("xoxb-1234567890-abcdEFGH", new Uint8Array(32));
    expect(s).toMatch(/^xoxb-\d{10}-[a-z]{4}[A-Z]{4}$/);
    const r = resolver.resolve(
      req({ host: "api.github.com", headers: { authorization: `token ${ph}` } }),
      github,
    );
    expect(r.ok && r.request.headers.authorization).toBe(`token ${credentials.GITHUB_TOKEN}`);
    expect(resolver.agentEnv(["GITHUB_TOKEN"]).GITHUB_TOKEN).toBe(ph);
  });

  it("every placeholder is a canary for the outbound scanner", () => {
    const scanner = createScanner({
      detectors: ["known_secrets"],
      knownSecrets: resolver.canaries(),
    });
    const leaked = `{"env":"${resolver.shapedPlaceholderFor("GITHUB_TOKEN")}"}`;
    expect(scanner.scan(leaked).findings[0]?.rule).toBe("placeholder:GITHUB_TOKEN");
    const b64 = Buffer.from("bottlekit:resolve:env:BOT_TOKEN").toString("base64");
    expect(scanner.scan(`q=${b64}`).findings[0]?.rule).toBe("placeholder:BOT_TOKEN");
  });
});
