import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { pathProblem } from "./pipeline.ts";
import { isPublicAddress } from "./upstream-address.ts";

/** Property tests of the two checks the bypass fixes rest on (see bypass.test.ts). */

const octet = fc.integer({ min: 0, max: 255 });
const v4 = (a: number, b: fc.Arbitrary<number> = octet) =>
  fc.tuple(b, octet, octet).map(([x, y, z]) => `${a}.${x}.${y}.${z}`);

describe("isPublicAddress", () => {
  it("loopback, RFC 1918 and link-local IPv4 are never public, in any IPv6 wrapping either", () => {
    const priv = fc.oneof(
      v4(127),
      v4(10),
      v4(169, fc.constant(254)),
      v4(192, fc.constant(168)),
      v4(172, fc.integer({ min: 16, max: 31 })),
    );
    fc.assert(
      fc.property(priv, (a) => {
        expect(isPublicAddress(a)).toBe(false);
        expect(isPublicAddress(`::ffff:${a}`)).toBe(false);
        expect(isPublicAddress(`[::ffff:${a}]`)).toBe(false);
        expect(isPublicAddress(`64:ff9b::${a}`)).toBe(false);
      }),
    );
  });

  it("any IPv4-mapped, unique-local or link-local IPv6 address is not public", () => {
    const hex = fc.integer({ min: 0, max: 0xffff }).map((n) => n.toString(16));
    fc.assert(
      fc.property(hex, hex, (a, b) => {
        expect(isPublicAddress(`::ffff:${a}:${b}`)).toBe(false);
        expect(isPublicAddress(`fd00::${a}:${b}`)).toBe(false);
        expect(isPublicAddress(`fe80::${a}:${b}`)).toBe(false);
      }),
    );
  });

  it("whatever is not an IP literal is not public (fail closed)", () => {
    fc.assert(
      fc.property(fc.string(), (s) => {
        fc.pre(!/^[0-9a-f:.[\]]+$/i.test(s));
        expect(isPublicAddress(s)).toBe(false);
      }),
    );
  });

  it("ordinary public IPv4 (first octet 1-9, 11-99 but not 10) is public", () => {
    const first = fc.integer({ min: 1, max: 99 }).filter((n) => n !== 10 && n !== 100);
    fc.assert(
      fc.property(first, octet, octet, octet, (a, b, c, d) => {
        expect(isPublicAddress(`${a}.${b}.${c}.${d}`)).toBe(true);
      }),
    );
  });
});

describe("pathProblem", () => {
  const seg = fc.stringMatching(/^[a-z0-9_-]{1,8}$/);
  const plain = fc.array(seg, { minLength: 0, maxLength: 6 }).map((s) => `/${s.join("/")}`);
  const dotty = fc.constantFrom(
    "..",
    ".",
    "..;",
    "..;x=1",
    "%2e%2e",
    "%2E.",
    ".%2e;a",
    "%2e",
    "..%3b",
    "%2e%2e%3bv",
  );

  it("plain paths (with ; parameters and any query) pass", () => {
    fc.assert(
      fc.property(plain, seg, fc.string(), (p, param, q) => {
        fc.pre(!q.includes("#"));
        expect(pathProblem(p)).toBeUndefined();
        expect(pathProblem(`${p};${param}`)).toBeUndefined();
        expect(pathProblem(`${p}?${q}`)).toBeUndefined();
      }),
    );
  });

  it("a dot segment hidden anywhere by escapes or ; parameters is found", () => {
    fc.assert(
      fc.property(plain, dotty, plain, (a, d, b) => {
        expect(pathProblem(`${a === "/" ? "" : a}/${d}${b}`)).toBeDefined();
      }),
    );
  });

  it("a fragment, an encoded separator or a malformed escape anywhere in the path is found", () => {
    const bad = fc.constantFrom("#", "%2f", "%2F", "%5c", "\\", "%00", "%g1", "%zz", "%-");
    fc.assert(
      fc.property(plain, bad, seg, (p, b, tail) => {
        expect(pathProblem(`${p}${b}${tail}`)).toBeDefined();
        expect(pathProblem(`${p}${tail}%`)).toBeDefined();
      }),
    );
  });
});
