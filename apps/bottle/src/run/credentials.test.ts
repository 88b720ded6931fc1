import { describe, expect, it, vi } from "vitest";

const built = vi.hoisted(() => ({ scanners: 0 }));
vi.mock("@bottlekit/egress-dlp", async (importOriginal) => {
  const original = await importOriginal<typeof import("@bottlekit/egress-dlp")>();
  return {
    ...original,
    createScanner: (...args: Parameters<typeof original.createScanner>) => {
      built.scanners++;
      return original.createScanner(...args);
    },
  };
});

const { credentialChecker, hostCredentials } = await import("./credentials.ts");

const TOKEN = "ghp_Zx81Qw0pLm3Nb7Vc5Xz2Ty9Ua4Sd6Fg8Hj1K";

describe("hostCredentials", () => {
  it("takes declared variables and secret-named ones of 8 characters or more", () => {
    const known = hostCredentials(
      {
        GITHUB_TOKEN: TOKEN,
        MY_API_KEY: "short",
        DECLARED: "some-long-value",
        HOME: "/root/some/long/path",
      },
      ["DECLARED"],
    );
    expect(known.map((k) => k.name).sort()).toEqual(["DECLARED", "GITHUB_TOKEN"]);
  });
});

describe("credentialChecker", () => {
  it("finds a host credential in the sandbox's environment, encoded, and names only the variable", () => {
    const check = credentialChecker([{ name: "GITHUB_TOKEN", value: TOKEN }]);
    const r = check({
      PATH: "/usr/bin:/bin",
      SMUGGLED: Buffer.from(`x=${TOKEN}`).toString("base64"),
    });
    expect(r.ok).toBe(false);
    expect(r.detail).toContain("SMUGGLED");
    expect(r.detail).not.toContain(TOKEN);
    expect(check({ PATH: "/usr/bin:/bin", LANG: "C.UTF-8" }).ok).toBe(true);
  });

  it("builds no scanner when the host holds no credential (nothing can be found)", () => {
    const before = built.scanners;
    const check = credentialChecker([]);
    check.prepare();
    const r = check({ PATH: "/usr/bin:/bin", SOMETHING: TOKEN });
    expect(r.ok).toBe(true);
    expect(r.detail).toContain("no credential");
    expect(built.scanners).toBe(before);
    // With one, the scanner is built once, by prepare() or the first check.
    const one = credentialChecker([{ name: "GITHUB_TOKEN", value: TOKEN }]);
    one.prepare();
    one({ PATH: "/usr/bin" });
    expect(built.scanners).toBe(before + 1);
  });
});
