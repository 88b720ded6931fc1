import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { performance } from "node:perf_hooks";
import type { Store } from "@bottlekit/budget-store";
import { modelTablesLoaded, preloadModelTables } from "@bottlekit/provider-registry";
import type { Pool } from "undici";
import { type ClientApi, ENDPOINT_BY_PATH, type EndpointKind, errorJson } from "./apis.ts";
import type { GatewayDlp } from "./dlp-types.ts";
import type { IdentityResolver } from "./identity.ts";
import { GatewayMetrics } from "./metrics.ts";
import type { Router } from "./router.ts";
import { LLM_STAGES, openCall, runStages } from "./stages/index.ts";
import { JSON_HEADERS, sendError } from "./stages/reply.ts";
import { stopCalls } from "./stages/stop.ts";
import type {
  CutoffNotice,
  GatewayLogEvent,
  Metering,
  Pipeline,
  ProxiedCall,
} from "./stages/types.ts";

export type {
  CutoffNotice,
  GatewayLogEvent,
  MeteredUsage,
  Metering,
  ProxiedCall,
  UsageTap,
} from "./stages/types.ts";

export interface GatewayOptions {
  router: Router;
  store: Store;
  dlp: GatewayDlp;
  identity: IdentityResolver;
  metering: Metering;
  metrics?: GatewayMetrics;
  /** Upstream: time allowed until response headers (ms). Default 120 s. */
  upstreamTimeoutMs?: number;
  /** Upstream: time allowed between body chunks (ms). Default 120 s. */
  streamIdleTimeoutMs?: number;
  /** Largest accepted request body. Default 16 MiB. */
  maxBodyBytes?: number;
  /** Output cap assumed when neither the client nor the catalog gives one. Default 4096. */
  defaultMaxTokens?: number;
  /**
   * Smallest output cap the gateway clamps a call down to when the budget cannot hold the
   * client's cap (default 256): with less room than this left after the input estimate, the call
   * is refused instead of being sent with a cap too small to be useful.
   */
  minClampTokens?: number;
  /** Connections per upstream origin. Default 128. */
  connectionsPerOrigin?: number;
  log?: (event: GatewayLogEvent) => void;
  /** Models listed by `GET /v1/models`. */
  listModels?: () => { id: string; owned_by: string }[];
  /**
   * Told when the budget cuts a bottle off, as a call learns it: a settle that spends a budget
   * (`crossed`), or a reserve refused because the store has the bottle cut off (`cut-off`: an
   * operator, or another gateway on the same store). The proxy door drops the bottle's egress
   * then. Called synchronously on the call's path: it must not block (errors are logged).
   */
  onCutoff?: (notice: CutoffNotice) => void;
}

export interface Gateway {
  readonly server: Server;
  /**
   * The proxy door: an intercepted request to a provider API host, answered through the same
   * pipeline as the API door. Identity is the bottle session; the provider is the one whose API
   * host was addressed; whatever key or placeholder the agent sent is dropped (never scanned as a
   * foreign credential, never forwarded) and the gateway's own credential is injected.
   */
  handleProxied(req: IncomingMessage, res: ServerResponse, call: ProxiedCall): void;
  readonly metrics: GatewayMetrics;
  listen(host: string, port: number): Promise<AddressInfo>;
  /** Stops accepting, lets in-flight calls (streams included) finish within `drainMs`, then closes. */
  close(drainMs?: number): Promise<void>;
  /** Number of calls in flight. */
  inFlight(): number;
  /**
   * Stops the running calls of a bottle that was cut off elsewhere (another gateway's crossing,
   * an operator): each ends with a `budget_exceeded` error carrying `message`, its upstream
   * request aborted. Returns how many were stopped, and the responses of the bottle's live calls
   * (to wait for their delivery before the bottle's connections are cut).
   */
  stopBottle(bottle: string, message: string): { stopped: number; responses: ServerResponse[] };
  /**
   * Loads the upstream HTTP client (undici) and the model catalogs (provider-registry), which are
   * otherwise loaded by the first call that needs them. A gateway that starts ahead of its first
   * call (`bottle-gateway up`) awaits it while starting; one embedded in `bottle run` loads them
   * once the run has settled (compose.ts, `lazyStart`).
   */
  warm(): Promise<void>;
}

