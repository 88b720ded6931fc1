import type { TempHome } from "@bottlekit/test-utils";
import { afterEach, describe, expect, it } from "vitest";
import { bottle, homeWith, md } from "../../test/helpers.ts";

let home: TempHome | undefined;
afterEach(async () => {
  await home?.cleanup();
  home = undefined;
});

const files = {
  "bottles/base.md": md(
    'env:\n  API: https://x.example.com\n  TOKEN: "${GH_TOKEN}"\n  ASK: "?Key please"',
  ),
  "bottles/dev.md": md(
    "extends: base\ncutoff: freeze\negress:\n  routes:\n    - host: api.github.com",
  ),
  "agents/coder.md": md("bottle: dev\nmodel: anthropic/claude-sonnet-4", "You write code.\n"),
};

describe("bottle show", () => {
  it("prints the effective config with provenance, never secret values", async () => {
    home = await homeWith(files);
    const secretEnv = { GH_TOKEN: "ghp_supersecretvalue123456" };
    const r = await bottle(["show", "coder", "--home", home.dir, "--cwd", home.dir], secretEnv);
    expect(r.code).toBe(0);
    expect(r.out).toContain("bottle dev: base -> dev");
    expect(r.out).toMatch(/env\.TOKEN = <from \$GH_TOKEN> {2}<- .*bottles\/base\.md:4:3/);
    expect(r.out).toContain("env.ASK = <asked at launch>");
    expect(r.out).toMatch(/cutoff = freeze {2}<- .*bottles\/dev\.md:3:1/);
    expect(r.out + r.err).not.toContain("ghp_supersecretvalue123456");
  });

  it("--json has config, provenance and the prompt", async () => {
    home = await homeWith(files);
    const r = await bottle(["show", "coder", "--json", "--home", home.dir, "--cwd", home.dir], {
      GH_TOKEN: "ghp_supersecretvalue123456",
    });
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.out) as {
      config: {
        env: Record<string, string>;
        model: string;
        egress: { routes: { host: string }[] };
      };
      provenance: Record<string, { file: string; line: number; kind: string }>;
      prompt: string;
      chain: string[];
    };
    expect(doc.config.env).toEqual({
      API: "https://x.example.com",
      TOKEN: "<from $GH_TOKEN>",
      ASK: "<asked at launch>",
    });
    expect(doc.config.model).toBe("anthropic/claude-sonnet-4");
    expect(doc.provenance["model"]).toMatchObject({ kind: "agent", line: 3 });
    expect(doc.provenance['egress.routes["api.github.com"]']?.file).toContain("bottles/dev.md");
    expect(doc.prompt).toBe("You write code.\n");
    expect(doc.chain).toEqual(["base", "dev"]);
    expect(r.out).not.toContain("ghp_supersecretvalue123456");
  });

  it("exits 2 for an unknown or broken agent; --json still prints one document", async () => {
    home = await homeWith({ ...files, "agents/broken.md": md("bottle: [oops") });
    const unknown = await bottle(["show", "codr", "--home", home.dir, "--cwd", home.dir]);
    expect(unknown.code).toBe(2);
    expect(unknown.err).toContain("no agent `codr`");
    expect(unknown.err).toContain("did you mean `coder`?");
    expect(unknown.out).toBe("");
    const broken = await bottle([
      "show",
      "broken",
      "--json",
      "--home",
      home.dir,
      "--cwd",
      home.dir,
    ]);
    expect(broken.code).toBe(2);
    const doc = JSON.parse(broken.out) as { error: { code: string; issues: { line: number }[] } };
    expect(doc.error.code).toBe("E_YAML");
    expect(doc.error.issues[0]?.line).toBe(2);
  });
});
