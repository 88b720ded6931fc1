/**
 * What the gateway knows about each client-facing wire API: its path, where the model, stream
 * flag and output cap live in a request, and how its errors look. Everything here is O(1) per
 * request (lookups on pre-built tables) except the error serializers, which run off the hot path.
 */

/** The client-facing APIs the gateway serves. */
export type ClientApi = "openai-chat" | "openai-responses" | "anthropic-messages";

/** Request path → client API. Exact match on the path without its query string. */
export const API_BY_PATH: ReadonlyMap<string, ClientApi> = new Map([
  ["/v1/chat/completions", "openai-chat"],
  ["/v1/responses", "openai-responses"],
  ["/v1/messages", "anthropic-messages"],
]);

/** The request fields the gateway reads. Parsed once, from the client's JSON body. */
export interface RequestFacts {
  model: string;
  stream: boolean;
  /** The client's own output cap, if it set one. */
  maxTokens: number | undefined;
  /** OpenAI chat: the client itself asked for `stream_options.include_usage`. */
  clientWantsUsage: boolean;
}

function num(v: unknown): number | undefined {
  return typeof v === "number" && Number.isFinite(v) && v >= 0 ? Math.floor(v) : undefined;
}

/** Reads the facts from a parsed body; returns an error message naming the key path when invalid. */
export function readFacts(api: ClientApi, body: unknown): RequestFacts | string {
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    return "request body must be a JSON object";
  }
  const b = body as Record<string, unknown>;
  const model = b["model"];
  if (typeof model !== "string" || model.length === 0) {
    return 'model: required, a non-empty string such as "openai/gpt-4o-mini"';
  }
  const stream = b["stream"] === true;
  let maxTokens: number | undefined;
  let clientWantsUsage = false;
  if (api === "openai-chat") {
    maxTokens = num(b["max_completion_tokens"]) ?? num(b["max_tokens"]);
    const so = b["stream_options"];
    clientWantsUsage =
      typeof so === "object" &&
      so !== null &&
      (so as Record<string, unknown>)["include_usage"] === true;
  } else if (api === "openai-responses") {
    maxTokens = num(b["max_output_tokens"]);
  } else {
    maxTokens = num(b["max_tokens"]);
    if (maxTokens === undefined) return "max_tokens: required by the Anthropic messages API";
  }
  return { model, stream, maxTokens, clientWantsUsage };
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
