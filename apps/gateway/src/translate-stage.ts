// The translation stage of the pipeline: used only for a route whose provider does not speak
// the client's wire API (`UpstreamTarget.translated`). A same-API call never enters this module.
import type { ClientApi, OutputCapKey } from "./apis.ts";
import {
  createStreamTranslator,
  EMPTY_CONTEXT,
  type StreamTranslator,
  type TranslationContext,
  TranslationError,
  translateRequestWithContext,
  translateResponse,
} from "./translate/index.ts";

export type { TranslationContext } from "./translate/index.ts";

/**
 * The key of a translated request's output cap. Chat Completions: OpenAI's own API takes
 * `max_completion_tokens` (its reasoning models refuse `max_tokens`); the other providers that
 * speak it (Mistral, Groq, local servers) take `max_tokens`, some refusing the newer key.
 */
export function upstreamCapKey(upstream: ClientApi, provider: string): OutputCapKey {
  if (upstream === "anthropic-messages") return "max_tokens";
  if (upstream === "openai-responses") return "max_output_tokens";
  return provider === "openai" ? "max_completion_tokens" : "max_tokens";
}

/** The upstream facts the request stage needs (a subset of `UpstreamTarget`). */
export interface TranslateTarget {
  api: ClientApi;
  model: string;
  provider: string;
  /** Chat Completions streams: usage must be asked for with `stream_options.include_usage`. */
  streamUsageOption: boolean;
}

export type TranslatedRequest =
  /** `context`: what the response's translation must know (hand it to the response stage). */
  | { ok: true; body: Record<string, unknown>; context: TranslationContext }
  | { ok: false; field: string; message: string };

/**
 * The client's body, rewritten for the upstream's API and model. What the upstream cannot
 * express is refused (the field named), never dropped.
 */
export function translateRequestBody(
  client: ClientApi,
  target: TranslateTarget,
  body: Record<string, unknown>,
  defaultMaxTokens: number,
): TranslatedRequest {
  const upstream = target.api;
  let out: Record<string, unknown>;
  let context: TranslationContext;
  try {
    ({ body: out, context } = translateRequestWithContext(client, upstream, body, {
      defaultMaxTokens,
    }));
  } catch (error) {
    if (error instanceof TranslationError) {
      return {
        ok: false,
        field: error.field,
        message: `${error.message} (the model's provider speaks ${upstream}, not ${client}; the gateway translates, and this cannot be expressed there)`,
      };
    }
    throw error;
  }
  out["model"] = target.model;
  if (upstream === "openai-chat") {
    const key = upstreamCapKey(upstream, target.provider);
    if (key !== "max_completion_tokens" && out["max_completion_tokens"] !== undefined) {
      out[key] = out["max_completion_tokens"];
      delete out["max_completion_tokens"];
    }
    // A provider that reports stream usage unasked may refuse the option.
    if (!target.streamUsageOption) delete out["stream_options"];
  }
  return { ok: true, body: out, context };
}

/** A complete JSON response of the upstream's API as the client's API writes it. */
export function translateResponseText(
  upstream: ClientApi,
  client: ClientApi,
  parsed: unknown,
  context: TranslationContext = EMPTY_CONTEXT,
): string {
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed))
    throw new TranslationError("(response)", "the upstream response is not a JSON object");
  return JSON.stringify(
    translateResponse(upstream, client, parsed as Record<string, unknown>, context),
  );
}

/** The message and type of an upstream error body, whichever API's shape it has. */
function readUpstreamError(buf: Buffer): { message: string; type: string } | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(buf.toString("utf8"));
  } catch {
    return undefined;
  }
  if (typeof parsed !== "object" || parsed === null) return undefined;
  const err = (parsed as Record<string, unknown>)["error"];
  if (typeof err === "object" && err !== null) {
    const e = err as Record<string, unknown>;
    const message = typeof e["message"] === "string" ? e["message"] : undefined;
    const type =
      typeof e["type"] === "string" ? e["type"] : typeof e["code"] === "string" ? e["code"] : "";
    if (message !== undefined) return { message, type: type || "upstream_error" };
  }
  return undefined;
}

/**
 * An upstream error body (non-2xx JSON in the upstream's API) in the client API's error shape,
 * keeping the upstream's message and type. Undefined when the body is no recognizable error.
 */
export function translateErrorBody(client: ClientApi, buf: Buffer): string | undefined {
  const e = readUpstreamError(buf);
  if (e === undefined) return undefined;
  if (client === "anthropic-messages")
    return JSON.stringify({ type: "error", error: { type: e.type, message: e.message } });
  return JSON.stringify({
    error: { message: e.message, type: e.type, param: null, code: e.type },
  });
}

/**
 * Re-frames the upstream's SSE bytes as the client's stream. UTF-8 sequences split across
 * chunks are held back until complete.
 */
export class StreamStage {
  private readonly decoder = new TextDecoder("utf-8");
  private readonly translator: StreamTranslator;
  constructor(
    upstream: ClientApi,
    client: ClientApi,
    includeUsage: boolean,
    context: TranslationContext = EMPTY_CONTEXT,
  ) {
    this.translator = createStreamTranslator(upstream, client, { includeUsage, context });
  }
  push(chunk: Uint8Array): string {
    return this.translator.push(this.decoder.decode(chunk, { stream: true }));
  }
  end(): string {
    const rest = this.decoder.decode();
    return (rest.length > 0 ? this.translator.push(rest) : "") + this.translator.end();
  }
}
