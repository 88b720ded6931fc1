import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { parseAuthority } from "./listener.ts";
import { reinsert } from "./pipeline.ts";

describe("parseAuthority (CONNECT targets)", () => {
  it("accepts host:port and rejects the rest", () => {
    expect(parseAuthority("api.github.com:443")).toEqual({ host: "api.github.com", port: 443 });
    expect(parseAuthority("API.GitHub.com.:8443")).toEqual({ host: "api.github.com", port: 8443 });
    expect(parseAuthority("[::1]:443")).toEqual({ host: "[::1]", port: 443 });
    for (const bad of [
      "api.github.com",
      "a:0",
      "a:65536",
      "a b:443",
      "user@a:443",
      ":443",
      "a:443/x",
      "a_b.com:443",
    ]) {
      expect(parseAuthority(bad)).toBeUndefined();
    }
  });

  it("never throws, and what it accepts is a clean host and a valid port", () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 300 }), (s) => {
        const r = parseAuthority(s);
        if (r) {
          expect(r.port).toBeGreaterThanOrEqual(1);
          expect(r.port).toBeLessThanOrEqual(65535);
          expect(r.host).not.toMatch(/[\s/@?#\\]/);
        }
      }),
    );
  });
});

describe("reinsert (credentials back into a redacted request)", () => {
  const M = "[CREDENTIAL]";
  it("rebuilds each segment with the real value", () => {
    expect(reinsert("a [REDACTED] b", "a SECRET b", "a SECRET b", [])).toBe("a [REDACTED] b");
    expect(reinsert(`x ${M} [REDACTED]`, `x ${M} AKIA`, "x tok123 AKIA", ["tok123"])).toBe(
      "x tok123 [REDACTED]",
    );
    expect(reinsert(`${M}`, `${M}`, "tok", ["tok"])).toBe("tok");
  });

  it("fails closed when the masks cannot be aligned", () => {
    expect(reinsert(`[REDACTED]`, `${M} z`, "tok z", ["tok"])).toBeUndefined();
    expect(reinsert(`${M} [REDACTED]`, `${M} z`, "other z", ["tok"])).toBeUndefined();
  });

  it("property: with one mask, the result is the redacted text with the value put back", () => {
    fc.assert(
      fc.property(
        fc.string({ maxLength: 40 }),
        fc.string({ maxLength: 40 }),
        fc.string({ minLength: 1, maxLength: 30 }),
        (pre, post, value) => {
          fc.pre(!pre.includes(M) && !post.includes(M));
          const masked = `${pre}${M}${post}`;
          const resolved = `${pre}${value}${post}`;
          const redacted = `${pre}${M}[REDACTED]`;
          const out = reinsert(redacted, masked, resolved, [value]);
          expect(out).toBe(`${pre}${value}[REDACTED]`);
        },
      ),
    );
  });
});
