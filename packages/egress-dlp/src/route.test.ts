import fc from "fast-check";
import { describe, expect, it, vi } from "vitest";
import { matchRoute, type Route, routeJsonSchema, routesSchema, validateRoutes } from "./route.ts";

function routes(input: unknown): Route[] {
  return routesSchema.parse(input);
}

describe("route schema", () => {
  it("accepts a bot-bottle style route and fills defaults", () => {
    const [r] = routes([
      {
        host: "api.github.com",
        auth: { scheme: "Bearer", token_ref: "GITHUB_TOKEN" },
        matches: [{ paths: [{ value: "/repos" }], methods: ["get"] }],
        dlp: { outbound_detectors: ["token_patterns"], inbound_detectors: false },
      },
    ]);
    expect(r?.matches?.[0]?.paths?.[0]?.type).toBe("prefix");
    expect(r?.dlp?.outbound_on_match).toBe("supervise");
  });

  it.each([
    ["*.com", "at least two labels"],
    ["api.*.com", "only as the whole first label"],
    ["API.github.com", "lower case"],
    ["bad_label.com", "invalid label"],
  ])("rejects host %s", (host, message) => {
    const v = validateRoutes([{ host }]);
    expect(v.errors.join("\n")).toContain(message);
    expect(v.errors[0]).toMatch(/^\[0\]\.host: /);
  });

  it("rejects role, suggests keys for typos, and rejects bad regexes", () => {
    expect(validateRoutes([{ host: "a.example.com", role: "x" }]).errors[0]).toContain("reserved");
    expect(validateRoutes([{ host: "a.example.com", mathces: [] }]).errors[0]).toContain(
      "did you mean `matches`",
    );
    const bad = validateRoutes([
      { host: "a.example.com", matches: [{ paths: [{ type: "regex", value: "(a" }] }] },
    ]);
    expect(bad.errors[0]).toMatch(
      /^\[0\]\.matches\[0\]\.paths\[0\]\.value: regex is not a valid RE2/,
    );
    const backref = validateRoutes([
      { host: "a.example.com", matches: [{ paths: [{ type: "regex", value: "(a)\\1" }] }] },
    ]);
    expect(backref.errors.length).toBe(1);
  });

  it("warns when a route allows everything on its host", () => {
    expect(validateRoutes([{ host: "a.example.com" }]).warnings[0]).toContain("every method");
  });

  it("generates a JSON schema", () => {
    const schema = routeJsonSchema();
    expect(schema.type).toBe("object");
    expect(Object.keys(schema.properties as object).sort()).toEqual(
      ["auth", "body_placeholders", "dlp", "host", "matches", "port"].sort(),
    );
  });
});

describe("route schemas are built on first use", () => {
  it("importing builds none, nor validating no routes; the exported schemas act as the built ones", async () => {
    // Count zod's object schemas as they are built, in a fresh instance of this module.
    vi.resetModules();
    const real = await vi.importActual<typeof import("zod")>("zod");
    let built = 0;
    vi.doMock("zod", () => ({
      ...real,
      z: new Proxy(real.z, {
        get(target, key, receiver) {
          if (key === "strictObject") built++;
          return Reflect.get(target, key, receiver);
        },
      }),
    }));
    try {
      const m = await import("./route.ts");
      expect(built).toBe(0);
      expect(m.validateRoutes([])).toEqual({ value: [], warnings: [], errors: [] });
      expect(built).toBe(0);
      const v = m.validateRoutes([{ host: "a.example.com", mathces: [] }]);
      expect(v.errors[0]).toContain("did you mean `matches`");
      expect(built).toBeGreaterThan(0);
      // The exported constants stand for the built schemas (manifest nests routeSchema in its own).
      const [r] = m.routesSchema.parse([
        { host: "a.example.com", matches: [{ paths: [{ value: "/x" }] }] },
      ]);
      expect(r?.matches?.[0]?.paths?.[0]?.type).toBe("prefix");
      expect(real.z.array(m.routeSchema).safeParse([{ host: "A.example.com" }]).success).toBe(
        false,
      );
      expect(Object.keys(m.routeSchema.shape)).toContain("body_placeholders");
      expect(m.pathMatchSchema.safeParse({ value: "x" }).success).toBe(false);
      expect(m.routeDlpSchema.parse({}).outbound_on_match).toBe("supervise");
    } finally {
      vi.doUnmock("zod");
      vi.resetModules();
    }
  });

  it("rejects what is not a plain empty list as before", () => {
    expect(validateRoutes(undefined).errors.length).toBeGreaterThan(0);
    expect(validateRoutes({}).errors.length).toBeGreaterThan(0);
    expect(validateRoutes([{}]).errors.length).toBeGreaterThan(0);
  });
});

