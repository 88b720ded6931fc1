import {
  captureIo,
  createFakeUpstream,
  createTempHome,
  type TempHome,
} from "@bottlekit/test-utils";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type CliIo, run } from "../cli.ts";

const OPENAI_KEY = "sk-proj-CLItestKEY0123456789abcdefABCDEF0123456789";

function capture(env: NodeJS.ProcessEnv, extra: Partial<CliIo> = {}) {
  const c = captureIo(env);
  const io: CliIo = { ...c.io, interactive: false, ...extra };
  return { io, out: c.out, err: c.err };
}

let home: TempHome;
let env: NodeJS.ProcessEnv;
beforeEach(async () => {
  home = await createTempHome("bottlekit-cli-");
  env = { BOTTLEKIT_HOME: home.dir, OPENAI_API_KEY: OPENAI_KEY, PATH: process.env["PATH"] };
});
afterEach(() => home.cleanup());

describe("check", () => {
  it("prints the routing table of a valid config (names of env vars, never values)", async () => {
    const file = await home.write(
      "gw.yml",
      "model_providers:\n  - model: openai/gpt-4o-mini\n    access_key: $OPENAI_API_KEY\n    default: true\n  - model: anthropic/*\nmodel_aliases:\n  fast:\n    target: openai/gpt-4o-mini\n",
    );
    const c = capture(env);
    expect(await run(["check", "--config", file, "--json"], c.io)).toBe(0);
    const doc = JSON.parse(c.out()) as {
      valid: boolean;
      routes: { model: string; credential: string }[];
    };
    expect(doc.valid).toBe(true);
    expect(doc.routes).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ model: "openai/gpt-4o-mini", credential: "env:OPENAI_API_KEY" }),
        expect.objectContaining({ model: "anthropic/*", credential: "missing:ANTHROPIC_API_KEY" }),
      ]),
    );
    expect(c.out()).not.toContain(OPENAI_KEY);
    const human = capture(env);
    expect(await run(["check", "--config", file], human.io)).toBe(0);
    expect(human.out()).toContain("alias fast -> openai/gpt-4o-mini");
    expect(human.out()).toContain("dlp outbound: block on token_patterns, known_secrets");
  });

  it("exits 2 with key-path errors and a did-you-mean for an invalid config", async () => {
    const file = await home.write(
      "bad.yml",
      "model_providers:\n  - model: openai/gpt-4o\nbudget:\n  - scope: bottle\ndlp:\n  outbound:\n    on_match: explode\n",
    );
    const c = capture(env);
    expect(await run(["check", "--config", file], c.io)).toBe(2);
    expect(c.err()).toContain("budget: unknown key");
    expect(c.err()).toContain('did you mean "budgets"');
    expect(c.err()).toContain("dlp.outbound.on_match");
    expect(c.err()).toContain(file);
  });

  it("exits 2 on YAML syntax errors with line and column", async () => {
    const file = await home.write("broken.yml", "model_providers:\n  - model: [unclosed\n");
    const c = capture(env);
    expect(await run(["check", "--config", file], c.io)).toBe(2);
    expect(c.err()).toMatch(/broken\.yml:\d+:\d+/);
  });
});

describe("models", () => {
  it("zero-config: lists catalog models of every provider whose key env var is set", async () => {
    const c = capture(env);
    expect(await run(["models", "--json"], c.io)).toBe(0);
    const { models } = JSON.parse(c.out()) as { models: { id: string; provider: string }[] };
    expect(models.length).toBeGreaterThan(0);
    expect(new Set(models.map((m) => m.provider))).toEqual(new Set(["openai"]));
    const none = capture({ BOTTLEKIT_HOME: home.dir });
    expect(await run(["models"], none.io)).toBe(0);
    expect(none.err()).toContain("nothing is routable");
  });
});

describe("keys", () => {
  it("create prints the key once; list never shows it; revoke marks it", async () => {
    const c = capture(env);
    expect(await run(["keys", "create", "--bottle", "b1", "--agent", "a1", "--json"], c.io)).toBe(
      0,
    );
    const created = JSON.parse(c.out()) as { id: string; key: string };
    expect(created.key).toMatch(/^bk_/);
    const l = capture(env);
    expect(await run(["keys", "list", "--json"], l.io)).toBe(0);
    expect(l.out()).not.toContain(created.key);
    expect(JSON.parse(l.out()).keys[0]).toMatchObject({
      id: created.id,
      bottle: "b1",
      agent: "a1",
      revokedAt: null,
    });
    const r = capture(env);
    expect(await run(["keys", "revoke", created.id], r.io)).toBe(0);
    const again = capture(env);
    expect(await run(["keys", "revoke", created.id], again.io)).toBe(1);
    const l2 = capture(env);
    await run(["keys", "list"], l2.io);
    expect(l2.out()).toContain("revoked");
  });

  it("create without --bottle is a usage error", async () => {
    const c = capture(env);
    expect(await run(["keys", "create", "--agent", "a"], c.io)).toBe(2);
  });
});

describe("up", () => {
  it("serves until the stop signal, then drains and exits 0", async () => {
    const upstream = await createFakeUpstream({ requireKey: OPENAI_KEY });
    let stop!: (s: string) => void;
    const stopSignal = new Promise<string>((r) => {
      stop = r;
    });
    const file = await home.write(
      "gw.yml",
      `model_providers:\n  - model: openai/*\n    base_url: ${upstream.url}/v1\n    access_key: $OPENAI_API_KEY\n`,
    );
    const c = capture(env, { stopSignal });
    const exit = run(["up", "--config", file, "--listen", "127.0.0.1:0", "--json-logs"], c.io);
    await expect
      .poll(() => c.err().includes('"event":"listening"'), { timeout: 60_000 })
      .toBe(true);
    const url = (
      JSON.parse(
        c
          .err()
          .split("\n")
          .find((l) => l.includes('"listening"')) as string,
      ) as { url: string }
    ).url;
    const res = await fetch(`${url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        model: "openai/gpt-4o-mini",
        messages: [{ role: "user", content: "hi" }],
      }),
    });
    expect(res.status).toBe(200);
    stop("SIGTERM");
    expect(await exit).toBe(0);
    expect(c.err()).toContain('"event":"stopped"');
    for (const line of c.err().trim().split("\n")) expect(() => JSON.parse(line)).not.toThrow();
    expect(c.err()).not.toContain(OPENAI_KEY);
    await upstream.close();
  });

  it("refuses a non-loopback address when no gateway key exists (exit 3)", async () => {
    const c = capture(env);
    expect(await run(["up", "--listen", "0.0.0.0:0"], c.io)).toBe(3);
    expect(c.err()).toContain("non-loopback");
  });

  it("exits 2 for an invalid config", async () => {
    const file = await home.write("bad.yml", "listen: nowhere\n");
    const c = capture(env);
    expect(await run(["up", "--config", file], c.io)).toBe(2);
    expect(c.err()).toContain("listen");
  });

  it("unattended with an unacknowledged local agent: exit 3 with a machine-readable reason", async () => {
    const file = await home.write("la.yml", "model_providers:\n  - model: claude-cli/sonnet\n");
    const c = capture({ ...env, CI: "1" });
    expect(
      await run(["up", "--config", file, "--listen", "127.0.0.1:0", "--json-logs"], c.io),
    ).toBe(3);
    const rec = JSON.parse(c.err().trim().split("\n").at(-1) as string) as {
      event: string;
      refusal?: { code: string };
    };
    expect(rec.event).toBe("local_agent.refused");
    expect(JSON.stringify(rec)).toContain("E_LOCAL_AGENT_UNACKNOWLEDGED");
  });
});
