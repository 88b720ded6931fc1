import { captureIo, createTempHome, type TempHome } from "@bottlekit/test-utils";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type CliIo, run } from "../cli.ts";

const OPENAI_KEY = "sk-proj-CHECKtestKEY0123456789abcdefABCDEF0123456789";

let home: TempHome;
let env: NodeJS.ProcessEnv;
beforeEach(async () => {
  home = await createTempHome("bottlekit-check-");
  env = { BOTTLEKIT_HOME: home.dir, OPENAI_API_KEY: OPENAI_KEY, PATH: process.env["PATH"] };
});
afterEach(() => home.cleanup());

function capture() {
  const c = captureIo(env);
  const io: CliIo = { ...c.io, interactive: false };
  return { io, out: c.out, err: c.err };
}

describe("check: routes that leave a provider unreachable", () => {
  it("warns for each configured provider no route covers, naming the host and the fix", async () => {
    const file = await home.write(
      "gw.yml",
      [
        "model_providers:",
        "  - model: openai/*",
        "    access_key: $OPENAI_API_KEY",
        "  - model: anthropic/*",
        "routes:",
        "  - host: api.anthropic.com",
        "",
      ].join("\n"),
    );
    const c = capture();
    expect(await run(["check", "--config", file, "--json"], c.io)).toBe(0);
    const doc = JSON.parse(c.out()) as { warnings: string[] };
    const uncovered = doc.warnings.filter((w) => w.startsWith("routes: no route covers"));
    expect(uncovered).toHaveLength(1);
    expect(uncovered[0]).toContain("openai (api.openai.com)");
    expect(uncovered[0]).toContain("- host: api.openai.com");
  });

  it("warns for every provider with `routes: []`, and not at all without `routes`", async () => {
    const empty = await home.write(
      "empty.yml",
      "model_providers:\n  - model: openai/*\n  - model: anthropic/*\nroutes: []\n",
    );
    const c = capture();
    expect(await run(["check", "--config", empty], c.io)).toBe(0);
    expect(c.err().match(/no route covers/g)).toHaveLength(2);
    const none = await home.write("none.yml", "model_providers:\n  - model: openai/*\n");
    const d = capture();
    expect(await run(["check", "--config", none], d.io)).toBe(0);
    expect(d.err()).not.toContain("no route covers");
  });
});

describe("documented configs", () => {
  const repo = new URL("../../../../", import.meta.url);

  async function checkFile(file: string) {
    const c = capture();
    env["ANTHROPIC_API_KEY"] = "sk-ant-api03-CHECKtestKEY0123456789abcdefABCDEF0123456789abcdef";
    const code = await run(["check", "--config", file, "--json"], c.io);
    return { code, doc: JSON.parse(c.out()) as { valid: boolean; warnings: string[] } };
  }

  it("examples/gateway.yml is valid, with no warning", async () => {
    const { code, doc } = await checkFile(new URL("examples/gateway.yml", repo).pathname);
    expect(code).toBe(0);
    expect(doc.valid).toBe(true);
    expect(doc.warnings).toEqual([]);
  });

  it("the gateway README's config block is valid, with no route warning", async () => {
    const { readFile } = await import("node:fs/promises");
    const readme = await readFile(new URL("apps/gateway/README.md", repo), "utf8");
    const block = /## Config\s+```yaml\n([\s\S]*?)```/.exec(readme)?.[1];
    expect(block).toBeDefined();
    const file = await home.write("readme.yml", block as string);
    const { code, doc } = await checkFile(file);
    expect(code).toBe(0);
    expect(doc.warnings.filter((w) => w.includes("no route covers"))).toEqual([]);
  });
});

