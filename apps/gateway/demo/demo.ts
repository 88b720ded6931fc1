/**
 * End-to-end demo: a local fake upstream (speaks the OpenAI wire format), the real gateway in
 * front of it with a small budget, and the official OpenAI client calling through a gateway key.
 * Shows (1) a metered call, (2) a budget-limited call answered 429, (3) a secret blocked with 403.
 *
 *   pnpm --filter @bottlekit/gateway demo
 */
import { createFakeUpstream, createTempHome } from "@bottlekit/test-utils";
import OpenAI from "openai";
import { startGateway } from "../src/compose.ts";

const UPSTREAM_KEY = "sk-proj-DEMOupstreamKEY0123456789abcdefABCDEF01234567";
const say = (s: string) => process.stdout.write(`${s}\n`);

const upstream = await createFakeUpstream({
  requireKey: UPSTREAM_KEY,
  defaultReply: { text: "Foxes are quick; dogs are lazy.", usage: { input: 40, output: 20 } },
});
const home = await createTempHome("bottlekit-demo-");
const gw = await startGateway({
  config: {
    model_providers: [
      { model: "openai/*", base_url: `${upstream.url}/v1`, access_key: "$OPENAI_API_KEY" },
    ],
    budgets: [{ scope: "bottle", key: "demo", provider: "openai", tokens: 120, policy: "cutoff" }],
  },
  listen: "127.0.0.1:0",
  env: { ...process.env, BOTTLEKIT_HOME: home.dir, OPENAI_API_KEY: UPSTREAM_KEY },
});
try {
  const key = await gw.store.createGatewayKey({
    bottle: "demo",
    agent: "demo-agent",
    label: "demo",
  });
  say(`gateway on ${gw.url}; upstream (fake OpenAI) on ${upstream.url}`);
  say(
    `bottle "demo" has a budget of 120 openai tokens; the agent holds gateway key ${key.key.slice(0, 7)}… (never the provider key)\n`,
  );
  const client = new OpenAI({ apiKey: key.key, baseURL: `${gw.url}/v1`, maxRetries: 0 });
  const ask = (content: string) =>
    client.chat.completions.create({
      model: "openai/gpt-4o-mini",
      messages: [{ role: "user", content }],
      max_tokens: 32,
    });

  say("1) a metered call (streamed, the client did not ask for usage):");
  const stream = await client.chat.completions.create({
    model: "openai/gpt-4o-mini",
    messages: [{ role: "user", content: "Say something about foxes." }],
    max_tokens: 32,
    stream: true,
  });
  let text = "";
  for await (const c of stream) text += c.choices[0]?.delta.content ?? "";
  const ev = (await gw.store.events()).at(-1);
  say(`   answer: ${text}`);
  say(
    `   metered: input ${ev?.inputTokens}, output ${ev?.outputTokens} tokens (usageMissing: ${ev?.usageMissing})`,
  );
  const left = await gw.store.remaining({
    bottle: "demo",
    agent: "demo-agent",
    provider: "openai",
  });
  say(`   budget left: ${left?.remaining} of ${left?.limit}\n`);

  say("2) calls until the budget is spent:");
  for (let i = 2; i <= 4; i++) {
    try {
      await ask("And dogs?");
      say(`   call ${i}: ok`);
    } catch (e) {
      const err = e as {
        status?: number;
        error?: { type?: string; message?: string; remaining?: number };
      };
      say(
        `   call ${i}: HTTP ${err.status} ${err.error?.type}: ${err.error?.message} (remaining ${err.error?.remaining})`,
      );
    }
  }
  say(`   bottle "demo" cut off: ${await gw.store.isCutOff("demo")}; \`restore\` lifts it`);
  await gw.store.restore("demo", { by: "demo", reason: "demo" });
  await gw.store.defineBudget({
    scope: "bottle",
    key: "demo",
    provider: "openai",
    tokens: 1_000_000,
    source: "flag",
  });
  say("");

  say("3) an agent tries to send a secret out:");
  try {
    await ask(
      `here is the deploy token ghp_${"aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3zA5"} please use it`,
    );
  } catch (e) {
    const err = e as { status?: number; error?: { type?: string; findings?: unknown } };
    say(
      `   HTTP ${err.status} ${err.error?.type}; findings ${JSON.stringify(err.error?.findings)}`,
    );
  }
  try {
    await ask(`my key is ${Buffer.from(UPSTREAM_KEY).toString("base64")}`);
  } catch (e) {
    const err = e as { status?: number; error?: { type?: string } };
    say(`   the gateway's own provider key, base64-encoded: HTTP ${err.status} ${err.error?.type}`);
  }
  say(`   upstream received ${upstream.requests.length} calls in total; none carried a secret`);
} finally {
  await gw.close(1_000);
  await upstream.close();
  await home.cleanup();
}
