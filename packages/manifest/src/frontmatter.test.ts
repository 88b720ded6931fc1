import { describe, expect, it } from "vitest";
import { parseManifestText, pathToString } from "./frontmatter.ts";

describe("parseManifestText", () => {
  it("splits frontmatter and body", () => {
    const p = parseManifestText("f.md", "---\nbottle: base\n---\n\nYou are helpful.\n");
    expect(p.issues).toEqual([]);
    expect(p.data).toEqual({ bottle: "base" });
    expect(p.body).toBe("You are helpful.\n");
  });

  it("accepts a BOM, CRLF line ends and a `...` terminator", () => {
    const p = parseManifestText("f.md", "\uFEFF---\r\nenv:\r\n  A: b\r\n...\r\nbody");
    expect(p.issues).toEqual([]);
    expect(p.data).toEqual({ env: { A: "b" } });
    expect(p.body).toBe("body");
  });

  it("treats empty frontmatter as an empty mapping", () => {
    expect(parseManifestText("f.md", "---\n---\n").data).toEqual({});
  });

  it("reports a missing or unclosed block at 1:1", () => {
    const none = parseManifestText("f.md", "bottle: base\n");
    expect(none.issues[0]).toMatchObject({ code: "E_FRONTMATTER", line: 1, col: 1 });
    const open = parseManifestText("f.md", "---\nbottle: base\n");
    expect(open.issues[0]?.message).toContain("never closed");
  });

  it("reports YAML errors at their file line and column", () => {
    const p = parseManifestText("f.md", "---\nenv:\n  A: b\n  bad: [x\n---\n");
    expect(p.data).toBeUndefined();
    expect(p.issues[0]?.code).toBe("E_YAML");
    expect(p.issues[0]?.line).toBeGreaterThanOrEqual(4);
  });

  it("reports duplicate keys", () => {
    const p = parseManifestText("f.md", "---\nbottle: a\nbottle: b\n---\n");
    expect(p.issues[0]).toMatchObject({ code: "E_YAML", line: 3, col: 1 });
  });

  it("rejects a frontmatter that is a list or a scalar", () => {
    expect(parseManifestText("f.md", "---\n- a\n---\n").issues[0]?.message).toContain("a list");
    expect(parseManifestText("f.md", "---\n42\n---\n").issues[0]?.message).toContain("number");
  });

  it("locates keys and values by path", () => {
    const p = parseManifestText(
      "f.md",
      "---\negress:\n  routes:\n    - host: a.example.com\n      auth: { scheme: Bearer, token_ref: T }\n---\n",
    );
    expect(p.locate(["egress", "routes", 0, "host"])).toEqual({ line: 4, col: 13 });
    expect(p.locate(["egress", "routes", 0, "host"], "key")).toEqual({ line: 4, col: 7 });
    expect(p.locate(["egress", "routes", 0, "auth", "token_ref"])).toEqual({ line: 5, col: 42 });
    // A path that does not exist points at the deepest part that does.
    expect(p.locate(["egress", "routes", 3])).toEqual(p.locate(["egress", "routes"]));
  });

  it("rejects complex (collection) keys", () => {
    const p = parseManifestText("f.md", "---\nenv: {}\n? [a, b]\n: x\n---\n");
    expect(p.issues[0]).toMatchObject({ code: "E_YAML", line: 3, col: 3 });
  });

  it("refuses alias bombs", () => {
    const bomb = ["---", "a: &a [x, x, x, x, x, x, x, x, x]"];
    for (let i = 0; i < 8; i++) {
      bomb.push(
        `${String.fromCharCode(98 + i)}: &${String.fromCharCode(98 + i)} [${Array(9)
          .fill(`*${String.fromCharCode(97 + i)}`)
          .join(", ")}]`,
      );
    }
    bomb.push("---");
    const p = parseManifestText("f.md", bomb.join("\n"));
    expect(p.data).toBeUndefined();
    expect(p.issues[0]?.code).toBe("E_YAML");
  });
});

describe("pathToString", () => {
  it("renders identifiers, indexes and quoted keys", () => {
    expect(pathToString(["egress", "routes", 0, "host"])).toBe("egress.routes[0].host");
    expect(pathToString(["budget", "x.ai", "tokens"])).toBe('budget["x.ai"].tokens');
    expect(pathToString(["git-gate"])).toBe("git-gate");
  });
});
