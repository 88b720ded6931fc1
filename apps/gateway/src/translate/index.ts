// Translation between the three wire APIs, as a pipeline stage: a request in the client's API
// becomes one in the upstream's, and the upstream's answer (JSON or SSE) becomes the client's.
import {
  ChatStreamReader,
  ChatStreamWriter,
  readChatRequest,
  readChatResponse,
  writeChatRequest,
  writeChatResponse,
} from "./chat.ts";
import {
  EMPTY_CONTEXT,
  type IrEvent,
  type IrRequest,
  type IrResponse,
  type TranslationContext,
  TranslationError,
  type WireApi,
} from "./ir.ts";
import {
  MessagesStreamReader,
  MessagesStreamWriter,
  readMessagesRequest,
  readMessagesResponse,
  writeMessagesRequest,
  writeMessagesResponse,
} from "./messages.ts";
import {
  ResponsesStreamReader,
  ResponsesStreamWriter,
  readResponsesRequest,
  readResponsesResponse,
  writeResponsesRequest,
  writeResponsesResponse,
} from "./responses.ts";

export type {
  IrEvent,
  IrRequest,
  IrResponse,
  NamespacedName,
  TranslationContext,
  WireApi,
} from "./ir.ts";
export { EMPTY_CONTEXT, TranslationError } from "./ir.ts";

export interface TranslateOptions {
  /** Output cap for a target that requires one (Anthropic) when the client set none. */
  defaultMaxTokens?: number;
}

export function readRequest(api: WireApi, body: Record<string, unknown>): IrRequest {
  if (api === "openai-chat") return readChatRequest(body);
  if (api === "openai-responses") return readResponsesRequest(body);
  return readMessagesRequest(body);
}

export function writeRequest(
  api: WireApi,
  ir: IrRequest,
  options: TranslateOptions = {},
): Record<string, unknown> {
  if (api === "openai-chat") return writeChatRequest(ir);
  if (api === "openai-responses") return writeResponsesRequest(ir);
  return writeMessagesRequest(ir, options.defaultMaxTokens);
}

export function readResponse(api: WireApi, body: Record<string, unknown>): IrResponse {
  if (api === "openai-chat") return readChatResponse(body);
  if (api === "openai-responses") return readResponsesResponse(body);
  return readMessagesResponse(body);
}

export function writeResponse(
  api: WireApi,
  ir: IrResponse,
  context: TranslationContext = EMPTY_CONTEXT,
): Record<string, unknown> {
  if (api === "openai-chat") return writeChatResponse(ir);
  if (api === "openai-responses") return writeResponsesResponse(ir, context);
  return writeMessagesResponse(ir);
}

/** A request body in API `from`, rewritten for API `to`. Throws TranslationError naming the field. */
export function translateRequest(
  from: WireApi,
  to: WireApi,
  body: Record<string, unknown>,
  options: TranslateOptions = {},
): Record<string, unknown> {
  return translateRequestWithContext(from, to, body, options).body;
}

/**
 * Like `translateRequest`, with what the response's translation must know about the request
 * (the flattened names of namespaced tools).
 */
export function translateRequestWithContext(
  from: WireApi,
  to: WireApi,
  body: Record<string, unknown>,
  options: TranslateOptions = {},
): { body: Record<string, unknown>; context: TranslationContext } {
  const ir = readRequest(from, body);
  return {
    body: writeRequest(to, ir, options),
    context: ir.toolNames === undefined ? EMPTY_CONTEXT : { toolNames: ir.toolNames },
  };
}

/** A complete (non-streamed) response body of API `from`, as API `to` writes it. */
export function translateResponse(
  from: WireApi,
  to: WireApi,
  body: Record<string, unknown>,
  context: TranslationContext = EMPTY_CONTEXT,
): Record<string, unknown> {
  return writeResponse(to, readResponse(from, body), context);
}

export interface StreamTranslator {
  /** Bytes of the upstream's SSE body (any split); returns the client's SSE text for them. */
  push(chunk: string): string;
  /** The upstream body ended: whatever closes the client's stream. */
  end(): string;
  /** Every IR event seen so far (for tests and diagnostics). */
  readonly events: readonly IrEvent[];
}

/**
 * Re-frames an SSE stream of API `from` as one of API `to`. Linear in the input: each frame is
 * parsed once; partial frames wait for their end. `includeUsage`: an OpenAI chat client asked
 * for `stream_options.include_usage`.
 */
export function createStreamTranslator(
  from: WireApi,
  to: WireApi,
  options: { includeUsage?: boolean; context?: TranslationContext } = {},
): StreamTranslator {
  const reader =
    from === "openai-chat"
      ? new ChatStreamReader()
      : from === "openai-responses"
        ? new ResponsesStreamReader()
        : new MessagesStreamReader();
  const writer =
    to === "openai-chat"
      ? new ChatStreamWriter(options.includeUsage === true)
      : to === "openai-responses"
        ? new ResponsesStreamWriter(options.context)
        : new MessagesStreamWriter();
  const events: IrEvent[] = [];
  let buffer = "";
  let ended = false;

  const frame = (text: string): string => {
    const data = text
      .split("\n")
      .filter((l) => l.startsWith("data:"))
      .map((l) => l.slice(l[5] === " " ? 6 : 5))
      .join("\n");
    if (data === "") return "";
    let out = "";
    let irs: IrEvent[];
    try {
      irs = reader.read(data);
    } catch (error) {
      if (error instanceof TranslationError) irs = [{ type: "error", message: error.message }];
      else
        irs = [
          { type: "error", message: "the upstream sent a stream event that is not valid JSON" },
        ];
    }
    for (const e of irs) {
      events.push(e);
      out += writer.write(e);
    }
    return out;
  };

  return {
    events,
    push(chunk) {
      buffer += chunk.replace(/\r\n/g, "\n");
      let out = "";
      for (let i = buffer.indexOf("\n\n"); i !== -1; i = buffer.indexOf("\n\n")) {
        out += frame(buffer.slice(0, i));
        buffer = buffer.slice(i + 2);
      }
      return out;
    },
    end() {
      if (ended) return "";
      ended = true;
      const out = buffer.trim() ? frame(buffer) : "";
      buffer = "";
      return out + writer.end();
    },
  };
}
