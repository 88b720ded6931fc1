import { describe, expect, it } from "vitest";
import { createPlaceholderResolver, type PlaceholderRequest } from "./placeholder.ts";
import { routesSchema } from "./route.ts";

const GITHUB = "ghp_PlantedCredential0123456789abcdefXYZ";
const BOUND = "tok-bound-via-bindings-5551234";
const credentials = {
  GITHUB_TOKEN: GITHUB,
  WILD_TOKEN: BOUND,
  PATHY: "../../admin/zz",
  CRLF: "value\r\nX-Injected: 1",
};
const resolver = createPlaceholderResolver({
  credentials,
  bindings: { WILD_TOKEN: ["*.example.com"] },
  key: "k",
});
const [github, wildRoute, apex, bad] = routesSchema.parse([
  { host: "api.github.com", auth: { scheme: "Bearer", token_ref: "GITHUB_TOKEN" } },
  { host: "*.example.com" },
  { host: "example.com" },
  { host: "badexample.com" },
]);
const req = (over: Partial<PlaceholderRequest>): PlaceholderRequest => ({
  method: "POST",
  host: "api.github.com",
  path: "/user",
  headers: {},
  ...over,
});

/** The credential and the encodings an attacker would try to read it back through. */
function encodings(value: string): string[] {
  const b = Buffer.from(value, "utf8");
  return [
    value,
    value.toLowerCase(),
    [...value].reverse().join(""),
    b.toString("base64"),
    b.toString("base64url"),
    b.toString("base64").slice(4, -4),
    b.toString("hex"),
    encodeURIComponent(value),
    JSON.stringify(value).slice(1, -1),
    value.slice(4, 16),
  ];
}

function expectNoCredential(result: unknown): void {
  const text = JSON.stringify(result);
  for (const value of [GITHUB, BOUND]) {
    for (const e of encodings(value)) expect(text).not.toContain(e);
  }
}

const PH = "bottlekit:resolve:env:GITHUB_TOKEN";

describe("placeholders are resolved in one pass over the original text", () => {
  const nestedCases: [string, Partial<PlaceholderRequest>][] = [
    [
      "alias naming a placeholder",
      { headers: { authorization: `Bearer xBOTTLEKIT-RESOLVE-ENV-${PH}` } },
    ],
    [
      "alias whose name is the placeholder (header)",
      { headers: { "x-a": `aBOTTLEKIT-RESOLVE-ENV-${PH}X` } },
    ],
    ["placeholder then alias", { headers: { "x-a": `${PH}BOTTLEKIT-RESOLVE-ENV-NOPE` } }],
    ["in the query", { path: `/user?q=xOPENSHELL-RESOLVE-ENV-${PH}` }],
    ["in a path segment", { path: `/a/xBOTTLEKIT-RESOLVE-ENV-${PH}zz` }],
    [
      "in Basic auth",
      {
        headers: {
          authorization: `Basic ${Buffer.from(`u:xBOTTLEKIT-RESOLVE-ENV-${PH}Q`).toString("base64")}`,
        },
      },
    ],
    [
      "placeholder name written as itself twice",
      { headers: { "x-a": `bottlekit:resolve:env:bottlekit:resolve:env:GITHUB_TOKEN` } },
    ],
  ];
  for (const [label, over] of nestedCases) {
    it(`${label}: refused or resolved, and a refusal never carries the credential`, () => {
      const r = resolver.resolve(req(over), github);
      expectNoCredential(r.ok ? { ...r, request: undefined } : r);
      if (!r.ok) {
        expect(r.message).not.toContain(GITHUB);
        expect(r.name ?? "").not.toContain("ghp_");
      }
    });
  }

  it("refuses the nested alias as an unknown placeholder named by the original text", () => {
    const r = resolver.resolve(
      req({ headers: { authorization: `Bearer xBOTTLEKIT-RESOLVE-ENV-${PH}` } }),
      github,
    );
    expect(r).toMatchObject({ ok: false, reason: "unknown_placeholder", name: "bottlekit" });
  });

  it("withholds a placeholder name that contains a credential value", () => {
    const r = resolver.resolve(
      req({ headers: { "x-a": `bottlekit:resolve:env:Z${GITHUB}` } }),
      github,
    );
    expect(r).toMatchObject({ ok: false, reason: "unknown_placeholder", name: "[WITHHELD]" });
    expectNoCredential(r);
  });

  const errorPaths: [string, PlaceholderRequest, typeof github][] = [
    ["unknown_placeholder", req({ headers: { a: "bottlekit:resolve:env:NOPE" } }), github],
    ["unbound_route", req({ headers: { a: "bottlekit:resolve:env:WILD_TOKEN" } }), github],
    ["body_denied", req({ body: `{"k":"${PH}"}` }), github],
    ["invalid_value", req({ headers: { a: "bottlekit:resolve:env:CRLF" } }), github],
    ["invalid_path_value", req({ path: "/bottlekit:resolve:env:PATHY" }), github],
    ["placeholder in the host", req({ host: `${PH}.github.com` }), github],
    ["placeholder in the Host header", req({ headers: { Host: PH } }), github],
    ["CR/LF next to a placeholder", req({ headers: { a: `${PH}\r\nX-Evil: 1` } }), github],
  ];
  for (const [label, request, route] of errorPaths) {
    it(`error path ${label}: refused and the result carries no credential in any encoding`, () => {
      const r = resolver.resolve(request, route);
      expect(r.ok).toBe(false);
      expectNoCredential(r);
    });
  }
});

