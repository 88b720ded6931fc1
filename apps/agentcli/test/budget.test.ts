import { existsSync } from "node:fs";
import { join } from "node:path";
import { startGateway } from "@bottlekit/gateway";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type Sandbox, sandbox, UPSTREAM_KEY } from "./helpers.ts";

let sb: Sandbox;
beforeEach(async () => {
  sb = await sandbox();
});
afterEach(async () => {
  await sb.cleanup();
});

const call = (id: string, name: string, args: unknown) => ({
  id,
  name,
  arguments: JSON.stringify(args),
});

describe("budgets", () => {
  it("a real bottle-gateway cuts the run off mid-way: exit 3 with the usage so far", async () => {
    const gw = await startGateway({
      config: {
        model_providers: [
          { model: "openai/*", base_url: `${sb.upstream.url}/v1`, access_key: "$OPENAI_API_KEY" },
        ],
        budgets: [
          {
            scope: "bottle",
            key: "agent-bottle",
            provider: "openai",
            tokens: 6000,
            policy: "cutoff",
          },
        ],
        default_max_tokens: 64,
      },
      listen: "127.0.0.1:0",
      env: { PATH: process.env["PATH"], BOTTLEKIT_HOME: sb.home, OPENAI_API_KEY: UPSTREAM_KEY },
    });
    try {
      const key = await gw.store.createGatewayKey({
        bottle: "agent-bottle",
        agent: "agentcli",
        label: "test",
      });
      // step 1 costs 5900 tokens; step 2's reservation no longer fits in what is left
      sb.upstream.enqueue(
        {
          toolCalls: [call("b1", "write_file", { path: "step1.txt", content: "1" })],
          usage: { input: 5890, output: 10 },
        },
        {
          toolCalls: [call("b2", "write_file", { path: "step2.txt", content: "2" })],
          usage: { input: 10, output: 10 },
        },
        { text: "never" },
      );
      const env = {
        AGENTCLI_BASE_URL: undefined,
        AGENTCLI_API_KEY_ENV: undefined,
        BOTTLEKIT_GATEWAY_URL: `${gw.url}/v1`,
        BOTTLEKIT_GATEWAY_KEY: key.key,
      };
      const r = await sb.run(["-m", "openai/gpt-4o-mini", "--json", "work"], env);
      expect(r.code).toBe(3);
      const doc = JSON.parse(r.out);
      expect(doc).toMatchObject({
        status: "budget_exceeded",
        exitCode: 3,
        steps: 2,
        usage: { input: 5890, output: 10, total: 5900, modelCalls: 1 },
        error: { code: "E_BUDGET" },
      });
      expect(doc.toolCalls).toHaveLength(1);
      expect(existsSync(join(sb.ws, "step1.txt"))).toBe(true);
      expect(existsSync(join(sb.ws, "step2.txt"))).toBe(false);
      expect(sb.upstream.requests).toHaveLength(1); // the refused call never reached the provider
      expect(r.err).toContain("budget exceeded");
      // the gateway key went to the gateway, never the provider key
      const audit = await sb.auditLines();
      expect(audit.find((l) => l["event"] === "run.start")).toMatchObject({
        viaGateway: true,
        apiKeyEnv: "BOTTLEKIT_GATEWAY_KEY",
        apiKeySet: true,
      });
      expect(JSON.stringify(audit)).not.toContain(key.key);
      expect(audit.at(-1)).toMatchObject({
        event: "run.end",
        status: "budget_exceeded",
        exitCode: 3,
      });

      // human output: a summary on stderr, nothing on stdout
      const again = await sb.run(["-m", "openai/gpt-4o-mini", "again"], env);
      expect(again.code).toBe(3);
      expect(again.out).toBe("");
      expect(again.err).toMatch(/stopped: budget exceeded: .*\nhint: .*\nagentcli: used 0 tokens/);
    } finally {
      await gw.close(1_000);
    }
  });

  it("a call the gateway's DLP blocks ends the run with exit 3 (policy_stopped), never reaching the provider", async () => {
    const gw = await startGateway({
      config: {
        model_providers: [
          { model: "openai/*", base_url: `${sb.upstream.url}/v1`, access_key: "$OPENAI_API_KEY" },
        ],
        dlp: { outbound: { on_match: "block", detectors: ["token_patterns", "known_secrets"] } },
      },
      listen: "127.0.0.1:0",
      env: { PATH: process.env["PATH"], BOTTLEKIT_HOME: sb.home, OPENAI_API_KEY: UPSTREAM_KEY },
    });
    try {
      const key = await gw.store.createGatewayKey({
        bottle: "b",
        agent: "agentcli",
        label: "test",
      });
      const r = await sb.run(
        [
          "-m",
          "openai/gpt-4o-mini",
          "--json",
          `deploy with ghp_${"aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3zA5"}`,
        ],
        {
          AGENTCLI_BASE_URL: undefined,
          AGENTCLI_API_KEY_ENV: undefined,
          BOTTLEKIT_GATEWAY_URL: `${gw.url}/v1`,
          BOTTLEKIT_GATEWAY_KEY: key.key,
        },
      );
      expect(r.code).toBe(3);
      expect(JSON.parse(r.out)).toMatchObject({
        status: "policy_stopped",
        error: { code: "E_POLICY" },
      });
      expect(sb.upstream.requests).toHaveLength(0);
    } finally {
      await gw.close(1_000);
    }
  });

  it("--max-tokens stops the run itself (exit 3) and caps each call's completion", async () => {
    sb.upstream.setDefaultReply({
      toolCalls: [call("t", "list_dir", {})],
      usage: { input: 60, output: 40 },
    });
    const r = await sb.run(["-m", "m", "--max-tokens", "150", "--json", "loop"]);
    expect(r.code).toBe(3);
    expect(JSON.parse(r.out)).toMatchObject({
      status: "token_cap",
      usage: { total: 200, modelCalls: 2 },
    });
    expect(sb.upstream.requests).toHaveLength(2);
    expect((sb.upstream.requests[0]?.body as { max_tokens?: number } | undefined)?.max_tokens).toBe(
      150,
    );
    expect((sb.upstream.requests[1]?.body as { max_tokens?: number } | undefined)?.max_tokens).toBe(
      50,
    );
  });

  it("ends with exit 1 and 'needs human review' when the steps run out", async () => {
    sb.upstream.setDefaultReply({ toolCalls: [call("t", "list_dir", {})] });
    const r = await sb.run(["-m", "m", "--max-steps", "3", "loop forever"]);
    expect(r.code).toBe(1);
    expect(sb.upstream.requests).toHaveLength(3);
    expect(r.err).toContain(
      "reached the step limit (3) without a final answer; needs human review",
    );
    expect(r.out).toBe("");
  });
});
