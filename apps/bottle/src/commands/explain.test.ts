import type { TempHome } from "@bottlekit/test-utils";
import { afterEach, describe, expect, it } from "vitest";
import { bottle, homeWith, md } from "../../test/helpers.ts";

let home: TempHome | undefined;
afterEach(async () => {
  await home?.cleanup();
  home = undefined;
});

describe("bottle explain", () => {
  it("shows the chain, provenance and egress widening", async () => {
    home = await homeWith({
      "bottles/base.md": md(
        "egress:\n  routes:\n    - host: api.github.com\n      matches: [{ methods: [GET] }]",
      ),
      "bottles/dev.md": md(
        "extends: base\negress:\n  routes:\n    - host: api.github.com\n      auth: { scheme: Bearer, token_ref: GH_TOKEN }\n      matches: [{ methods: [GET, POST] }]",
      ),
      "agents/coder.md": md("bottle: dev"),
    });
    const r = await bottle(["explain", "coder", "--home", home.dir, "--cwd", home.dir]);
    expect(r.code).toBe(0);
    expect(r.out).toContain("merge order: base -> dev -> agent coder");
    expect(r.out).toContain("dev: broader-methods api.github.com: adds POST");
    expect(r.out).toContain(
      "dev: credentials-attached api.github.com: attaches $GH_TOKEN (Bearer)",
    );
    const json = await bottle([
      "explain",
      "coder",
      "--json",
      "--home",
      home.dir,
      "--cwd",
      home.dir,
    ]);
    const doc = JSON.parse(json.out) as { egress: { kind: string }[]; order: string[] };
    expect(doc.order).toEqual(["base", "dev"]);
    expect(doc.egress.map((e) => e.kind)).toEqual([
      "new-host",
      "broader-methods",
      "credentials-attached",
    ]);
  });

  it("exits 2 with the chain when extends is broken", async () => {
    home = await homeWith({
      "bottles/a.md": md("extends: b"),
      "bottles/b.md": md("extends: a"),
      "agents/x.md": md("bottle: a"),
    });
    const r = await bottle(["explain", "x", "--home", home.dir, "--cwd", home.dir]);
    expect(r.code).toBe(2);
    expect(r.err).toContain("extends cycle: a -> b -> a");
  });
});
