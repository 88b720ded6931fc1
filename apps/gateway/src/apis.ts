/**
 * What the gateway knows about each client-facing wire API: its path, where the model, stream
 * flag and output cap live in a request, and how its errors look. Everything here is O(1) per
 * request (lookups on pre-built tables) except the error serializers, which run off the hot path.
 */

/** The client-facing APIs the gateway serves. */
export type ClientApi = "openai-chat" | "openai-responses" | "anthropic-messages";

/**
 * What a POST endpoint does with its call:
 * - `generate`: a model call, metered (reserve, settle);
 * - `compact`: OpenAI's `/responses/compact`, a metered model call answered as JSON;
 * - `embeddings`: OpenAI's `/embeddings`, metered on its input tokens (no output cap);
 * - `count_tokens`: Anthropic's token counter, free: forwarded unmetered where the provider
 *   has it, otherwise answered with the gateway's own estimate, marked as such.
 */
export type EndpointKind = "generate" | "compact" | "embeddings" | "count_tokens";

export interface Endpoint {
  api: ClientApi;
  kind: EndpointKind;
}

/** Request path → endpoint. Exact match on the path without its query string. */
export const ENDPOINT_BY_PATH: ReadonlyMap<string, Endpoint> = new Map<string, Endpoint>([
  ["/v1/chat/completions", { api: "openai-chat", kind: "generate" }],
  ["/v1/responses", { api: "openai-responses", kind: "generate" }],
  ["/v1/messages", { api: "anthropic-messages", kind: "generate" }],
  ["/v1/responses/compact", { api: "openai-responses", kind: "compact" }],
  ["/v1/embeddings", { api: "openai-chat", kind: "embeddings" }],
  ["/v1/messages/count_tokens", { api: "anthropic-messages", kind: "count_tokens" }],
]);

/** Request path → client API, for the model-call endpoints. */
export const API_BY_PATH: ReadonlyMap<string, ClientApi> = new Map(
  [...ENDPOINT_BY_PATH].map(([path, e]) => [path, e.api]),
);

/**
 * The upstream path of a non-`generate` endpoint, from the routed path of its API (which may
 * carry a query-style credential after `?`).
 */
export function endpointUpstreamPath(routedPath: string, kind: EndpointKind): string {
  if (kind === "generate") return routedPath;
  const q = routedPath.indexOf("?");
  const path = q === -1 ? routedPath : routedPath.slice(0, q);
  const query = q === -1 ? "" : routedPath.slice(q);
  if (kind === "embeddings")
    return `${path.replace(/\/chat\/completions$/, "")}/embeddings${query}`;
  if (kind === "compact") return `${path}/compact${query}`;
  return `${path}/count_tokens${query}`;
}

/** The request fields the gateway reads. Parsed once, from the client's JSON body. */
export interface RequestFacts {
  model: string;
  stream: boolean;
  /** The client's own output cap, if it set one. */
  maxTokens: number | undefined;
  /** The body key that holds the client's cap (`max_tokens`, `max_completion_tokens`, …). */
  capKey: OutputCapKey | undefined;
  /** OpenAI chat: the client itself asked for `stream_options.include_usage`. */
  clientWantsUsage: boolean;
}

/** Body keys that cap a call's output, per wire API. */
export type OutputCapKey = "max_tokens" | "max_completion_tokens" | "max_output_tokens";

/**
 * Largest output cap the gateway accepts (10 million tokens: far above any model's real limit,
 * far below where token arithmetic loses integer precision). A larger or non-integer value is
 * the client's mistake and gets a 400 naming the key, never a store error.
 */
export const MAX_OUTPUT_CAP = 10_000_000;

/** A cap value: absent/null → undefined; a valid integer → the number; else an error message. */
function cap(b: Record<string, unknown>, key: OutputCapKey): number | undefined | string {
  const v = b[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "number" || !Number.isInteger(v) || v < 1 || v > MAX_OUTPUT_CAP) {
    const shown = typeof v === "number" ? String(v) : JSON.stringify(v);
    return `${key}: must be an integer from 1 to ${MAX_OUTPUT_CAP} (got ${shown})`;
  }
  return v;
}

