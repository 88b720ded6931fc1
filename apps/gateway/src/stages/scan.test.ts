import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type StageHarness, startStageHarness } from "../../test/stage-harness.ts";
import { checkCredential } from "./credential.ts";
import { identify } from "./identify.ts";
import { parse } from "./parse.ts";
import { route } from "./route.ts";
import { scanOutbound } from "./scan.ts";

const GITHUB_TOKEN = `ghp_${"aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3zA5"}`;
const upTo = [identify, parse, route, checkCredential, scanOutbound];
const chat = (content: string) => ({
  model: "openai/gpt-4o-mini",
  messages: [{ role: "user", content }],
});

describe("stage: outbound DLP scan", () => {
  let block: StageHarness;
  let redact: StageHarness;
  beforeAll(async () => {
    block = await startStageHarness();
    redact = await startStageHarness({ dlp: { outbound: { on_match: "redact" } } });
  });
  afterAll(async () => {
    await block.close();
    await redact.close();
  });

  it("a clean body passes untouched", async () => {
    const r = await block.run(upTo, { body: chat("hello there") });
    expect(r.passed).toBe(true);
    expect(r.call.redacted).toBe(false);
    expect(r.call.upstreamRef).toEqual({
      origin: r.call.target.origin,
      path: r.call.target.pathname,
    });
  });

  it("block: a secret in the body is refused 403 naming the detector, never the secret", async () => {
    const r = await block.run(upTo, { body: chat(`token ${GITHUB_TOKEN}`) });
    expect(r.passed).toBe(false);
    expect(r.status).toBe(403);
    const err = JSON.parse(r.body).error;
    expect(err.type).toBe("dlp_blocked");
    expect(err.findings.length).toBeGreaterThan(0);
    expect(r.body).not.toContain(GITHUB_TOKEN);
    expect(JSON.stringify(block.logs)).not.toContain(GITHUB_TOKEN);
  });

  it("block: a secret in a header is refused too", async () => {
    const r = await block.run(upTo, {
      body: chat("hello"),
      headers: { "x-debug-token": GITHUB_TOKEN },
    });
    expect(r.status).toBe(403);
  });

  it("redact: the secret is replaced in the decoded string, the body still parses", async () => {
    const r = await redact.run(upTo, { body: chat(`a\\b "q" token ${GITHUB_TOKEN} end\u00e9`) });
    expect(r.passed).toBe(true);
    expect(r.call.redacted).toBe(true);
    expect(r.call.text).not.toContain(GITHUB_TOKEN);
    const content = (r.call.body as { messages: { content: string }[] }).messages[0]?.content;
    expect(content?.startsWith('a\\b "q" token ')).toBe(true);
    expect(content?.endsWith(" end\u00e9")).toBe(true);
  });
});