describe("matchRoute", () => {
  const table = routes([
    { host: "*.example.com", matches: [{ methods: ["GET"] }] },
    { host: "api.example.com", matches: [{ paths: [{ type: "prefix", value: "/v1" }] }] },
    {
      host: "api.example.com",
      port: 8443,
      matches: [
        { paths: [{ type: "exact", value: "/health" }] },
        { paths: [{ type: "regex", value: "/items/[0-9]+" }], methods: ["DELETE"] },
        {
          headers: [
            { name: "X-Mode", value: "read" },
            { name: "x-trace", value: "t-[a-z]+", type: "regex" },
          ],
        },
      ],
    },
  ]);

  it("prefers the exact host and matches path prefixes by segment", () => {
    const r = matchRoute(table, { host: "API.example.com.", method: "post", path: "/v1/chat?x=1" });
    expect(r).toMatchObject({ ok: true, index: 1 });
    expect(
      matchRoute(table, { host: "api.example.com", method: "POST", path: "/v1x" }),
    ).toMatchObject({
      ok: false,
      reason: "no_match_entry",
    });
    // falls back to the wildcard route when the exact one does not match
    expect(
      matchRoute(table, { host: "api.example.com", method: "GET", path: "/other" }),
    ).toMatchObject({
      ok: true,
      index: 0,
    });
  });

  it("matches wildcard subdomains but not the apex", () => {
    expect(matchRoute(table, { host: "a.b.example.com", method: "GET", path: "/" }).ok).toBe(true);
    expect(matchRoute(table, { host: "example.com", method: "GET", path: "/" })).toMatchObject({
      reason: "no_route_for_host",
    });
    expect(matchRoute(table, { host: "evilexample.com", method: "GET", path: "/" }).ok).toBe(false);
  });

  it("checks ports", () => {
    expect(
      matchRoute(table, { host: "x.example.com", port: 80, method: "GET", path: "/" }).ok,
    ).toBe(true);
    expect(
      matchRoute(table, { host: "x.example.com", port: 22, method: "GET", path: "/" }),
    ).toMatchObject({
      reason: "port_not_allowed",
    });
    const req = { host: "api.example.com", port: 8443, method: "GET" };
    expect(matchRoute(table, { ...req, path: "/health" })).toMatchObject({ ok: true, index: 2 });
    expect(matchRoute(table, { ...req, path: "/health/x" }).ok).toBe(false);
  });

  it("anchors regex paths and requires every field of one entry", () => {
    const req = { host: "api.example.com", port: 8443 };
    expect(matchRoute(table, { ...req, method: "DELETE", path: "/items/42" }).ok).toBe(true);
    expect(matchRoute(table, { ...req, method: "DELETE", path: "/items/42/x" }).ok).toBe(false);
    expect(matchRoute(table, { ...req, method: "GET", path: "/items/42" }).ok).toBe(false);
  });

  it("matches headers case-insensitively by name with OR semantics", () => {
    const req = { host: "api.example.com", port: 8443, method: "PUT", path: "/z" };
    expect(matchRoute(table, { ...req, headers: { "x-mode": "read" } }).ok).toBe(true);
    expect(matchRoute(table, { ...req, headers: { "X-Trace": ["no", "t-abc"] } }).ok).toBe(true);
    expect(matchRoute(table, { ...req, headers: { "X-Trace": "t-abc1" } }).ok).toBe(false);
    expect(matchRoute(table, { ...req, headers: { "x-mode": "write" } }).ok).toBe(false);
  });

  it("fails closed on non-canonical paths and bad hosts", () => {
    const base = { host: "api.example.com", method: "GET" };
    for (const path of ["/v1/../admin", "/v1/%2e%2E/admin", "/v1%2fadmin", "/v1\\x", "v1"]) {
      expect(matchRoute(table, { ...base, path })).toMatchObject({
        ok: false,
        reason: "path_not_canonical",
      });
    }
    expect(matchRoute(table, { ...base, host: "a b", path: "/" })).toMatchObject({
      reason: "invalid_host",
    });
  });

  it("never leaks the path or host into reasons, and never throws", () => {
    fc.assert(
      fc.property(
        fc.string(),
        fc.constantFrom("GET", "post"),
        fc.string(),
        (host, method, path) => {
          const r = matchRoute(table, { host, method, path: `/${path}` });
          if (!r.ok && path.length >= 16) expect(r.message).not.toContain(path);
        },
      ),
      { numRuns: 300 },
    );
  });
});