describe("resolve() checks the request host itself", () => {
  it("resolves a token_ref credential only for the route's own host", () => {
    const h = { authorization: `Bearer ${PH}` };
    expect(resolver.resolve(req({ headers: h }), github).ok).toBe(true);
    expect(resolver.resolve(req({ host: "evil.test", headers: h }), github)).toMatchObject({
      ok: false,
      reason: "unbound_route",
    });
  });

  it("resolves a bindings credential on a matching wildcard host and refuses the apex and look-alikes", () => {
    const h = { "x-key": "bottlekit:resolve:env:WILD_TOKEN" };
    const ok = resolver.resolve(req({ host: "a.example.com", headers: h }), wildRoute);
    expect(ok.ok && ok.request.headers["x-key"]).toBe(BOUND);
    expect(resolver.resolve(req({ host: "example.com", headers: h }), apex).ok).toBe(false);
    expect(resolver.resolve(req({ host: "badexample.com", headers: h }), bad).ok).toBe(false);
    expect(
      resolver.resolve(req({ host: "a.example.com.evil.test", headers: h }), wildRoute).ok,
    ).toBe(false);
  });

  for (const host of [
    "evil.example#.example.com",
    "evil.test/.example.com",
    "evil.test\\.example.com",
    "user@a.example.com",
    "evil.test:443.example.com",
    "a .example.com",
    "a..example.com",
    "evil.test%2f.example.com",
  ]) {
    it(`refuses the crafted host ${JSON.stringify(host)} for a wildcard binding`, () => {
      const r = resolver.resolve(
        req({ host, headers: { "x-key": "bottlekit:resolve:env:WILD_TOKEN" } }),
        wildRoute,
      );
      expect(r).toMatchObject({ ok: false, reason: "unbound_route" });
      expectNoCredential(r);
    });
  }

  it("refuses a placeholder in the Host header even on a bound route", () => {
    const r = resolver.resolve(
      req({ host: "a.example.com", headers: { host: "bottlekit:resolve:env:WILD_TOKEN" } }),
      wildRoute,
    );
    expect(r).toMatchObject({ ok: false, surface: "header:host" });
  });

  it("refuses CR or LF anywhere in a header that carries a placeholder", () => {
    for (const v of [`x\r\n${PH}`, `${PH}\nX: y`, `${PH}\r`]) {
      const r = resolver.resolve(req({ headers: { authorization: v } }), github);
      expect(r).toMatchObject({ ok: false, reason: "invalid_value" });
    }
  });
});