describe("check: credentials too short to protect", () => {
  it("is an error from 8 characters on (up refuses them), never echoing the value", async () => {
    env["OPENAI_API_KEY"] = "sk-abc123xyz";
    const file = await home.write("gw.yml", "model_providers:\n  - model: openai/*\n");
    const c = capture();
    expect(await run(["check", "--config", file], c.io)).toBe(2);
    expect(c.err()).toContain("OPENAI_API_KEY has 11 letters and digits");
    expect(c.err()).not.toContain("sk-abc123xyz");
  });

  it("up refuses such a key with one line and a hint, not a stack", async () => {
    env["OPENAI_API_KEY"] = "sk-abc123xyz";
    const c = capture();
    expect(await run(["up", "--listen", "127.0.0.1:0"], c.io)).toBe(2);
    expect(c.err()).toContain("fewer than 12 letters and digits");
    expect(c.err()).toContain("hint:");
    expect(c.err()).not.toMatch(/unexpected error|\n\s+at /);
    expect(c.err()).not.toContain("sk-abc123xyz");
  });
});

describe("up: ordinary mistakes are one line with a hint", () => {
  it("a port already in use", async () => {
    const { createServer } = await import("node:net");
    const busy = createServer();
    await new Promise<void>((r) => busy.listen(0, "127.0.0.1", () => r()));
    const port = (busy.address() as { port: number }).port;
    try {
      const c = capture();
      expect(await run(["up", "--listen", `127.0.0.1:${port}`], c.io)).toBe(2);
      expect(c.err()).toContain(
        `cannot listen on 127.0.0.1:${port}: the address is already in use`,
      );
      expect(c.err()).toContain("hint: another gateway may be running");
      expect(c.err()).not.toMatch(/unexpected error|\n\s+at /);
    } finally {
      busy.close();
    }
  });

  it("--store in a directory that does not exist is refused, and nothing is created", async () => {
    const { existsSync } = await import("node:fs");
    const missing = `${home.dir}/no/such/dir`;
    const c = capture();
    expect(
      await run(["up", "--listen", "127.0.0.1:0", "--store", `sqlite:${missing}/x.db`], c.io),
    ).toBe(2);
    expect(c.err()).toContain(`the store's directory ${missing} does not exist`);
    expect(existsSync(`${home.dir}/no`)).toBe(false);
  });
});

describe("check: config errors in our words, at file:line:col", () => {
  it("names the position, what the value must be, what it was, and the closest option", async () => {
    const file = await home.write(
      "bad.yml",
      [
        "model_providers:",
        "  - model: openai/gpt-4o",
        "budgets:",
        "  - scope: bottel",
        "    provider: openai",
        "    tokens: -5",
        "dlp:",
        "  outbound:",
        "    on_match: explode",
        "listen: 8080",
        "routez: []",
        "",
      ].join("\n"),
    );
    const c = capture();
    expect(await run(["check", "--config", file], c.io)).toBe(2);
    const err = c.err();
    expect(err).toContain(
      `${file}:4:12: budgets[0].scope: must be one of agent, bottle, global or ceiling (got "bottel"); did you mean "bottle"?`,
    );
    expect(err).toContain(`${file}:6:13: budgets[0].tokens: must be greater than 0 (got -5)`);
    expect(err).toContain(
      `${file}:9:15: dlp.outbound.on_match: must be one of block or redact (got "explode")`,
    );
    expect(err).toContain(`${file}:10:9: listen: must be a string (got 8080)`);
    expect(err).toContain(`${file}:11:1: routez: unknown key; did you mean "routes"?`);
    expect(err).not.toMatch(/Invalid (input|option)|expected one of/);
  });

  it("warns when a canary variable is not set", async () => {
    const file = await home.write(
      "canary.yml",
      "model_providers:\n  - model: openai/*\ndlp:\n  outbound: { canary_env: [MY_CANARY] }\n",
    );
    const c = capture();
    expect(await run(["check", "--config", file], c.io)).toBe(0);
    expect(c.err()).toContain("dlp.outbound.canary_env: MY_CANARY is not set");
    env["MY_CANARY"] = "canary-0123456789abcdefghijklmnop";
    const d = capture();
    expect(await run(["check", "--config", file], d.io)).toBe(0);
    expect(d.err()).not.toContain("MY_CANARY is not set");
  });
});
