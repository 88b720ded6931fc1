/**
 * Runs a list of pipeline stages on a real HTTP request, with the real parts a gateway is built
 * from (SQLite store, router over the provider registry, DLP, identity, metering) in front of two
 * fake upstreams. A stage test picks the stages it needs (e.g. `[identify, parse, route]`) and
 * reads what they wrote on the call, or what the client received when a stage answered.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { performance } from "node:perf_hooks";
import { openStore, type Store } from "@bottlekit/budget-store";
import { createRegistry } from "@bottlekit/provider-registry";
import {
  createFakeUpstream,
  createTempHome,
  type FakeUpstream,
  type TempHome,
} from "@bottlekit/test-utils";
import { Pool } from "undici";
import { ENDPOINT_BY_PATH } from "../src/apis.ts";
import { resolveConfig } from "../src/compose.ts";
import { createGatewayDlp } from "../src/dlp.ts";
import { IdentityResolver } from "../src/identity.ts";
import { createMetering } from "../src/metering.ts";
import { GatewayMetrics } from "../src/metrics.ts";
import { Router } from "../src/router.ts";
import { type Call, openCall, runStages } from "../src/stages/index.ts";
import type {
  CutoffNotice,
  GatewayLogEvent,
  Pipeline,
  ProxiedCall,
  Stage,
} from "../src/stages/types.ts";
import { ANTHROPIC_KEY, OPENAI_KEY } from "./helpers.ts";

export interface StageRun {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  /** The call as the stages left it. */
  call: Call;
  /** True when every stage let the call go on (no stage answered the client). */
  passed: boolean;
}

export interface StageRequest {
  path?: string;
  method?: string;
  body: unknown;
  headers?: Record<string, string>;
  proxied?: ProxiedCall;
}

export interface StageHarness {
  pipeline: Pipeline;
  store: Store;
  up: FakeUpstream;
  anthropicUp: FakeUpstream;
  logs: GatewayLogEvent[];
  cutoffs: CutoffNotice[];
  run(stages: readonly Stage[], request: StageRequest): Promise<StageRun>;
  close(): Promise<void>;
}

/** Header set on the harness's own answer when every stage passed. */
const PASSED = "x-stage-harness-passed";

export async function startStageHarness(
  extra:
    | Record<string, unknown>
    | ((urls: { openai: string; anthropic: string }) => Record<string, unknown>) = {},
  pipelineOverrides: Partial<Pick<Pipeline, "minClampTokens" | "defaultMaxTokens">> = {},
): Promise<StageHarness> {
  const up = await createFakeUpstream({ requireKey: OPENAI_KEY });
  const anthropicUp = await createFakeUpstream({ requireKey: ANTHROPIC_KEY });
  const home: TempHome = await createTempHome("bottlekit-stage-");
  const env: NodeJS.ProcessEnv = {
    BOTTLEKIT_HOME: home.dir,
    OPENAI_API_KEY: OPENAI_KEY,
    ANTHROPIC_API_KEY: ANTHROPIC_KEY,
  };
  const v = await resolveConfig({
    config: {
      model_providers: [
        { model: "openai/*", base_url: `${up.url}/v1`, access_key: "$OPENAI_API_KEY" },
        {
          model: "anthropic/*",
          base_url: `${anthropicUp.url}/v1`,
          access_key: "$ANTHROPIC_API_KEY",
        },
      ],
      ...(typeof extra === "function"
        ? extra({ openai: up.url, anthropic: anthropicUp.url })
        : extra),
    },
    env,
  });
  if (v.value === undefined) throw new Error(`bad harness config: ${v.errors.join("; ")}`);
  const config = v.value;
  const store = await openStore(`sqlite:${home.dir}/bottlekit.db`, { home: home.dir });
  if (config.budgets.length > 0) {
    await store.replaceBudgets(
      "config",
      config.budgets.map((b) => ({
        scope: b.scope,
        ...(b.key !== undefined ? { key: b.key } : {}),
        provider: b.provider,
        ...(b.tokens !== undefined ? { tokens: b.tokens } : {}),
        ...(b.policy !== undefined ? { policy: b.policy } : {}),
      })),
    );
  }
  const registry = createRegistry(v.registryInput);
  const logs: GatewayLogEvent[] = [];
  const cutoffs: CutoffNotice[] = [];
  const pools = new Map<string, Pool>();
  const pipeline: Pipeline = {
    router: new Router(registry, env),
    store,
    dlp: createGatewayDlp(config, env, registry),
    identity: new IdentityResolver(store, { loopback: true, cacheTtlMs: 0, keysRefreshMs: 0 }),
    metering: createMetering(),
    metrics: new GatewayMetrics(),
    log: (e) => logs.push(e),
    defaultMaxTokens: pipelineOverrides.defaultMaxTokens ?? config.default_max_tokens ?? 4096,
    minClampTokens: pipelineOverrides.minClampTokens ?? 256,
    poolFor(origin) {
      let p = pools.get(origin);
      if (p === undefined) {
        p = new Pool(origin, { connections: 4, headersTimeout: 2_000, bodyTimeout: 2_000 });
        pools.set(origin, p);
      }
      return p;
    },
    onCutoff: (n) => cutoffs.push(n),
    lastRemainingUpdate: new Map(),
    live: new Set(),
  };

  let pending: { stages: readonly Stage[]; proxied: ProxiedCall | undefined } | undefined;
  let lastCall: Call | undefined;
  let seq = 0;
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const job = pending;
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const path = (req.url ?? "/").split("?")[0] as string;
      const ep = ENDPOINT_BY_PATH.get(path);
      if (job === undefined || ep === undefined) {
        res.writeHead(500).end("no stage job, or not an LLM endpoint");
        return;
      }
      seq++;
      const call = openCall(
        {
          api: ep.api,
          kind: ep.kind,
          endpoint: path,
          req,
          res,
          raw: Buffer.concat(chunks),
          t0: performance.now(),
          proxied: job.proxied,
          requestId: `stage-${seq}`,
        },
        pipeline,
      );
      lastCall = call;
      runStages(job.stages, call, pipeline).then(
        () => {
          if (!res.headersSent) res.writeHead(204, { [PASSED]: "1" }).end();
          else if (!res.writableEnded) res.end();
        },
        (error: unknown) => {
          if (!res.headersSent) res.writeHead(599).end(String(error));
          else res.destroy();
        },
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  const client = new Pool(`http://127.0.0.1:${port}`, { connections: 1 });

  return {
    pipeline,
    store,
    up,
    anthropicUp,
    logs,
    cutoffs,
    async run(stages, request) {
      pending = { stages, proxied: request.proxied };
      lastCall = undefined;
      const r = await client.request({
        path: request.path ?? "/v1/chat/completions",
        method: request.method ?? "POST",
        headers: { "content-type": "application/json", ...request.headers },
        body: typeof request.body === "string" ? request.body : JSON.stringify(request.body),
      });
      const body = await r.body.text();
      pending = undefined;
      const call = lastCall as Call | undefined;
      if (call === undefined) throw new Error(`no call was opened (HTTP ${r.statusCode}: ${body})`);
      return {
        status: r.statusCode,
        headers: r.headers,
        body,
        call,
        passed: r.statusCode === 204 && r.headers[PASSED] === "1",
      };
    },
    async close() {
      await client.close();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await Promise.all([...pools.values()].map((p) => p.close()));
      await store.close();
      await up.close();
      await anthropicUp.close();
      await home.cleanup();
    },
  };
}
