import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { Redactor } from "./redact.ts";

describe("Redactor", () => {
  it("removes known secrets (by variable name) and token patterns, keeps the rest", async () => {
    const r = await Redactor.create(
      { DB_PASSWORD: "hunter2-hunter2", PATH: "/usr/bin:/bin", GW: "bk_abcdefghijkl" },
      ["GW"],
    );
    const gh = `ghp_${"aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3zA5"}`;
    const out = r.text(
      `psql -p hunter2-hunter2 && curl -H "token ${gh}" && key=bk_abcdefghijkl ls /usr/bin`,
    );
    expect(out).not.toContain("hunter2-hunter2");
    expect(out).not.toContain(gh);
    expect(out).not.toContain("bk_abcdefghijkl");
    expect(out).toContain("[REDACTED:DB_PASSWORD]");
    expect(out).toContain("ls /usr/bin");
  });

  it("property: a known secret embedded anywhere never survives", async () => {
    const secret = "s3cr3t-VALUE-0123456789";
    const r = await Redactor.create({ API_TOKEN: secret });
    fc.assert(
      fc.property(fc.string({ maxLength: 40 }), fc.string({ maxLength: 40 }), (a, b) => {
        expect(r.text(`${a}${secret}${b}`)).not.toContain(secret);
      }),
      { numRuns: 200 },
    );
  });
});
