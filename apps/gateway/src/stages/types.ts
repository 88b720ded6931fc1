// What every stage of the LLM request pipeline shares: the per-call state (`Call`), the
// per-gateway dependencies (`Pipeline`) and the stage signature. A stage reads what the stages
// before it wrote on the call, writes its own result, and either lets the call go on (`true`) or
// answers the client itself and stops the pipeline (`false`).
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Store } from "@bottlekit/budget-store";
import type { Pool } from "undici";
import type { ClientApi, EndpointKind, RequestFacts } from "../apis.ts";
import type { GatewayDlp } from "../dlp-types.ts";
import type { CallerIdentity, IdentityResolver } from "../identity.ts";
import type { GatewayMetrics } from "../metrics.ts";
import type { Router, UpstreamTarget } from "../router.ts";
import type { TranslationContext } from "../translate-stage.ts";
import type { UpstreamExchange } from "./upstream.ts";

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

/**
 * The budget has cut a bottle off, as the gateway learned it on a call:
 * - `crossed`: this call's settle spent a budget (the store cut the bottle off);
 * - `cut-off`: a reserve was refused because the store has the bottle cut off (an operator's
 *   cutoff, or a crossing recorded by another gateway sharing the store).
 */
export interface CutoffNotice {
  bottle: string;
  reason: "crossed" | "cut-off";
  /** The proxy session the call came through (proxy door only). */
  sessionId: string | undefined;
  /** The call that learned of it; undefined when the store's cutoff feed told the gateway. */
  requestId: string | undefined;
}

/** A request to an upstream, answered: status, headers, and the body still to read. */
export type UpstreamResponse = UpstreamExchange;

/** The per-gateway dependencies every stage may use. Built once by `createGateway`. */
export interface Pipeline {
  readonly router: Router;
  readonly store: Store;
  readonly dlp: GatewayDlp;
  readonly identity: IdentityResolver;
  readonly metering: Metering;
  readonly metrics: GatewayMetrics;
  readonly log: (event: GatewayLogEvent) => void;
  /** Output cap assumed when neither the client nor the catalog gives one. */
  readonly defaultMaxTokens: number;
  /** Smallest output cap a call is clamped down to before it is refused instead. */
  readonly minClampTokens: number;
  /** The pooled connections to one upstream origin. */
  /** The origin's connection pool (a promise only until the HTTP client is loaded). */
  poolFor(origin: string): Pool | Promise<Pool>;
  /** Told when the budget cuts a bottle off (the proxy door drops the bottle's egress). */
  readonly onCutoff: ((notice: CutoffNotice) => void) | undefined;
  /** Per (bottle, agent, provider): when the remaining-budget gauge was last refreshed. */
  readonly lastRemainingUpdate: Map<string, number>;
  /** Calls in flight (from body read to their last stage), for `stopCalls`. */
  readonly live: Set<Call>;
}

/** Static facts of one call, known when its body has been read. */
export interface CallInit {
  api: ClientApi;
  kind: EndpointKind;
  /** The request path without its query (`/v1/messages`, …): the metrics label. */
  endpoint: string;
  req: IncomingMessage;
  res: ServerResponse;
  raw: Buffer;
  /** `performance.now()` when the request arrived. */
  t0: number;
  proxied: ProxiedCall | undefined;
  requestId: string;
}

/**
 * One LLM call's state as it moves through the stages. Each field is written by the stage named
 * beside it and read only by later stages. Every field is created by the constructor, so all
 * calls share one object shape (the hot path stays monomorphic).
 */
export class Call {
  readonly api: ClientApi;
  readonly kind: EndpointKind;
  readonly endpoint: string;
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly raw: Buffer;
  readonly t0: number;
  readonly proxied: ProxiedCall | undefined;
  readonly requestId: string;
  /** The client closed its connection before the response was complete. */
  clientGone = false;
  /**
   * Set when the bottle was cut off while this call ran (another gateway's crossing, an
   * operator): why, in words for the client. The upstream request is aborted; the call ends
   * with a `budget_exceeded` error and is charged as far as it got (its reservation when the
   * usage never arrived).
   */
  stopped: string | undefined = undefined;

  // identify
  identity!: CallerIdentity;
  credentialHeader: string | undefined = undefined;
  foreignCredential: string | undefined = undefined;
  /** Proxy door: the provider whose API host the agent addressed. */
  proxiedProvider: string | undefined = undefined;
  // parse (scan replaces text and body when it redacts)
  text = "";
  body: unknown = undefined;
  facts!: RequestFacts;
  // route
  target!: UpstreamTarget;
  /** The metrics label; "" until routed. */
  provider = "";
  // credential
  /** A client credential forwarded upstream (passthrough providers only). */
  clientCredential: string | undefined = undefined;
  // scan
  upstreamRef!: { origin: string; path: string };
  redacted = false;
  // body
  /** OpenAI chat stream: the gateway asked for usage the client did not, and strips it again. */
  injectUsage = false;
  out: Buffer | string = "";
  /** A translated call: what the response's translation must know (namespaced tool names, …). */
  translation: TranslationContext | undefined = undefined;
  outBytes = 0;
  // reserve
  requestedCap = 0;
  cap = 0;
  clamped = false;
  reservationId = "";
  // forward
  upstream!: UpstreamResponse;
  /** Set by `abortUpstream`: an upstream request made after it is aborted at once. */
  upstreamAborted = false;

  constructor(init: CallInit) {
    this.api = init.api;
    this.kind = init.kind;
    this.endpoint = init.endpoint;
    this.req = init.req;
    this.res = init.res;
    this.raw = init.raw;
    this.t0 = init.t0;
    this.proxied = init.proxied;
    this.requestId = init.requestId;
  }

  /** Aborts the upstream request (the client went away, the bottle was stopped, a block). */
  abortUpstream(): void {
    this.upstreamAborted = true;
    (this.upstream as UpstreamResponse | undefined)?.abort();
  }
}

/**
 * One stage: `true` lets the call go on to the next stage; `false` means the stage has answered
 * the client (or the client is gone) and the pipeline stops.
 */
export type Stage = (call: Call, p: Pipeline) => boolean | Promise<boolean>;
