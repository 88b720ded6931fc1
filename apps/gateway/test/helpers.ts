import Anthropic from "@anthropic-ai/sdk";
import type { Store } from "@bottlekit/budget-store";
import {
  createFakeUpstream,
  createTempHome,
  type FakeUpstream,
  type TempHome,
} from "@bottlekit/test-utils";
import OpenAI from "openai";
import { type RunningGateway, type StartOptions, startGateway } from "../src/compose.ts";
import type { GatewayLogEvent } from "../src/server.ts";

export const OPENAI_KEY = "sk-proj-FAKEupstreamKEYforTESTS0123456789abcdefABCDEF";
export const ANTHROPIC_KEY = "sk-ant-api03-FAKEupstreamKEYforTESTS0123456789abcdefABCDEF-xyzAA";

export interface Harness {
  up: FakeUpstream;
  anthropicUp: FakeUpstream;
  home: TempHome;
  gw: RunningGateway;
  store: Store;
  logs: GatewayLogEvent[];
  env: NodeJS.ProcessEnv;
  openai(apiKey?: string, opts?: { timeout?: number }): OpenAI;
  anthropic(apiKey?: string): Anthropic;
  close(): Promise<void>;
}

/**
 * A real gateway on loopback in front of two fake upstreams (one per vendor, each checking that
 * the gateway injected the right key), with a temp BOTTLEKIT_HOME and its own SQLite store.
 */
export async function startHarness(
  extra:
    | Record<string, unknown>
    | ((urls: { openai: string; anthropic: string }) => Record<string, unknown>) = {},
  extraEnv: Record<string, string> = {},
  start: Pick<StartOptions, "proxyDoor" | "proxyOptions" | "store"> = {},
): Promise<Harness> {
  const up = await createFakeUpstream({ requireKey: OPENAI_KEY });
  const anthropicUp = await createFakeUpstream({ requireKey: ANTHROPIC_KEY });
  const home = await createTempHome("bottlekit-gw-");
  const env: NodeJS.ProcessEnv = {
    BOTTLEKIT_HOME: home.dir,
    OPENAI_API_KEY: OPENAI_KEY,
    ANTHROPIC_API_KEY: ANTHROPIC_KEY,
    PATH: process.env["PATH"],
    ...extraEnv,
  };
  const logs: GatewayLogEvent[] = [];
  const config = {
    model_providers: [
      { model: "openai/*", base_url: `${up.url}/v1`, access_key: "$OPENAI_API_KEY" },
      { model: "anthropic/*", base_url: `${anthropicUp.url}/v1`, access_key: "$ANTHROPIC_API_KEY" },
    ] as Record<string, unknown>[],
    timeouts: { upstream_ms: 1_000, stream_idle_ms: 1_000, drain_ms: 5_000 },
    ...(typeof extra === "function"
      ? extra({ openai: up.url, anthropic: anthropicUp.url })
      : extra),
  };
  const gw = await startGateway({
    config,
    listen: "127.0.0.1:0",
    store: `sqlite:${home.dir}/bottlekit.db`,
    env,
    identityCacheMs: 0,
    log: (e) => logs.push(e),
    ...start,
  });
  return {
    up,
    anthropicUp,
    home,
    gw,
    store: gw.store,
    logs,
    env,
    openai: (apiKey = "local-unused", opts = {}) =>
      new OpenAI({
        apiKey,
        baseURL: `${gw.url}/v1`,
        maxRetries: 0,
        timeout: opts.timeout ?? 60_000,
      }),
    anthropic: (apiKey = "local-unused") =>
      new Anthropic({ apiKey, baseURL: gw.url, maxRetries: 0, timeout: 60_000 }),
    async close() {
      await gw.close(1_000);
      await up.close();
      await anthropicUp.close();
      await home.cleanup();
    },
  };
}
