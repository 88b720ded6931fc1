import {
  createFakeUpstream,
  createTempHome,
  type FakeUpstream,
  type TempHome,
} from "@bottlekit/test-utils";
import OpenAI from "openai";
import { afterEach, describe, expect, it } from "vitest";
import { type RunningGateway, startGateway } from "../src/compose.ts";
import { ledgerWindow } from "../src/manifests.ts";
import { OPENAI_KEY } from "./helpers.ts";

let up: FakeUpstream | undefined;
let home: TempHome | undefined;
let gw: RunningGateway | undefined;
afterEach(async () => {
  await gw?.close(100);
  await up?.close();
  await home?.cleanup();
  gw = undefined;
  up = undefined;
  home = undefined;
});

const md = (front: string) => `---\n${front}\n---\n`;

async function start(budgets: unknown[] = [], extra: Record<string, unknown> = {}) {
  up ??= await createFakeUpstream({ requireKey: OPENAI_KEY });
  const env = {
    BOTTLEKIT_HOME: (home as TempHome).dir,
    OPENAI_API_KEY: OPENAI_KEY,
    PATH: process.env["PATH"],
  };
  gw = await startGateway({
    config: {
      model_providers: [
        { model: "openai/*", base_url: `${up.url}/v1`, access_key: "$OPENAI_API_KEY" },
      ],
      budgets,
      ...extra,
    },
    listen: "127.0.0.1:0",
    store: `sqlite:${(home as TempHome).dir}/bottlekit.db`,
    env,
    identityCacheMs: 0,
  });
  return gw;
}

const chat = {
  model: "openai/gpt-4o-mini",
  messages: [{ role: "user" as const, content: "hi" }],
  max_tokens: 5,
};

describe("the gateway honours bottle manifests", () => {
  it("a manifest's budgets apply (source manifest), and a parent bottle's budget governs its children", async () => {
    home = await createTempHome("bk-gw-manifest-");
    await home.write("bottles/team.md", md("budget:\n  openai: { tokens: 60, window: 24h }"));
    await home.write("bottles/dev.md", md("extends: team"));
    await home.write("bottles/solo.md", md("cutoff: kill"));
    await home.write("agents/coder.md", md("bottle: dev\nbudget: { openai: { tokens: 1000 } }"));
    const g = await start();
    const manifestBudgets = await g.store.listBudgets({ source: "manifest" });
    expect(
      manifestBudgets.map((b) => [b.scope, b.key, b.provider, b.tokens, b.window]).sort(),
    ).toEqual([
      ["agent", "coder", "openai", 1000, "none"],
      ["bottle", "team", "openai", 60, "1d"],
    ]);

    // (an agent budget would be the nearest scope and govern instead: use an agent without one)
    const devKey = await g.store.createGatewayKey({ bottle: "dev", agent: "reviewer" });
    const soloKey = await g.store.createGatewayKey({ bottle: "solo", agent: "x" });
    const client = (key: string) =>
      new OpenAI({ apiKey: key, baseURL: `${g.url}/v1`, maxRetries: 0 });
    for (let i = 0; i < 2; i++) {
      up?.enqueue({ text: "ok", usage: { input: 20, output: 10 } });
      await client(devKey.key).chat.completions.create(chat);
    }
    // team's 60 tokens are spent by dev, its child: dev is refused on the parent's budget ...
    const refused = await client(devKey.key)
      .chat.completions.create(chat)
      .catch((e: unknown) => e);
    expect(refused).toMatchObject({ status: 429, type: "budget_exceeded" });
    // (the crossing on team's budget cut dev off: the refusal says so)
    expect((refused as { error: { reason: string } }).error.reason).toBe("cut-off");
    // ... while solo, which extends nothing, is not.
    up?.enqueue({ text: "ok", usage: { input: 20, output: 10 } });
    await expect(client(soloKey.key).chat.completions.create(chat)).resolves.toBeDefined();
  });

  it("config budgets are their own source, replaced at each start (a budget removed from the file is gone)", async () => {
    home = await createTempHome("bk-gw-config-");
    const g1 = await start([
      { scope: "bottle", key: "a", provider: "openai", tokens: 10 },
      { scope: "global", provider: "openai", tokens: 99 },
    ]);
    expect((await g1.store.listBudgets({ source: "config" })).length).toBe(2);
    await g1.close(100);
    const g2 = await start([{ scope: "global", provider: "openai", tokens: 99 }]);
    const left = await g2.store.listBudgets({ source: "config" });
    expect(left.map((b) => [b.scope, b.tokens])).toEqual([["global", 99]]);
    expect(await g2.store.listBudgets({ source: "flag" })).toEqual([]);
    await g2.close(100);
    // A zero-config start (an embedded controller) says nothing about config budgets: kept.
    const env = {
      BOTTLEKIT_HOME: (home as TempHome).dir,
      OPENAI_API_KEY: OPENAI_KEY,
      PATH: process.env["PATH"],
    };
    gw = await startGateway({
      listen: "127.0.0.1:0",
      store: `sqlite:${(home as TempHome).dir}/bottlekit.db`,
      env,
    });
    expect((await gw.store.listBudgets({ source: "config" })).map((b) => b.tokens)).toEqual([99]);
  });
});