/** Reads the facts from a parsed body; returns an error message naming the key path when invalid. */
export function readFacts(
  api: ClientApi,
  body: unknown,
  kind: EndpointKind = "generate",
): RequestFacts | string {
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    return "request body must be a JSON object";
  }
  const b = body as Record<string, unknown>;
  const model = b["model"];
  if (typeof model !== "string" || model.length === 0) {
    return 'model: required, a non-empty string such as "openai/gpt-4o-mini"';
  }
  const st = b["stream"];
  if (st !== undefined && st !== null && typeof st !== "boolean") {
    return `stream: must be true or false (got ${JSON.stringify(st)})`;
  }
  const stream = st === true;
  if (kind !== "generate") {
    // No output cap to read: embeddings and token counts have no output; a compaction's
    // output is bounded by the gateway's default cap.
    if (stream) return "stream: not supported on this endpoint";
    return { model, stream, maxTokens: undefined, capKey: undefined, clientWantsUsage: false };
  }
  let maxTokens: number | undefined;
  let capKey: OutputCapKey | undefined;
  let clientWantsUsage = false;
  if (api === "openai-chat") {
    const mct = cap(b, "max_completion_tokens");
    if (typeof mct === "string") return mct;
    const mt = cap(b, "max_tokens");
    if (typeof mt === "string") return mt;
    if (mct !== undefined) {
      maxTokens = mct;
      capKey = "max_completion_tokens";
    } else if (mt !== undefined) {
      maxTokens = mt;
      capKey = "max_tokens";
    }
    const so = b["stream_options"];
    clientWantsUsage =
      typeof so === "object" &&
      so !== null &&
      (so as Record<string, unknown>)["include_usage"] === true;
  } else if (api === "openai-responses") {
    const mot = cap(b, "max_output_tokens");
    if (typeof mot === "string") return mot;
    maxTokens = mot;
    if (mot !== undefined) capKey = "max_output_tokens";
  } else {
    const mt = cap(b, "max_tokens");
    if (typeof mt === "string") return mt;
    if (mt === undefined) return "max_tokens: required by the Anthropic messages API";
    maxTokens = mt;
    capKey = "max_tokens";
  }
  return { model, stream, maxTokens, capKey, clientWantsUsage };
}

/** Error `type` values the gateway itself emits (upstream errors pass through unchanged). */
export type GatewayErrorType =
  | "invalid_request_error"
  | "authentication_error"
  | "permission_error"
  | "not_found_error"
  | "budget_exceeded"
  | "dlp_blocked"
  | "upstream_error"
  | "upstream_timeout"
  | "upstream_connection_error"
  | "overloaded_error"
  | "api_error";

/**
 * Serializes an error in the client API's own shape, so the official SDKs surface it as a normal
 * API error: OpenAI `{error:{message,type,param,code}}`, Anthropic `{type:"error",error:{type,message}}`.
 * `extra` fields (scope, remaining, findings) are added next to `type` and `message`.
 */
export function errorJson(
  api: ClientApi | undefined,
  type: GatewayErrorType,
  message: string,
  extra?: Record<string, unknown>,
): string {
  if (api === "anthropic-messages") {
    return JSON.stringify({ type: "error", error: { type, message, ...extra } });
  }
  return JSON.stringify({ error: { message, type, param: null, code: type, ...extra } });
}

/**
 * An in-stream error event for a stream whose headers are already sent: the official SDKs turn
 * it into an APIError on the client side.
 */
export function errorEvent(
  api: ClientApi,
  type: GatewayErrorType,
  message: string,
  extra?: Record<string, unknown>,
): string {
  if (api === "anthropic-messages") {
    return `event: error\ndata: ${JSON.stringify({ type: "error", error: { type, message, ...extra } })}\n\n`;
  }
  if (api === "openai-responses") {
    return `event: error\ndata: ${JSON.stringify({ type: "error", code: type, message, param: null, sequence_number: 0, ...extra })}\n\n`;
  }
  return `data: ${JSON.stringify({ error: { message, type, param: null, code: type, ...extra } })}\n\n`;
}
