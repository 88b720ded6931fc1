import { gzipSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { enforceOutbound, type OutboundRequest, requestSurfaces, scanRequest } from "./request.ts";
import { routesSchema } from "./route.ts";
import { createScanner } from "./scan.ts";

const secret = "ghp_4U3LSowpDx8XvYE7A8GH56oxU5aWnY2mzIbV";
const canary = "bk-canary-7f3a9c2e41d84b6f9a0e5c7d";
const scanner = createScanner({
  knownSecrets: [
    { name: "EGRESS_TOKEN_0", value: "s3cr3t-Value-0123456789abcdef" },
    { name: "CANARY", value: canary },
  ],
});
const [blockRoute, redactRoute, superviseRoute, offRoute] = routesSchema.parse([
  { host: "a.example.com", dlp: { outbound_on_match: "block" } },
  { host: "b.example.com", dlp: { outbound_on_match: "redact" } },
  { host: "c.example.com" },
  { host: "d.example.com", dlp: { outbound_detectors: false } },
]);
const base = (over: Partial<OutboundRequest> = {}): OutboundRequest => ({
  method: "POST",
  host: "a.example.com",
  path: "/v1/x",
  headers: { "content-type": "application/json" },
  body: '{"q":"hello"}',
  ...over,
});

describe("request surfaces", () => {
  it("finds a secret in every surface: header, query, path segment, subdomain label, body", () => {
    const cases: [string, OutboundRequest][] = [
      ["header:x-api-key", base({ headers: { "X-Api-Key": secret } })],
      ["query", base({ path: `/v1/x?k=${secret}` })],
      ["path", base({ path: `/v1/${secret}/x` })],
      ["host", base({ host: `${canary.slice(0, 16)}.${canary.slice(16)}.evil.example` })],
      ["body", base({ body: JSON.stringify({ note: Buffer.from(canary).toString("base64") }) })],
    ];
    for (const [surface, req] of cases) {
      const r = scanRequest(scanner, req);
      expect(r.blocked, surface).toBe(true);
      expect(
        r.findings.some((f) => f.surface === surface),
        surface,
      ).toBe(true);
    }
  });

  it("decodes gzip bodies and inline base64-of-gzip within limits", () => {
    const gz = gzipSync(Buffer.from(`{"k":"${canary}"}`));
    const r = scanRequest(scanner, base({ headers: { "Content-Encoding": "gzip" }, body: gz }));
    expect(r.findings.some((f) => f.rule === "CANARY")).toBe(true);
    const inline = gzipSync(Buffer.from(`hidden ${canary}`)).toString("base64");
    expect(
      scanRequest(scanner, base({ body: `{"blob":"${inline}"}` })).findings[0]?.encoding,
    ).toContain("gzip");
    const bomb = gzipSync(Buffer.alloc(50 * 1024 * 1024));
    const big = requestSurfaces(base({ headers: { "content-encoding": "gzip" }, body: bomb }));
    expect(big.ok).toBe(false);
    const broken = requestSurfaces(
      base({ headers: { "content-encoding": "gzip" }, body: "not gzip" }),
    );
    expect(broken.ok).toBe(false);
  });
});

describe("actions", () => {
  it("block: refuses", async () => {
    const d = await enforceOutbound({
      scanner,
      route: blockRoute,
      request: base({ body: `{"t":"${secret}"}` }),
    });
    expect(d.action).toBe("block");
  });

  it("redact: replaces in place, re-scans, and forwards", async () => {
    const d = await enforceOutbound({
      scanner,
      route: redactRoute,
      request: base({
        host: "b.example.com",
        body: `{"t":"${secret}","u":"ok"}`,
        headers: { "x-k": `v ${canary}` },
      }),
    });
    expect(d.action).toBe("redact");
    if (d.action !== "redact") return;
    expect(d.request.body).toBe('{"t":"[REDACTED]","u":"ok"}');
    expect(d.request.headers["x-k"]).toBe("v [REDACTED]");
  });

  it("redact: a secret in the host name blocks", async () => {
    const d = await enforceOutbound({
      scanner,
      route: redactRoute,
      request: base({ host: `${canary}.b.example.com` }),
    });
    expect(d).toMatchObject({ action: "block", reason: expect.stringContaining("host") });
  });

  it("host labels match known secrets case-insensitively (DNS lowercases), whole or in fragments", () => {
    const mixed = "s3cr3t-Value-0123456789abcdef";
    const b64 = Buffer.from(mixed).toString("base64").replace(/=+$/, "");
    const b32 = "OMZWG4RTOQWVMYLMOVSS2MBRGIZTINJWG44DSYLCMNSGKZQ"; // base32 of the same value
    const hosts = [
      `${mixed.toLowerCase().replace(/-/g, ".")}.evil.example`,
      `${mixed.toUpperCase()}.evil.example`,
      `x${mixed.toLowerCase().slice(4, 20)}.evil.example`, // a 16-character fragment
      `${b64.toLowerCase().slice(0, 20)}.${b64.toLowerCase().slice(20)}.evil.example`,
      `${b32.toLowerCase().slice(0, 30)}.${b32.toLowerCase().slice(30)}.evil.example`,
    ];
    for (const host of hosts) {
      const r = scanRequest(scanner, base({ host }));
      expect(
        r.findings.some((f) => f.surface === "host" && f.rule === "EGRESS_TOKEN_0"),
        host,
      ).toBe(true);
    }
    expect(scanRequest(scanner, base({ host: "api.example-service.com" })).findings).toEqual([]);
  });

  it("host labels and header names match upper-case token patterns whatever their case (AKIA…)", () => {
    const key = "AKIAQYHM4F2VHK7DZW3X"; // the shape of an AWS access key id, not a real one
    for (const host of [`${key.toLowerCase()}.evil.example`, `${key}.evil.example`]) {
      const r = scanRequest(scanner, base({ host }));
      expect(
        r.findings.filter((f) => f.surface === "host").map((f) => f.rule),
        host,
      ).toHaveLength(1);
      expect(r.blocked, host).toBe(true);
    }
    const named = scanRequest(
      scanner,
      base({ headers: { "content-type": "application/json", [`x-${key.toLowerCase()}`]: "1" } }),
    );
    expect(named.findings.some((f) => f.surface === "header-names")).toBe(true);
    // a lower-cased key id is a key anywhere (issue 17: an agent can change the case of any text)
    expect(
      scanRequest(scanner, base({ path: `/v1/${key.toLowerCase()}` })).findings.map((f) => f.rule),
    ).toEqual(["aws-access-key-id-lowercase"]);
    // ordinary host names stay clean
    for (const host of ["api.openai.com", "akiafoo.example.com", "registry.npmjs.org"]) {
      expect(scanRequest(scanner, base({ host })).findings, host).toEqual([]);
    }
  });

  it("header names are a surface, case-insensitive, and a secret there cannot be redacted", async () => {
    const name = `x-${canary.toLowerCase()}`;
    const r = scanRequest(
      scanner,
      base({ headers: { [name]: "1", "content-type": "text/plain" } }),
    );
    expect(r.findings.some((f) => f.surface === "header-names" && f.rule === "CANARY")).toBe(true);
    const split = { "x-bk-canary-7f3a9c": "1", "X-2E41D84B6F9A0E5C7D": "2" };
    expect(scanRequest(scanner, base({ headers: split })).blocked).toBe(true);
    const d = await enforceOutbound({
      scanner,
      route: redactRoute,
      request: base({ headers: { [name]: "1" } }),
    });
    expect(d).toMatchObject({ action: "block", reason: expect.stringContaining("header name") });
    expect(requestSurfaces(base()).ok && requestSurfaces(base())).toMatchObject({
      surfaces: expect.arrayContaining([{ surface: "header-names", text: "content-type" }]),
    });
  });

  it("supervise: approval passes that value from then on, a second secret is still caught", async () => {
    const approved = new Set<string>();
    const asked: unknown[] = [];
    const d = await enforceOutbound({
      scanner,
      route: superviseRoute,
      request: base({ host: "c.example.com", body: `{"t":"${secret}"}` }),
      approved,
      supervise: async (p) => {
        asked.push(p);
        return "approve";
      },
    });
    expect(d.action).toBe("allow");
    expect(JSON.stringify(asked)).not.toContain(secret.slice(4, 20));
    const again = await enforceOutbound({
      scanner,
      route: superviseRoute,
      request: base({ host: "c.example.com", body: `{"t":"${secret}","c":"${canary}"}` }),
      approved,
      supervise: async () => "reject",
    });
    expect(again).toMatchObject({ action: "block", reason: "rejected by the supervisor" });
    expect(again.findings.every((f) => f.rule !== "github-pat")).toBe(true);
  });

  it("supervise: timeout, a throwing supervisor, or none at all block", async () => {
    const request = base({ host: "c.example.com", body: `{"t":"${secret}"}` });
    const slow = await enforceOutbound({
      scanner,
      route: superviseRoute,
      request,
      superviseTimeoutMs: 20,
      supervise: () => new Promise(() => {}),
    });
    expect(slow).toMatchObject({ action: "block", reason: "supervisor timed out" });
    const broken = await enforceOutbound({
      scanner,
      route: superviseRoute,
      request,
      supervise: async () => {
        throw new Error("queue down");
      },
    });
    expect(broken.action).toBe("block");
    expect((await enforceOutbound({ scanner, route: superviseRoute, request })).action).toBe(
      "block",
    );
  });

  it("outbound_detectors: false skips scanning; a scan over budget blocks", async () => {
    const request = base({ host: "d.example.com", body: `{"t":"${secret}"}` });
    expect((await enforceOutbound({ scanner, route: offRoute, request })).action).toBe("allow");
    const tiny = createScanner({ maxChars: 10 });
    const d = await enforceOutbound({
      scanner: tiny,
      route: redactRoute,
      request: base({ body: "x".repeat(100) }),
    });
    expect(d).toMatchObject({ action: "block", reason: expect.stringContaining("budget") });
  });
});
