import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { chatBody } from "../bench/corpus.ts";
import { KnownSecretIndex } from "./known.ts";
import { createScanner, ruleTableBuilds } from "./scan.ts";

/**
 * What a scanner builds, and when (issue 15: `bottle run` builds a known-secret scanner for the
 * probe's credential check, the gateway's and a proxy session's before the agent starts). Counts
 * work, not time. Its own file: the rule tables are built once per process, and this file's
 * process has built none when it starts.
 */
const SECRET = { name: "ANTHROPIC_API_KEY", value: "sk-ant-api03-Zq9Lm2Xw7Rt4Yp1Vn8Qa5Bc3" };

describe("scanner start-up", () => {
  it("builds the token rules' tables at the first scan that needs them, never for known_secrets alone", () => {
    expect(ruleTableBuilds()).toBe(0);
    const known = createScanner({ detectors: ["known_secrets"], knownSecrets: [SECRET] });
    const none = createScanner({ detectors: ["known_secrets"], knownSecrets: [] });
    expect(known.scan(`key=${SECRET.value}`).blocked).toBe(true);
    expect(none.scan("PATH=/usr/bin:/bin").findings).toEqual([]);
    expect(ruleTableBuilds()).toBe(0);
    // the gateway's and a session's scanners, built before the agent starts
    const gateway = createScanner({ knownSecrets: [SECRET] });
    const session = createScanner({
      detectors: ["token_patterns", "known_secrets", "entropy"],
      knownSecrets: [SECRET],
    });
    expect(gateway.knownSecretCount).toBe(1);
    // construction still refuses a known secret too short to protect
    expect(() => createScanner({ knownSecrets: [{ name: "S", value: "short" }] })).toThrow(
      /fewer than 12 letters and digits/,
    );
    expect(ruleTableBuilds()).toBe(0);
    // the first scan builds them, for every scanner of the process
    const token = `ghp_${"A1b2C3d4E5".repeat(3)}abcdef`;
    expect(gateway.scan(`token ${token}`).findings.map((f) => f.rule)).toEqual(["github-pat"]);
    expect(session.scan(`token ${token}`).findings.map((f) => f.rule)).toContain("github-pat");
    expect(ruleTableBuilds()).toBe(1);
  });

  it("sizes the known-secret filter by the secrets: one page for one secret, 2 Mi bits for many", () => {
    expect(new KnownSecretIndex([SECRET]).filterBits).toBeLessThanOrEqual(64 * 1024);
    const many = Array.from({ length: 100 }, (_, i) => ({
      name: `K${i}`,
      value: Buffer.from(`secret-${i}-`.repeat(4)).toString("base64"),
    }));
    expect(new KnownSecretIndex(many).filterBits).toBe(2 * 1024 * 1024);
  });

  it("finds the same fragments whatever the filter's size (property)", () => {
    const body = chatBody(3000, 7);
    const secrets = [SECRET, { name: "B", value: "Hk3Jd8Ws1Pq6Tz0Bv4Nc7Yx2Mb9" }];
    const sizes = [1 << 5, 1 << 15, 1 << 21].map(
      (filterBits) => new KnownSecretIndex(secrets, { filterBits }),
    );
    expect(sizes.map((index) => index.filterBits)).toEqual([1 << 5, 1 << 15, 1 << 21]);
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            at: fc.nat({ max: body.length }),
            secret: fc.constantFrom(...secrets.map((s) => s.value)),
            from: fc.nat({ max: 10 }),
            form: fc.constantFrom("raw", "base64", "hex", "reversed"),
          }),
          { maxLength: 4 },
        ),
        (plants) => {
          let text = body;
          for (const p of plants) {
            const v = p.secret.slice(p.from);
            const shaped =
              p.form === "base64"
                ? Buffer.from(v).toString("base64")
                : p.form === "hex"
                  ? Buffer.from(v).toString("hex")
                  : p.form === "reversed"
                    ? [...v].reverse().join("")
                    : v;
            text = `${text.slice(0, p.at)} ${shaped} ${text.slice(p.at)}`;
          }
          const [tiny, small, large] = sizes.map((index) => index.scan(text));
          expect(tiny).toEqual(large);
          expect(small).toEqual(large);
          if (plants.length > 0) expect(large?.length).toBeGreaterThan(0);
        },
      ),
      { numRuns: 60 },
    );
  });
});
