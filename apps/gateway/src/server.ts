import { EventEmitter, once } from "node:events";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { performance } from "node:perf_hooks";
import type { ReserveResult, SettleUsage, Store } from "@bottlekit/budget-store";
import { listProviders } from "@bottlekit/provider-registry";
import { Pool } from "undici";
import {
  type ClientApi,
  ENDPOINT_BY_PATH,
  type EndpointKind,
  endpointUpstreamPath,
  errorEvent,
  errorJson,
  type GatewayErrorType,
  type OutputCapKey,
  readFacts,
} from "./apis.ts";
import type { DlpFinding, GatewayDlp } from "./dlp-types.ts";
import type { CallerIdentity, IdentityResolver, IdentityResult } from "./identity.ts";
import { GatewayMetrics } from "./metrics.ts";
import { adviceHeaders, budgetRetryAdvice, forwardUpstreamHeaders } from "./retry-hints.ts";
import type { Router, UpstreamTarget } from "./router.ts";
import { UsageStripper } from "./sse.ts";
import { responseText, TextExtractor } from "./text.ts";
import {
  StreamStage,
  translateErrorBody,
  translateRequestBody,
  translateResponseText,
  upstreamCapKey,
} from "./translate-stage.ts";

/** Token counts of one call, normalized across wire APIs (provider-registry's `UsageResult`). */
export interface MeteredUsage {
  inputTokens: number;
  outputTokens: number;
  cacheReadTokens: number;
  cacheWriteTokens: number;
  reasoningTokens: number;
  usageMissing: boolean;
}

/** Incremental usage reader for one streamed response. */
export interface UsageTap {
  write(chunk: Uint8Array | string): void;
  end(): MeteredUsage;
}

/** Metering functions, provided by provider-registry. */
export interface Metering {
  /** Usage from a complete JSON response body. */
  parse(api: ClientApi, body: unknown): MeteredUsage;
  tap(api: ClientApi): UsageTap;
  /** USD cost, or undefined when the model is unpriced. */
  cost(usage: MeteredUsage, target: UpstreamTarget): number | undefined;
}

/** One structured log record. Never carries secrets or bodies. */
export interface GatewayLogEvent {
  level: "info" | "warn" | "error";
  event: string;
  requestId?: string;
  [key: string]: unknown;
}

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
}

/**
 * The proxy door's view of a call: the bottle session it came from (identity) and the provider
 * API host the agent addressed (routing). Shaped like `@bottlekit/egress-proxy`'s `LlmContext`.
 */
export interface ProxiedCall {
  sessionId: string;
  bottle: string;
  agent?: string;
  /** The CONNECT host (= SNI), lower case, e.g. `api.anthropic.com`. */
  host: string;
  port: number;
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
}

// Headers a client may send that are forwarded upstream. Everything else (cookies, the gateway
// credential, hop-by-hop headers, host) stays at the gateway.
const FORWARDED_HEADERS = [
  "accept",
  "anthropic-version",
  "anthropic-beta",
  "openai-beta",
  "user-agent",
  "idempotency-key",
] as const;

const JSON_HEADERS = { "content-type": "application/json" } as const;
const NO_FINDINGS: DlpFinding[] = [];

/** The key that carries an output cap the client did not set (OpenAI's reasoning models refuse `max_tokens`). */
function defaultCapKey(api: ClientApi, provider: string): OutputCapKey {
  if (api === "openai-responses") return "max_output_tokens";
  if (api === "openai-chat" && provider === "openai") return "max_completion_tokens";
  return "max_tokens";
}

/**
 * HTTP status of a budget refusal: 429. Codex (0.169, measured) retries every 429, 402, 403 and
 * 422 whatever `x-should-retry` says ("Reconnecting... 5/5", ~10 s) and after a 429 prints only
 * the status line; a 400 it sends once and prints with its body. So a refusal that retrying
 * cannot clear is answered 400 to Codex (recognized by its `originator` header or user agent),
 * with the same `budget_exceeded` body.
 */
function refusalStatus(req: IncomingMessage, shouldRetry: boolean): number {
  if (shouldRetry) return 429;
  const originator = req.headers["originator"];
  const ua = req.headers["user-agent"];
  const codex =
    (typeof originator === "string" && originator.startsWith("codex")) ||
    (typeof ua === "string" && ua.startsWith("codex"));
  return codex ? 400 : 429;
}

/** API host name → provider id, from provider-registry's catalog (built once). */
let hostProviders: Map<string, string> | undefined;
function providerOfHost(host: string): string | undefined {
  if (hostProviders === undefined) {
    hostProviders = new Map();
    for (const p of listProviders()) {
      if (p.baseUrl === undefined) continue;
      try {
        const h = new URL(p.baseUrl).hostname.toLowerCase();
        if (!hostProviders.has(h)) hostProviders.set(h, p.id);
      } catch {
        // a catalog entry without a usable URL has no host to match
      }
    }
  }
  return hostProviders.get(host.toLowerCase());
}

