import { captureIo, createTempHome, type TempHome } from "@bottlekit/test-utils";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type CliIo, run } from "../cli.ts";

const OPENAI_KEY = "sk-proj-KEYStestKEY0123456789abcdefABCDEF0123456789";

let home: TempHome;
let env: NodeJS.ProcessEnv;
beforeEach(async () => {
  home = await createTempHome("bottlekit-keys-");
  env = { BOTTLEKIT_HOME: home.dir, OPENAI_API_KEY: OPENAI_KEY, PATH: process.env["PATH"] };
});
afterEach(() => home.cleanup());

function capture() {
  const c = captureIo(env);
  const io: CliIo = { ...c.io, interactive: false };
  return { io, out: c.out, err: c.err };
}

describe("keys create", () => {
  it("refuses a bottle or agent name a manifest could not have", async () => {
    for (const args of [
      ["--bottle", "My Bottle", "--agent", "a"],
      ["--bottle", "b", "--agent", "../x"],
    ]) {
      const c = capture();
      expect(await run(["keys", "create", ...args], c.io)).toBe(2);
      expect(c.err()).toMatch(/is not a valid name\nhint: names are lower-case/);
      expect(c.out()).toBe("");
    }
    const l = capture();
    await run(["keys", "list", "--json"], l.io);
    expect((JSON.parse(l.out()) as { keys: unknown[] }).keys).toEqual([]);
  });

  it("warns when the bottle has no manifest, with the closest names", async () => {
    await home.write("bottles/web-dev.md", "---\ncutoff: kill\n---\n");
    const c = capture();
    expect(await run(["keys", "create", "--bottle", "web-dve", "--agent", "a"], c.io)).toBe(0);
    expect(c.err()).toContain('warning: no bottle manifest named "web-dve"');
    expect(c.err()).toContain('did you mean "web-dev"?');
    const ok = capture();
    expect(await run(["keys", "create", "--bottle", "web-dev", "--agent", "a"], ok.io)).toBe(0);
    expect(ok.err()).not.toContain("warning");
  });
});

describe("keys revoke explains itself", () => {
  it("an unknown id gets the closest ids; a revoked one says when; a plaintext key is never echoed", async () => {
    const c = capture();
    await run(["keys", "create", "--bottle", "b", "--agent", "a", "--json"], c.io);
    const { id, key } = JSON.parse(c.out()) as { id: string; key: string };
    const typo = `${id.slice(0, -1)}${id.endsWith("x") ? "y" : "x"}`;
    const u = capture();
    expect(await run(["keys", "revoke", typo], u.io)).toBe(1);
    expect(u.err()).toContain(`no key has the id ${typo}; did you mean "${id}"?`);
    const p = capture();
    expect(await run(["keys", "revoke", key], p.io)).toBe(1);
    expect(p.err()).toContain("that is a key, not a key id");
    expect(p.err()).not.toContain(key);
    expect(await run(["keys", "revoke", id], capture().io)).toBe(0);
    const again = capture();
    expect(await run(["keys", "revoke", id], again.io)).toBe(1);
    expect(again.err()).toMatch(new RegExp(`key ${id} was already revoked on \\d{4}-`));
  });
});

describe("models", () => {
  it("hides catalog name patterns, shows aliases, filters by provider", async () => {
    const file = await home.write(
      "gw.yml",
      "model_providers:\n  - model: openai/*\n    access_key: $OPENAI_API_KEY\nmodel_aliases:\n  fast: { target: openai/gpt-4o-mini }\n",
    );
    const c = capture();
    expect(await run(["models", "--config", file, "--json"], c.io)).toBe(0);
    const doc = JSON.parse(c.out()) as {
      models: { id: string }[];
      aliases: { alias: string; target: string; provider: string }[];
    };
    expect(doc.models.length).toBeGreaterThan(5);
    for (const m of doc.models) expect(m.id).toMatch(/[A-Za-z0-9]$/);
    expect(doc.aliases).toEqual([
      { alias: "fast", target: "openai/gpt-4o-mini", provider: "openai" },
    ]);
    const human = capture();
    expect(await run(["models", "--config", file, "--provider", "openai"], human.io)).toBe(0);
    expect(human.out()).toContain("fast -> openai/gpt-4o-mini (alias)");
    const bad = capture();
    expect(await run(["models", "--config", file, "--provider", "opneai"], bad.io)).toBe(2);
    expect(bad.err()).toContain('did you mean "openai"?');
  });
});