describe("a bottle manifest's DLP settings", () => {
  // A GitHub-token-shaped value (assembled so no scanner flags this file).
  const token = `ghp_${"R8xTq2LmZ4vN7pK1wY9sB3dF6hJ0cE5gA2uQ"}`;
  const leaky = {
    ...chat,
    messages: [{ role: "user" as const, content: `deploy with ${token} please` }],
  };

  it("tighten the gateway's own for that bottle's calls only: redact in the config, block in the manifest", async () => {
    home = await createTempHome("bk-gw-manifest-dlp-");
    up = await createFakeUpstream({ requireKey: OPENAI_KEY });
    await home.write(
      "bottles/strict.md",
      md(
        [
          "egress:",
          "  routes:",
          "    - host: 127.0.0.1",
          `      port: ${new URL(up.url).port}`,
          "      dlp: { outbound_on_match: block, outbound_detectors: [token_patterns] }",
        ].join("\n"),
      ),
    );
    await home.write("bottles/strict-child.md", md("extends: strict"));
    await home.write("bottles/plain.md", md("cutoff: kill"));
    const g = await start([], { dlp: { outbound: { on_match: "redact" } } });
    const client = async (bottle: string) => {
      const key = await g.store.createGatewayKey({ bottle, agent: "a" });
      return new OpenAI({ apiKey: key.key, baseURL: `${g.url}/v1`, maxRetries: 0 });
    };
    // plain: the config's redact applies, the upstream sees no token
    up?.enqueue({ text: "ok", usage: { input: 5, output: 1 } });
    await (await client("plain")).chat.completions.create(leaky);
    expect(up?.requests).toHaveLength(1);
    expect(JSON.stringify(up?.requests[0]?.body)).not.toContain(token);
    expect(JSON.stringify(up?.requests[0]?.body)).toContain("deploy with");
    // strict, and a bottle that inherits its route: blocked, nothing forwarded
    for (const bottle of ["strict", "strict-child"]) {
      const refused = await (await client(bottle)).chat.completions
        .create(leaky)
        .catch((e: unknown) => e);
      expect(refused).toMatchObject({ status: 403 });
      expect(String((refused as Error).message)).not.toContain(token);
    }
    expect(up?.requests).toHaveLength(1);
  });

  it("cannot loosen the gateway's: a manifest route that turns detectors off still gets the config's block", async () => {
    home = await createTempHome("bk-gw-manifest-dlp-loose-");
    up = await createFakeUpstream({ requireKey: OPENAI_KEY });
    await home.write(
      "bottles/loose.md",
      md(
        [
          "egress:",
          "  routes:",
          "    - host: 127.0.0.1",
          `      port: ${new URL(up.url).port}`,
          "      dlp: { outbound_on_match: redact, outbound_detectors: false }",
        ].join("\n"),
      ),
    );
    const g = await start();
    const key = await g.store.createGatewayKey({ bottle: "loose", agent: "a" });
    const c = new OpenAI({ apiKey: key.key, baseURL: `${g.url}/v1`, maxRetries: 0 });
    const refused = await c.chat.completions.create(leaky).catch((e: unknown) => e);
    expect(refused).toMatchObject({ status: 403 });
    expect(up?.requests).toHaveLength(0);
  });
});

describe("ledgerWindow", () => {
  it("rounds manifest windows up to whole days (fail closed)", () => {
    expect(ledgerWindow("24h")).toEqual({ window: "1d", rounded: false });
    expect(ledgerWindow("2w")).toEqual({ window: "14d", rounded: false });
    expect(ledgerWindow("30m")).toEqual({ window: "1d", rounded: true });
    expect(ledgerWindow("36h")).toEqual({ window: "2d", rounded: true });
    expect(ledgerWindow(undefined)).toEqual({ window: "none", rounded: false });
  });
});