/** The header that carries the agent's (placeholder) key on the proxy door; it is dropped. */
function agentCredentialHeader(req: IncomingMessage): string | undefined {
  if (req.headers["x-api-key"] !== undefined) return "x-api-key";
  if (req.headers.authorization !== undefined) return "authorization";
  return undefined;
}

let requestCounter = 0;
const REQUEST_ID_PREFIX = `gw-${process.pid.toString(36)}-${Date.now().toString(36)}-`;
function nextRequestId(): string {
  requestCounter = (requestCounter + 1) | 0;
  return REQUEST_ID_PREFIX + (requestCounter >>> 0).toString(36);
}

/** What an upstream failure looks like to the client. */
function classifyUpstreamError(error: unknown): {
  status: number;
  type: GatewayErrorType;
  kind: string;
  message: string;
} {
  const code = (error as { code?: string }).code ?? "";
  const name = (error as { name?: string }).name ?? "";
  if (
    code === "UND_ERR_HEADERS_TIMEOUT" ||
    code === "UND_ERR_BODY_TIMEOUT" ||
    name === "TimeoutError"
  ) {
    return {
      status: 504,
      type: "upstream_timeout",
      kind: "timeout",
      message: "the upstream did not answer in time",
    };
  }
  if (
    code === "UND_ERR_SOCKET" ||
    code === "ECONNRESET" ||
    code === "UND_ERR_CLOSED" ||
    name === "SocketError"
  ) {
    return {
      status: 502,
      type: "upstream_connection_error",
      kind: "reset",
      message: "the upstream closed the connection before the response was complete",
    };
  }
  if (code === "ECONNREFUSED" || code === "ENOTFOUND" || code === "EAI_AGAIN") {
    return {
      status: 502,
      type: "upstream_connection_error",
      kind: "connect",
      message: `could not connect to the upstream (${code})`,
    };
  }
  return {
    status: 502,
    type: "upstream_error",
    kind: "other",
    message: `the upstream request failed${code ? ` (${code})` : ""}`,
  };
}