/** undici's Pool once loaded: its module graph is a large part of a gateway's start-up. */
let PoolClass: typeof Pool | undefined;
let loadingPool: Promise<typeof Pool> | undefined;
function loadPool(): Promise<typeof Pool> {
  loadingPool ??= import("undici").then((m) => {
    PoolClass = m.Pool;
    return m.Pool;
  });
  // A failed load is tried again by the next call.
  loadingPool.catch(() => {
    loadingPool = undefined;
  });
  return loadingPool;
}

let requestCounter = 0;
const REQUEST_ID_PREFIX = `gw-${process.pid.toString(36)}-${Date.now().toString(36)}-`;
function nextRequestId(): string {
  requestCounter = (requestCounter + 1) | 0;
  return REQUEST_ID_PREFIX + (requestCounter >>> 0).toString(36);
}

/**
 * Creates the gateway's HTTP server: the API door (`/v1/*`) and the proxy door
 * (`handleProxied`) read the request body, then run the same pipeline of named stages
 * (`LLM_STAGES` in ./stages/index.ts). Costs on the hot path: one JSON.parse of the request
 * (re-serialized only when the model id or `stream_options` must change), one linear DLP pass
 * over headers and body, one reserve and one settle, and for non-streamed responses one
 * JSON.parse of the response for usage. The response bytes are forwarded as received.
 */