/**
 * Creates the gateway's HTTP server. The request path for an LLM call:
 * identity → parse → route → outbound DLP → reserve → upstream (pooled) → usage tap + inbound
 * scan while streaming back → settle. Costs on the hot path: one JSON.parse of the request
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
  const defaultMaxTokens = options.defaultMaxTokens ?? 4096;
  const minClampTokens = Math.max(1, options.minClampTokens ?? 256);
  const connections = options.connectionsPerOrigin ?? 128;
  const pools = new Map<string, Pool>();
  let inFlight = 0;
  let draining = false;
  const idleWaiters: (() => void)[] = [];
  const lastRemainingUpdate = new Map<string, number>();

  function poolFor(origin: string): Pool {
    let p = pools.get(origin);
    if (p === undefined) {
      p = new Pool(origin, {
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

  function sendError(
    res: ServerResponse,
    api: ClientApi | undefined,
    status: number,
    type: GatewayErrorType,
    message: string,
    extra?: Record<string, unknown>,
    headers?: Record<string, string>,
  ): void {
    if (res.headersSent) return;
    const body = errorJson(api, type, message, extra);
    // A client mistake or a policy refusal does not change on retry: the SDKs must not retry.
    if (status < 500 && status !== 408 && status !== 409 && status !== 429)
      res.setHeader("x-should-retry", "false");
    if (headers !== undefined) for (const k in headers) res.setHeader(k, headers[k] as string);
    res.writeHead(status, {
      "content-type": "application/json",
      "content-length": Buffer.byteLength(body),
    });
    res.end(body);
  }

  function finishInFlight(): void {
    inFlight--;
    metrics.inFlight.set([], inFlight);
    if (inFlight === 0) for (const w of idleWaiters.splice(0)) w();
  }

  function recordFindings(
    direction: "outbound" | "inbound",
    findings: DlpFinding[],
    action: string,
  ): void {
    for (const f of findings) metrics.dlpFindings.inc([direction, f.detector, action]);
  }

  /**
   * Records and logs inbound findings; true when the policy blocks the response (a blocking
   * finding and `inboundAction: block`), otherwise they are a warning.
   */
  function reportInbound(findings: DlpFinding[], requestId: string): boolean {
    const block =
      options.dlp.inboundAction === "block" && findings.some((f) => f.severity === "block");
    recordFindings("inbound", findings, block ? "block" : "warn");
    log({
      level: "warn",
      event: `dlp.inbound.${block ? "blocked" : "flagged"}`,
      requestId,
      findings,
    });
    return block;
  }

  function updateRemaining(identity: CallerIdentity, provider: string): void {
    const key = `${identity.bottle}\u0001${identity.agent}\u0001${provider}`;
    const now = Date.now();
    if (now - (lastRemainingUpdate.get(key) ?? 0) < 1000) return;
    lastRemainingUpdate.set(key, now);
    options.store
      .remaining({
        bottle: identity.bottle,
        parents: identity.parents,
        agent: identity.agent,
        provider,
      })
      .then((r) => {
        if (r !== undefined)
          metrics.budgetRemaining.set(
            [identity.bottle, identity.agent, provider, r.scope],
            r.remaining,
          );
      })
      .catch(() => {});
  }

  async function settle(
    reservation: string,
    identity: CallerIdentity,
    target: UpstreamTarget,
    usage: MeteredUsage,
    requestId: string,
  ): Promise<void> {
    const model = target.model;
    if (usage.usageMissing) metrics.usageMissing.inc([target.provider, model]);
    if (usage.inputTokens > 0)
      metrics.tokens.inc([target.provider, model, "input"], usage.inputTokens);
    if (usage.outputTokens > 0)
      metrics.tokens.inc([target.provider, model, "output"], usage.outputTokens);
    if (usage.cacheReadTokens > 0)
      metrics.tokens.inc([target.provider, model, "cache_read"], usage.cacheReadTokens);
    if (usage.cacheWriteTokens > 0)
      metrics.tokens.inc([target.provider, model, "cache_write"], usage.cacheWriteTokens);
    if (usage.reasoningTokens > 0)
      metrics.tokens.inc([target.provider, model, "reasoning"], usage.reasoningTokens);
    const su: SettleUsage = {
      model,
      inputTokens: usage.inputTokens,
      outputTokens: usage.outputTokens,
      cacheReadTokens: usage.cacheReadTokens,
      cacheWriteTokens: usage.cacheWriteTokens,
      reasoningTokens: usage.reasoningTokens,
      usageMissing: usage.usageMissing,
      requestId,
    };
    const cost = options.metering.cost(usage, target);
    if (cost !== undefined) su.costUsd = cost;
    try {
      const r = await options.store.settle(reservation, su);
      if (r.crossed !== undefined) {
        log({
          level: "warn",
          event: "budget.crossed",
          requestId,
          bottle: identity.bottle,
          agent: identity.agent,
          provider: target.provider,
          scope: r.crossed.scope,
          key: r.crossed.key,
          limit: r.crossed.limit,
          used: r.crossed.used,
          policy: r.crossed.policy,
        });
      }
      updateRemaining(identity, target.provider);
    } catch (error) {
      log({ level: "error", event: "settle.failed", requestId, error: String(error) });
    }
  }

  async function release(reservation: string, requestId: string): Promise<void> {
    try {
      await options.store.release(reservation);
    } catch (error) {
      log({ level: "error", event: "release.failed", requestId, error: String(error) });
    }
  }

  async function handleLlm(
    api: ClientApi,
    kind: EndpointKind,
    endpoint: string,
    req: IncomingMessage,
    res: ServerResponse,
    raw: Buffer,
    t0: number,
    proxied?: ProxiedCall,
  ): Promise<void> {
    const requestId = nextRequestId();
    let provider = "";
    res.setHeader("x-request-id", requestId);
    res.setHeader("x-bottlekit-request-id", requestId);
    // A client that goes away at any point aborts the upstream request (or stops it being sent).
    // undici takes an EventEmitter as the signal ("abort" event): cheaper per call than an
    // AbortController, whose signal and EventTarget listener cost ~10 µs on every request.
    const abortUpstream = new EventEmitter();
    let clientGone = false;
    res.once("close", () => {
      if (!res.writableFinished) {
        clientGone = true;
        abortUpstream.emit("abort");
      }
    });
    res.once("finish", () => {
      metrics.requests.inc([endpoint, String(res.statusCode), provider]);
      metrics.latency.observe([endpoint, provider], (performance.now() - t0) / 1000);
    });

    // 1. identity: the gateway key (API door) or the bottle session (proxy door)
    let proxiedProvider: string | undefined;
    if (proxied !== undefined) {
      proxiedProvider = providerOfHost(proxied.host);
      if (proxiedProvider === undefined) {
        return sendError(
          res,
          api,
          403,
          "permission_error",
          `${proxied.host} is not the API host of a known provider`,
        );
      }
    }
    const who: IdentityResult =
      proxied === undefined
        ? await options.identity.resolve(req.headers)
        : {
            ok: true,
            identity: {
              bottle: proxied.bottle,
              agent: proxied.agent ?? "default",
              parents: [],
              keyId: undefined,
            },
            credentialHeader: agentCredentialHeader(req),
            foreignCredential: undefined,
          };
    if (!who.ok) return sendError(res, api, who.status, "authentication_error", who.message);
    const identity = who.identity;

    // 2. parse
    let text = raw.toString("utf8");
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      return sendError(
        res,
        api,
        400,
        "invalid_request_error",
        "the request body is not valid JSON",
      );
    }
    const facts = readFacts(api, body, kind);
    if (typeof facts === "string") return sendError(res, api, 400, "invalid_request_error", facts);

    // 3. route (the proxy door routes to the provider whose host the agent addressed)
    const routed = options.router.route(
      api,
      proxiedProvider !== undefined && !facts.model.startsWith(`${proxiedProvider}/`)
        ? `${proxiedProvider}/${facts.model}`
        : facts.model,
    );
    if (!routed.ok) return sendError(res, api, routed.status, routed.type, routed.message);
    const target = routed.target;
    provider = target.provider;

    // 4. a client never holds a provider credential, unless the provider is passthrough
    let clientCredential: string | undefined;
    if (who.foreignCredential !== undefined) {
      if (target.passthrough) clientCredential = who.foreignCredential;
      else if (options.dlp.isProviderCredential(who.foreignCredential)) {
        metrics.dlpFindings.inc(["outbound", "client_credential", "block"]);
        return sendError(
          res,
          api,
          401,
          "authentication_error",
          `clients must not send provider credentials to the gateway: it injects ${target.provider}'s key itself. Use a gateway key (\`bottle-gateway keys create\`), or configure ${target.provider} with passthrough_auth`,
        );
      }
    } else if (target.passthrough) {
      return sendError(
        res,
        api,
        401,
        "authentication_error",
        `provider ${target.provider} is configured with passthrough_auth: send its credential as Authorization or x-api-key`,
      );
    }

    // 5. outbound DLP (headers + body)
    const upstreamRef = { origin: target.origin, path: target.pathname };
    const verdict = options.dlp.outbound(req.headers, text, who.credentialHeader, upstreamRef);
    if (verdict.action === "no_route") {
      return sendError(
        res,
        api,
        403,
        "permission_error",
        `no egress route covers ${target.origin}${target.pathname}; add a route for this host to the gateway config's routes`,
      );
    }
    if (verdict.findings.length > 0) recordFindings("outbound", verdict.findings, verdict.action);
    if (verdict.action === "block") {
      log({
        level: "warn",
        event: "dlp.outbound.blocked",
        requestId,
        bottle: identity.bottle,
        findings: verdict.findings,
      });
      return sendError(
        res,
        api,
        403,
        "dlp_blocked",
        "the request was blocked by the gateway's data-loss policy: it carries a secret or credential",
        {
          findings: verdict.findings.map((f) => ({
            detector: f.detector,
            rule: f.rule,
            surface: f.surface,
          })),
        },
      );
    }
    let redacted = false;
    if (verdict.action === "redact") {
      redacted = true;
      log({ level: "warn", event: "dlp.outbound.redacted", requestId, findings: verdict.findings });
      text = verdict.body;
      try {
        body = JSON.parse(text);
      } catch {
        return sendError(
          res,
          api,
          403,
          "dlp_blocked",
          "redaction left the body unparseable; blocked",
        );
      }
    }

    // 6. the upstream body: re-serialized only when something must change
    const injectUsage =
      !target.translated &&
      facts.stream &&
      api === "openai-chat" &&
      target.streamUsageOption &&
      !facts.clientWantsUsage;
    let out: Buffer | string;
    if (target.translated) {
      // Translation stage: the body in the provider's native API (model id included).
      if (kind === "count_tokens") {
        // The provider has no Anthropic token counter: the gateway's estimate, marked as such.
        const estimate = JSON.stringify({ input_tokens: Math.ceil(Buffer.byteLength(text) / 4) });
        res.writeHead(200, {
          "content-type": "application/json",
          "content-length": Buffer.byteLength(estimate),
          "x-bottlekit-token-count": "estimate",
        });
        res.end(estimate);
        return;
      }
      if (kind !== "generate") {
        return sendError(
          res,
          api,
          400,
          "invalid_request_error",
          `${endpoint} is not translated: model "${facts.model}" resolves to provider ${target.provider}, which speaks ${target.api}, not ${api}`,
        );
      }
      const t = translateRequestBody(
        api,
        target,
        body as Record<string, unknown>,
        target.maxOutput ?? defaultMaxTokens,
      );
      if (!t.ok) {
        return sendError(res, api, 400, "invalid_request_error", t.message, { param: t.field });
      }
      body = t.body;
      out = JSON.stringify(t.body);
    } else if (target.model !== facts.model || injectUsage) {
      const b = body as Record<string, unknown>;
      b["model"] = target.model;
      if (injectUsage) {
        const so = b["stream_options"];
        b["stream_options"] = {
          ...(typeof so === "object" && so !== null ? so : {}),
          include_usage: true,
        };
      }
      out = JSON.stringify(b);
    } else {
      out = redacted ? text : raw;
    }
    let outBytes = typeof out === "string" ? Buffer.byteLength(out) : out.length;
    if (kind === "count_tokens") {
      return countTokens(res, identity, target, out, outBytes, clientCredential, req, requestId);
    }

    // 7. reserve: input estimate (bytes / 4, rounded up) plus the output cap
    const requestedCap =
      kind === "embeddings" ? 0 : (facts.maxTokens ?? target.maxOutput ?? defaultMaxTokens);
    let cap = requestedCap;
    let estimate = Math.ceil(outBytes / 4) + cap;
    const reserve = (tokens: number): Promise<ReserveResult> =>
      options.store.reserve({
        bottle: identity.bottle,
        parents: identity.parents,
        agent: identity.agent,
        provider: target.provider,
        estimateTokens: tokens,
        requestId,
      });
    let reservation: ReserveResult;
    let clamped = false;
    try {
      reservation = await reserve(estimate);
      // The budget cannot hold the client's output cap: lower the cap in the forwarded request to
      // what the budget still allows (re-serializing the body), rather than refusing. Refused only
      // when the input estimate alone leaves less than `minClampTokens` of room. A retry covers a
      // concurrent call taking the room between the two reserves.
      for (
        let attempt = 0;
        attempt < 3 && !reservation.ok && reservation.reason === "insufficient";
        attempt++
      ) {
        const b = body as Record<string, unknown>;
        const key = target.translated
          ? upstreamCapKey(target.api, target.provider)
          : (facts.capKey ?? defaultCapKey(api, target.provider));
        // The body's size depends on the cap's digits: settle the cap so that the new body's
        // estimate plus the cap is exactly the room left (a few passes; digits only change
        // by one), then trim whatever a last oscillation still overshoots.
        let room = reservation.remaining - Math.ceil(outBytes / 4);
        if (room < minClampTokens || room >= cap) break;
        b["model"] = target.model;
        let next = "";
        let nextBytes = 0;
        for (let pass = 0; pass < 4; pass++) {
          b[key] = room;
          next = JSON.stringify(b);
          nextBytes = Buffer.byteLength(next);
          const fit = reservation.remaining - Math.ceil(nextBytes / 4);
          if (fit === room) break;
          room = fit;
        }
        if (b[key] !== room) {
          b[key] = room;
          next = JSON.stringify(b);
          nextBytes = Buffer.byteLength(next);
        }
        const over = Math.ceil(nextBytes / 4) + room - reservation.remaining;
        if (over > 0) {
          // A smaller cap has no more digits: this pass cannot overshoot again.
          room -= over;
          b[key] = room;
          next = JSON.stringify(b);
          nextBytes = Buffer.byteLength(next);
        }
        if (room < minClampTokens || Math.ceil(nextBytes / 4) + room > reservation.remaining) break;
        cap = room;
        out = next;
        outBytes = nextBytes;
        estimate = Math.ceil(outBytes / 4) + cap;
        clamped = true;
        reservation = await reserve(estimate);
      }
    } catch (error) {
      log({ level: "error", event: "reserve.failed", requestId, error: String(error) });
      return sendError(
        res,
        api,
        503,
        "api_error",
        "the budget store is unavailable; refusing the call (fail closed)",
      );
    }
    if (!reservation.ok) {
      metrics.budgetRefusals.inc([identity.bottle, target.provider, reservation.reason]);
      const inputEstimate = Math.ceil(outBytes / 4);
      const advice = await budgetRetryAdvice(options.store, identity, target.provider, reservation);
      const resets =
        advice.retryAfterS === undefined
          ? ""
          : ` (the budget's window resets in ${advice.retryAfterS} s)`;
      const why =
        reservation.reason === "cut-off"
          ? advice.retryAfterS === undefined
            ? `bottle "${identity.bottle}" is cut off after a budget crossing, until an operator restores it`
            : `bottle "${identity.bottle}" is cut off after a budget crossing${resets}`
          : reservation.reason === "exhausted"
            ? `the ${reservation.scope.scope} budget "${reservation.scope.key}" for ${reservation.scope.provider} is spent${resets}`
            : `the ${reservation.scope.scope} budget "${reservation.scope.key}" for ${reservation.scope.provider} has ${reservation.remaining} tokens left, not enough for this call's input (estimated ${inputEstimate} tokens) plus the smallest output cap the gateway clamps to (${minClampTokens}); shorten the conversation or raise the budget${resets}`;
      log({
        level: "warn",
        event: "budget.refused",
        requestId,
        bottle: identity.bottle,
        agent: identity.agent,
        provider: target.provider,
        reason: reservation.reason,
        remaining: reservation.remaining,
      });
      return sendError(
        res,
        api,
        refusalStatus(req, advice.shouldRetry),
        "budget_exceeded",
        why,
        {
          reason: reservation.reason,
          scope: reservation.scope,
          remaining: reservation.remaining,
        },
        adviceHeaders(advice),
      );
    }
    if (clamped) {
      res.setHeader("x-bottlekit-max-tokens-clamped", String(cap));
      res.setHeader("x-bottlekit-max-tokens-requested", String(requestedCap));
      log({
        level: "info",
        event: "budget.clamped",
        requestId,
        bottle: identity.bottle,
        provider: target.provider,
        requested: requestedCap,
        clamped: cap,
      });
    }
    const reservationId = reservation.id;

    // 8. forward
    const headers = upstreamHeaders(req, target, outBytes, requestId, clientCredential);
    const upstreamBody = out;

    if (clientGone) {
      // The client left while we were checking: nothing goes upstream.
      await release(reservationId, requestId);
      log({ level: "info", event: "client.disconnected", requestId, phase: "before-upstream" });
      return;
    }

    const tUp = performance.now();
    let upstream: Awaited<ReturnType<Pool["request"]>>;
    try {
      upstream = await poolFor(target.origin).request({
        path: kind === "generate" ? target.path : endpointUpstreamPath(target.path, kind),
        method: "POST",
        headers,
        body: upstreamBody,
        signal: abortUpstream,
      });
    } catch (error) {
      await release(reservationId, requestId);
      if (clientGone) {
        log({ level: "info", event: "client.disconnected", requestId, phase: "headers" });
        return;
      }
      const c = classifyUpstreamError(error);
      metrics.upstreamErrors.inc([target.provider, c.kind]);
      log({
        level: "error",
        event: "upstream.failed",
        requestId,
        provider: target.provider,
        kind: c.kind,
      });
      return sendError(res, api, c.status, c.type, `${c.message} (provider ${target.provider})`);
    }
    metrics.upstreamLatency.observe([target.provider], (performance.now() - tUp) / 1000);

    const status = upstream.statusCode;
    forwardUpstreamHeaders(upstream.headers, res);
    const ctype = upstream.headers["content-type"];
    const contentType = typeof ctype === "string" ? ctype : "application/json";

    // Upstream error: pass its body through (it already has the client API's shape); no charge.
    if (status >= 400) {
      let errBody: Buffer;
      try {
        errBody = Buffer.from(await upstream.body.arrayBuffer());
      } catch {
        errBody = Buffer.alloc(0);
      }
      await release(reservationId, requestId);
      if (status >= 500) metrics.upstreamErrors.inc([target.provider, `status_${status}`]);
      log({
        level: "warn",
        event: "upstream.error_status",
        requestId,
        provider: target.provider,
        status,
      });
      if (errBody.length === 0 || !contentType.includes("json")) {
        return sendError(
          res,
          api,
          status >= 500 ? 502 : status,
          "upstream_error",
          `the upstream answered HTTP ${status} (provider ${target.provider})`,
        );
      }
      if (target.translated) {
        // The upstream's error in the client API's shape (its message and type kept).
        const translated = translateErrorBody(api, errBody);
        if (translated === undefined) {
          return sendError(
            res,
            api,
            status >= 500 ? 502 : status,
            "upstream_error",
            `the upstream answered HTTP ${status} (provider ${target.provider})`,
          );
        }
        errBody = Buffer.from(translated);
      }
      if (!res.headersSent) {
        res.writeHead(status, { "content-type": contentType, "content-length": errBody.length });
        res.end(errBody);
      }
      return;
    }

    const isStream = contentType.startsWith("text/event-stream");
    if (!isStream) {
      // Non-streamed: read it all (usage lives in the JSON), scan, forward the same bytes.
      let buf: Buffer;
      try {
        buf = Buffer.from(await upstream.body.arrayBuffer());
      } catch (error) {
        await settle(reservationId, identity, target, missingUsage(), requestId);
        if (clientGone) return;
        const c = classifyUpstreamError(error);
        metrics.upstreamErrors.inc([target.provider, c.kind]);
        return sendError(res, api, c.status, c.type, `${c.message} (provider ${target.provider})`);
      }
      let usage: MeteredUsage;
      let parsed: unknown;
      try {
        parsed = JSON.parse(buf.toString("utf8"));
        usage = options.metering.parse(target.api, parsed);
      } catch {
        usage = missingUsage();
      }
      const said = responseText(target.api, parsed);
      let findings: DlpFinding[];
      if (options.dlp.inboundOnce !== undefined)
        findings = options.dlp.inboundOnce(upstreamRef, said);
      else {
        const scan = options.dlp.inbound(upstreamRef);
        findings = scan.write(said).concat(scan.end());
      }
      if (findings.length > 0) {
        if (reportInbound(findings, requestId)) {
          void settle(reservationId, identity, target, usage, requestId);
          return sendError(
            res,
            api,
            502,
            "dlp_blocked",
            "the upstream response was blocked by the gateway's prompt-injection policy",
            {
              findings: findings.map((f) => ({
                detector: f.detector,
                rule: f.rule,
                surface: "response",
              })),
            },
          );
        }
        res.setHeader("x-bottlekit-inbound-findings", String(findings.length));
      }
      if (target.translated) {
        let answer: string;
        try {
          answer = translateResponseText(target.api, api, parsed);
        } catch (error) {
          // The upstream answered and is charged; the client gets why it cannot see the answer.
          await settle(reservationId, identity, target, usage, requestId);
          metrics.upstreamErrors.inc([target.provider, "untranslatable"]);
          return sendError(
            res,
            api,
            502,
            "upstream_error",
            `the upstream's ${target.api} response cannot be translated to ${api}: ${error instanceof Error ? error.message : String(error)} (provider ${target.provider})`,
          );
        }
        res.writeHead(status, {
          "content-type": "application/json",
          "content-length": Buffer.byteLength(answer),
        });
        res.end(answer);
      } else {
        res.writeHead(status, { "content-type": contentType, "content-length": buf.length });
        res.end(buf);
      }
      await settle(reservationId, identity, target, usage, requestId);
      return;
    }

    // Streamed: forward chunk by chunk with backpressure, tapping usage and scanning as we go.
    // Usage tap, scan and completeness read the upstream's own bytes in its own API; a translated
    // stream is re-framed for the client after them.
    const tap = options.metering.tap(target.api);
    const scan = options.dlp.inbound(upstreamRef);
    const extractor = new TextExtractor(target.api);
    const stripper = injectUsage ? new UsageStripper() : undefined;
    const stage = target.translated
      ? new StreamStage(target.api, api, facts.clientWantsUsage)
      : undefined;
    let first = true;
    let failure: unknown;
    let blocked = false;
    res.writeHead(status, {
      "content-type": contentType,
      "cache-control": "no-cache",
      connection: "keep-alive",
    });
    try {
      for await (const chunk of upstream.body as AsyncIterable<Buffer>) {
        tap.write(chunk);
        const said = extractor.push(chunk);
        const findings = said.length > 0 ? scan.write(said) : NO_FINDINGS;
        if (findings.length > 0 && reportInbound(findings, requestId)) {
          blocked = true;
          break;
        }
        const piece =
          stage !== undefined
            ? stage.push(chunk)
            : stripper === undefined
              ? chunk
              : stripper.push(chunk);
        if (piece.length === 0) continue;
        if (first) {
          first = false;
          metrics.ttft.observe([target.provider, target.model], (performance.now() - t0) / 1000);
        }
        if (clientGone) break;
        if (!res.write(piece)) {
          if (!res.destroyed) await Promise.race([once(res, "drain"), once(res, "close")]);
          if (clientGone) break;
        }
      }
    } catch (error) {
      failure = error;
    }
    if (blocked) {
      abortUpstream.emit("abort");
      if (!clientGone) {
        res.end(
          errorEvent(
            api,
            "dlp_blocked",
            "the upstream response was blocked by the gateway's prompt-injection policy",
          ),
        );
      }
      // Usage read from a terminal event before the block is final; otherwise charged in full.
      await settle(reservationId, identity, target, tap.end(), requestId);
      return;
    }
    if (!clientGone && failure === undefined) {
      // Whatever text was still buffered (an unterminated last line) gets scanned too.
      const tail = scan.write(extractor.end()).concat(scan.end());
      if (tail.length > 0) {
        if (reportInbound(tail, requestId)) {
          res.end(
            errorEvent(
              api,
              "dlp_blocked",
              "the upstream response was blocked by the gateway's prompt-injection policy",
            ),
          );
          await settle(reservationId, identity, target, tap.end(), requestId);
          return;
        }
      }
    }
    if (stripper !== undefined && !clientGone && failure === undefined) {
      const rest = stripper.end();
      if (rest.length > 0) res.write(rest);
    }
    if (stage !== undefined && !clientGone && failure === undefined && extractor.complete) {
      const rest = stage.end();
      if (rest.length > 0) res.write(rest);
    }
    // Usage read from the terminal event is final: a client that closes right after it (openai
    // 7.x stops reading at `[DONE]`, Codex at `response.completed`) or an upstream that then drops
    // its connection does not make it a missing-usage call. `usageMissing` stays true, and the
    // reservation is charged, only when no final usage report arrived.
    const usage = tap.end();
    if (clientGone) {
      log({
        level: "info",
        event: "client.disconnected",
        requestId,
        phase: usage.usageMissing ? "stream" : "after-usage",
      });
      await settle(reservationId, identity, target, usage, requestId);
      return;
    }
    if (failure === undefined && extractor.complete && usage.usageMissing) {
      // A complete stream without a usage report: the client got everything; the ledger charges
      // the full reservation (fail closed) and flags it.
      log({
        level: "warn",
        event: "usage.missing",
        requestId,
        provider: target.provider,
        model: target.model,
      });
    }
    if (failure !== undefined || !extractor.complete) {
      const c =
        failure !== undefined
          ? classifyUpstreamError(failure)
          : {
              status: 502,
              type: "upstream_error" as const,
              kind: "truncated",
              message: "the upstream stream ended before it was complete",
            };
      metrics.upstreamErrors.inc([target.provider, failure === undefined ? "truncated" : c.kind]);
      log({
        level: "error",
        event: "upstream.stream_failed",
        requestId,
        provider: target.provider,
        kind: c.kind,
      });
      res.end(errorEvent(api, c.type, `${c.message} (provider ${target.provider})`));
      await settle(reservationId, identity, target, usage, requestId);
      return;
    }
    res.end();
    await settle(reservationId, identity, target, usage, requestId);
  }

  /** Headers of the upstream request: the client's allowed headers, then the provider's. */
  function upstreamHeaders(
    req: IncomingMessage,
    target: UpstreamTarget,
    bytes: number,
    requestId: string,
    clientCredential: string | undefined,
  ): Record<string, string> {
    const headers: Record<string, string> = {
      "content-type": "application/json",
      "content-length": String(bytes),
      "x-request-id": requestId,
    };
    const rh = req.headers;
    for (const h of FORWARDED_HEADERS) {
      const v = rh[h];
      if (typeof v === "string") headers[h] = v;
    }
    for (const k in target.headers) headers[k] = target.headers[k] as string;
    if (clientCredential !== undefined && target.authHeader !== undefined) {
      headers[target.authHeader] =
        target.authHeader === "authorization" ? `Bearer ${clientCredential}` : clientCredential;
    }
    return headers;
  }

  /**
   * `POST /v1/messages/count_tokens`: free, so not metered. Forwarded (after identity, routing
   * and the outbound DLP scan, like any call) to the provider's own counter; when the provider
   * has none (404/405), or the bottle is cut off (nothing leaves a cut-off bottle), answered
   * with the gateway's estimate (bytes / 4), marked `x-bottlekit-token-count: estimate`.
   */
  async function countTokens(
    res: ServerResponse,
    identity: CallerIdentity,
    target: UpstreamTarget,
    out: Buffer | string,
    outBytes: number,
    clientCredential: string | undefined,
    req: IncomingMessage,
    requestId: string,
  ): Promise<void> {
    const estimate = (): void => {
      const body = JSON.stringify({ input_tokens: Math.ceil(outBytes / 4) });
      res.writeHead(200, {
        "content-type": "application/json",
        "content-length": Buffer.byteLength(body),
        "x-bottlekit-token-count": "estimate",
      });
      res.end(body);
    };
    let cutOff: boolean;
    try {
      cutOff = await options.store.isCutOff(identity.bottle);
    } catch {
      cutOff = true;
    }
    if (cutOff) return estimate();
    let upstream: Awaited<ReturnType<Pool["request"]>>;
    try {
      upstream = await poolFor(target.origin).request({
        path: endpointUpstreamPath(target.path, "count_tokens"),
        method: "POST",
        headers: upstreamHeaders(req, target, outBytes, requestId, clientCredential),
        body: out,
      });
    } catch (error) {
      const c = classifyUpstreamError(error);
      return sendError(
        res,
        "anthropic-messages",
        c.status,
        c.type,
        `${c.message} (provider ${target.provider})`,
      );
    }
    const buf = Buffer.from(await upstream.body.arrayBuffer().catch(() => new ArrayBuffer(0)));
    if (upstream.statusCode === 404 || upstream.statusCode === 405) return estimate();
    forwardUpstreamHeaders(upstream.headers, res);
    const ct = upstream.headers["content-type"];
    res.writeHead(upstream.statusCode, {
      "content-type": typeof ct === "string" ? ct : "application/json",
      "content-length": buf.length,
      "x-bottlekit-token-count": "provider",
    });
    res.end(buf);
  }

  function missingUsage(): MeteredUsage {
    return {
      inputTokens: 0,
      outputTokens: 0,
      cacheReadTokens: 0,
      cacheWriteTokens: 0,
      reasoningTokens: 0,
      usageMissing: true,
    };
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
  server.on("upgrade", (_req, socket) => {
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