export function createGateway(options: GatewayOptions): Gateway {
  const metrics = options.metrics ?? new GatewayMetrics();
  const log = options.log ?? (() => {});
  const headersTimeout = options.upstreamTimeoutMs ?? 120_000;
  const bodyTimeout = options.streamIdleTimeoutMs ?? 120_000;
  const maxBody = options.maxBodyBytes ?? 16 * 1024 * 1024;
  const connections = options.connectionsPerOrigin ?? 128;
  const pools = new Map<string, Pool>();
  let inFlight = 0;
  let draining = false;
  const idleWaiters: (() => void)[] = [];

  function poolFor(origin: string): Pool | Promise<Pool> {
    const p = pools.get(origin);
    if (p !== undefined) return p;
    if (PoolClass === undefined) return loadPool().then(() => poolFor(origin));
    return newPool(PoolClass, origin);
  }
  function newPool(PoolCtor: typeof Pool, origin: string): Pool {
    let p = pools.get(origin);
    if (p === undefined) {
      p = new PoolCtor(origin, {
        connections,
        pipelining: 1,
        keepAliveTimeout: 30_000,
        headersTimeout,
        bodyTimeout,
      });
      pools.set(origin, p);
    }
    return p;
  }

  const pipeline: Pipeline = {
    router: options.router,
    store: options.store,
    dlp: options.dlp,
    identity: options.identity,
    metering: options.metering,
    metrics,
    log,
    defaultMaxTokens: options.defaultMaxTokens ?? 4096,
    minClampTokens: Math.max(1, options.minClampTokens ?? 256),
    poolFor,
    onCutoff: options.onCutoff,
    lastRemainingUpdate: new Map(),
    live: new Set(),
  };

  function finishInFlight(): void {
    inFlight--;
    metrics.inFlight.set([], inFlight);
    if (inFlight === 0) for (const w of idleWaiters.splice(0)) w();
  }

  /** The pipeline for one call whose body has been read. */
  function handleLlm(
    api: ClientApi,
    kind: EndpointKind,
    endpoint: string,
    req: IncomingMessage,
    res: ServerResponse,
    raw: Buffer,
    t0: number,
    proxied: ProxiedCall | undefined,
  ): Promise<void> {
    const run = () => {
      const call = openCall(
        { api, kind, endpoint, req, res, raw, t0, proxied, requestId: nextRequestId() },
        pipeline,
      );
      pipeline.live.add(call);
      return runStages(LLM_STAGES, call, pipeline).finally(() => pipeline.live.delete(call));
    };
    // The first call of a gateway started lazily loads the model catalogs it prices and routes
    // with (see warm()), without holding the thread for a synchronous load. Should that load
    // fail, the call goes on: its lookups load them synchronously, or fail inside the pipeline.
    return modelTablesLoaded() ? run() : preloadModelTables().then(run, run);
  }

  function handle(req: IncomingMessage, res: ServerResponse, proxied?: ProxiedCall): void {
    const t0 = performance.now();
    const url = req.url ?? "/";
    const q = url.indexOf("?");
    const path = q === -1 ? url : url.slice(0, q);
    const ep = ENDPOINT_BY_PATH.get(path);
    if (ep === undefined) {
      handleOther(req, res, path);
      return;
    }
    const api = ep.api;
    if (req.method !== "POST") {
      res.setHeader("allow", "POST");
      sendError(res, api, 405, "invalid_request_error", `${path} accepts POST only`);
      return;
    }
    if (draining) {
      res.setHeader("connection", "close");
      sendError(
        res,
        api,
        503,
        "overloaded_error",
        "the gateway is shutting down; retry against another instance",
      );
      return;
    }
    inFlight++;
    metrics.inFlight.set([], inFlight);
    const chunks: Buffer[] = [];
    let size = 0;
    let tooBig = false;
    req.on("data", (c: Buffer) => {
      if (tooBig) return;
      size += c.length;
      if (size > maxBody) {
        tooBig = true;
        chunks.length = 0;
        return;
      }
      chunks.push(c);
    });
    // Exactly one of: the body ends (→ handled, then finished), or the request errors or closes
    // before its end (→ finished here).
    let ended = false;
    let counted = true;
    const abandon = (): void => {
      if (!ended && counted) {
        counted = false;
        finishInFlight();
      }
    };
    req.on("error", abandon);
    req.on("close", abandon);
    req.on("end", () => {
      ended = true;
      if (tooBig) {
        sendError(
          res,
          api,
          413,
          "invalid_request_error",
          `the request body is larger than ${maxBody} bytes`,
        );
        finishInFlight();
        return;
      }
      const raw = chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, size);
      handleLlm(api, ep.kind, path, req, res, raw, t0, proxied)
        .catch((error: unknown) => {
          log({
            level: "error",
            event: "internal_error",
            error: error instanceof Error ? error.stack : String(error),
          });
          if (!res.headersSent) sendError(res, api, 500, "api_error", "internal gateway error");
          else if (!res.writableEnded) res.end();
        })
        .finally(finishInFlight);
    });
  }

  function handleOther(req: IncomingMessage, res: ServerResponse, path: string): void {
    const get = req.method === "GET" || req.method === "HEAD";
    if (get && (path === "/healthz" || path === "/api/hello" || path === "/")) {
      // Health probes: ours, and Claude Code's `HEAD /api/hello` connectivity check.
      const body = JSON.stringify({ status: draining ? "draining" : "ok", inFlight });
      res.writeHead(draining ? 503 : 200, {
        ...JSON_HEADERS,
        "content-length": Buffer.byteLength(body),
      });
      res.end(req.method === "HEAD" ? undefined : body);
      return;
    }
    if (req.method === "GET" && path === "/metrics") {
      res.writeHead(200, { "content-type": "text/plain; version=0.0.4; charset=utf-8" });
      res.end(metrics.render());
      return;
    }
    if (get && (path === "/v1/models" || path.startsWith("/v1/models/"))) {
      // The list in the shape of the API the client speaks: Anthropic's clients send
      // `anthropic-version`; everything else gets OpenAI's.
      const anthropic = req.headers["anthropic-version"] !== undefined;
      const models = options.listModels?.() ?? [];
      const one = (m: { id: string; owned_by: string }) =>
        anthropic
          ? { type: "model", id: m.id, display_name: m.id, created_at: "1970-01-01T00:00:00Z" }
          : { id: m.id, object: "model", created: 0, owned_by: m.owned_by };
      let body: string;
      if (path === "/v1/models") {
        const data = models.map(one);
        body = anthropic
          ? JSON.stringify({
              data,
              has_more: false,
              first_id: models[0]?.id ?? null,
              last_id: models.at(-1)?.id ?? null,
            })
          : JSON.stringify({ object: "list", data });
      } else {
        const id = decodeURIComponent(path.slice("/v1/models/".length));
        const m = models.find((x) => x.id === id);
        if (m === undefined) {
          sendError(
            res,
            anthropic ? "anthropic-messages" : undefined,
            404,
            "not_found_error",
            `model "${id}" is not routable through this gateway; GET /v1/models lists those that are`,
          );
          return;
        }
        body = JSON.stringify(one(m));
      }
      res.writeHead(200, { ...JSON_HEADERS, "content-length": Buffer.byteLength(body) });
      res.end(req.method === "HEAD" ? undefined : body);
      return;
    }
    const api: ClientApi | undefined = path.startsWith("/v1/messages")
      ? "anthropic-messages"
      : undefined;
    sendError(
      res,
      api,
      404,
      "not_found_error",
      `no endpoint ${req.method} ${path}; see GET /v1/models, POST /v1/chat/completions, /v1/responses, /v1/responses/compact, /v1/messages, /v1/messages/count_tokens, /v1/embeddings`,
    );
  }

  const server = createServer({ keepAliveTimeout: 65_000, requestTimeout: 0 }, (req, res) =>
    handle(req, res),
  );
  // A WebSocket upgrade (Codex tries the Responses API over a WebSocket first) is refused with
  // 426 before any handshake, so the client falls back to HTTP at once instead of waiting.
  server.on("upgrade", (req, socket) => {
    const url = req.url ?? "/";
    const q = url.indexOf("?");
    const path = q === -1 ? url : url.slice(0, q);
    // A fixed label set: the path is the client's, and /metrics must not grow with it.
    const endpoint = ENDPOINT_BY_PATH.has(path) ? path : "other";
    metrics.requests.inc([endpoint, "426", ""]);
    log({ level: "info", event: "websocket.refused", path: endpoint });
    const body = errorJson(
      undefined,
      "invalid_request_error",
      "this gateway serves the Responses API over HTTP only (no WebSocket); use HTTPS streaming",
    );
    socket.end(
      `HTTP/1.1 426 Upgrade Required\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nx-should-retry: false\r\nconnection: close\r\n\r\n${body}`,
    );
  });
  server.on("clientError", (_err, socket) => {
    if (socket.writable) socket.end("HTTP/1.1 400 Bad Request\r\nconnection: close\r\n\r\n");
  });

  return {
    server,
    metrics,
    handleProxied: (req, res, call) => handle(req, res, call),
    inFlight: () => inFlight,
    stopBottle: (bottle, message) => stopCalls(pipeline, bottle, message),
    warm: () => Promise.all([loadPool(), preloadModelTables()]).then(() => undefined),
    listen(host, port) {
      return new Promise((resolve, reject) => {
        server.once("error", reject);
        server.listen(port, host, () => {
          server.off("error", reject);
          resolve(server.address() as AddressInfo);
        });
      });
    },
    async close(drainMs = 30_000) {
      draining = true;
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      if (inFlight > 0) {
        await Promise.race([
          new Promise<void>((resolve) => idleWaiters.push(resolve)),
          new Promise<void>((resolve) => setTimeout(resolve, drainMs).unref()),
        ]);
      }
      server.closeAllConnections();
      await closed;
      await Promise.all([...pools.values()].map((p) => p.close().catch(() => {})));
      pools.clear();
    },
  };
}
