import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { TestUtilsError } from "./errors.ts";
import {
  anthropicErrorBody,
  anthropicFrames,
  anthropicJson,
  type FakeToolCall,
  type FakeUsage,
  openaiChatFrames,
  openaiChatJson,
  openaiErrorBody,
  openaiResponsesFrames,
  openaiResponsesJson,
  type ResolvedReply,
} from "./wire.ts";

/** The wire APIs the fake upstream speaks. */
export type FakeApi = "openai-chat" | "openai-responses" | "anthropic-messages";

/**
 * A fault the upstream injects instead of (or in the middle of) a normal reply.
 * - `timeout`: reads the request, then never answers (until the caller gives up).
 * - `status`: answers with this HTTP status and a provider-shaped error body.
 * - `reset`: reads the request, then destroys the TCP connection without a response.
 * - `truncate`: streams `afterFrames` SSE frames, then drops the connection (`destroy`,
 *   the default) or ends the body cleanly without the closing frames (`end`).
 */
export type FakeFault =
  | { kind: "timeout" }
  | { kind: "status"; status: number; message?: string }
  | { kind: "reset" }
  | { kind: "truncate"; afterFrames: number; mode?: "destroy" | "end" };

/** What the next call (or every call) answers. Unset fields get deterministic defaults. */
export interface FakeReply {
  /** The assistant text. Split on word boundaries into streamed pieces unless `pieces` is set. */
  text?: string;
  pieces?: string[];
  toolCalls?: FakeToolCall[];
  /** Usage reported by the upstream. Defaults: input = ceil(request bytes / 4), output = pieces. */
  usage?: Partial<FakeUsage>;
  /**
   * Usage computed from the request (parsed body, raw body bytes), e.g. an output equal to the
   * request's `max_tokens`; fields it returns override `usage`.
   */
  usageFrom?: (body: unknown, rawBytes: number) => Partial<FakeUsage>;
  /** Delay between streamed frames, to exercise backpressure and disconnects. */
  frameDelayMs?: number;
  /** For OpenAI chat streams: never send the usage chunk, even when asked. */
  omitUsage?: boolean;
  /**
   * Streams: keep the body open this long after the last frame before ending it (real upstreams
   * end a few milliseconds after the terminal event; clients may close in between).
   */
  endDelayMs?: number;
  /** Extra response headers (rate-limit and retry hints, request ids), on success and on faults. */
  headers?: Record<string, string>;
  fault?: FakeFault;
}

/** One request the upstream received, with what it reported back. */
/**
 * Endpoints the fake upstream answers besides the three model-call APIs: OpenAI embeddings and
 * Responses compaction (both with usage), Anthropic's token counter.
 */
export type FakeExtraEndpoint = "openai-embeddings" | "openai-compact" | "anthropic-count-tokens";

export interface RecordedRequest {
  api: FakeApi | FakeExtraEndpoint | "models" | "unknown";
  method: string;
  path: string;
  headers: Record<string, string | string[] | undefined>;
  rawBody: string;
  body: unknown;
  /** Whether the request asked for a stream. */
  stream: boolean;
  /** The usage the upstream reported (undefined for faults and non-LLM paths). */
  usage: FakeUsage | undefined;
  /** True when the response was fully written. */
  completed: boolean;
  /** True when the client went away before the response was finished. */
  aborted: boolean;
}

export interface FakeUpstreamOptions {
  /** When set, OpenAI paths require `Authorization: Bearer <key>` and Anthropic `x-api-key`. */
  requireKey?: string;
  /** The reply used when the queue is empty. */
  defaultReply?: FakeReply;
  host?: string;
  port?: number;
  /** Record requests (default true). Turn off for benchmarks. */
  record?: boolean;
  /** Answer `POST …/messages/count_tokens` (default true); false → 404, as providers without it. */
  countTokens?: boolean;
}

export interface FakeUpstream {
  /** `http://host:port` (no path). OpenAI and Anthropic clients use `${url}/v1`. */
  readonly url: string;
  readonly port: number;
  readonly requests: RecordedRequest[];
  /** Queues replies for the next calls, in order. */
  enqueue(...replies: FakeReply[]): void;
  setDefaultReply(reply: FakeReply): void;
  /** Resolves once a request has been aborted by its client (or rejects after `timeoutMs`). */
  waitForAbort(timeoutMs?: number): Promise<RecordedRequest>;
  /** Forgets recorded requests and queued replies. */
  reset(): void;
  close(): Promise<void>;
}

const DEFAULT_TEXT = "Hello from the fake upstream.";

function splitWords(text: string): string[] {
  const pieces = text.match(/\s*\S+/g);
  return pieces ?? (text.length > 0 ? [text] : []);
}

function apiOf(method: string, path: string): RecordedRequest["api"] {
  const p = path.split("?")[0] ?? path;
  if (method === "GET" && p.endsWith("/models")) return "models";
  if (method !== "POST") return "unknown";
  if (p.endsWith("/embeddings")) return "openai-embeddings";
  if (p.endsWith("/responses/compact")) return "openai-compact";
  if (p.endsWith("/messages/count_tokens")) return "anthropic-count-tokens";
  if (p.endsWith("/chat/completions")) return "openai-chat";
  if (p.endsWith("/responses")) return "openai-responses";
  if (p.endsWith("/messages")) return "anthropic-messages";
  return "unknown";
}

let counter = 0;
function nextId(prefix: string): string {
  counter = (counter + 1) % 1_000_000_000;
  return `${prefix}${Date.now().toString(36)}${counter.toString(36).padStart(6, "0")}`;
}

const ID_PREFIX: Record<FakeApi, string> = {
  "openai-chat": "chatcmpl-",
  "openai-responses": "resp_",
  "anthropic-messages": "msg_",
};

function resolveReply(
  api: FakeApi,
  reply: FakeReply,
  body: unknown,
  rawLength: number,
): ResolvedReply {
  const pieces = reply.pieces ?? splitWords(reply.text ?? (reply.toolCalls ? "" : DEFAULT_TEXT));
  const toolCalls = (reply.toolCalls ?? []).map((t, i) => ({
    id: t.id ?? (api === "anthropic-messages" ? `toolu_fake${i}` : `call_fake${i}`),
    name: t.name,
    arguments: t.arguments,
  }));
  const outputDefault =
    pieces.length + toolCalls.reduce((n, t) => n + Math.ceil(t.arguments.length / 4), 0);
  const given = { ...reply.usage, ...reply.usageFrom?.(body, rawLength) };
  const usage: FakeUsage = {
    input: given.input ?? Math.max(1, Math.ceil(rawLength / 4)),
    output: given.output ?? Math.max(1, outputDefault),
    cacheRead: given.cacheRead ?? 0,
    cacheWrite: given.cacheWrite ?? 0,
    reasoning: given.reasoning ?? 0,
  };
  const model =
    typeof body === "object" &&
    body !== null &&
    typeof (body as { model?: unknown }).model === "string"
      ? (body as { model: string }).model
      : "fake-model";
  return {
    id: nextId(ID_PREFIX[api]),
    model,
    created: Math.floor(Date.now() / 1000),
    pieces,
    toolCalls,
    usage,
  };
}

function errorBody(api: RecordedRequest["api"], status: number, message: string): string {
  if (api === "anthropic-messages" || api === "anthropic-count-tokens") {
    const type =
      status === 401
        ? "authentication_error"
        : status === 429
          ? "rate_limit_error"
          : status === 529
            ? "overloaded_error"
            : status >= 500
              ? "api_error"
              : "invalid_request_error";
    return anthropicErrorBody(message, type);
  }
  const type =
    status === 401
      ? "invalid_request_error"
      : status >= 500
        ? "server_error"
        : "invalid_request_error";
  const code = status === 401 ? "invalid_api_key" : null;
  return openaiErrorBody(message, type, code);
}

function sendJson(
  res: ServerResponse,
  status: number,
  body: string,
  headers: Record<string, string> = {},
): void {
  res.writeHead(status, {
    ...headers,
    "content-type": "application/json",
    "content-length": Buffer.byteLength(body),
  });
  res.end(body);
}

function streamFlag(body: unknown): boolean {
  return (
    typeof body === "object" && body !== null && (body as { stream?: unknown }).stream === true
  );
}

function includeUsageFlag(body: unknown): boolean {
  if (typeof body !== "object" || body === null) return false;
  const so = (body as { stream_options?: unknown }).stream_options;
  return (
    typeof so === "object" &&
    so !== null &&
    (so as { include_usage?: unknown }).include_usage === true
  );
}

/**
 * Starts a local HTTP server that answers like OpenAI (chat completions, responses) and
 * Anthropic (messages), with JSON and SSE bodies, tool calls, usage events, and injectable
 * faults. Binds 127.0.0.1 on a free port unless told otherwise.
 */
export async function createFakeUpstream(options: FakeUpstreamOptions = {}): Promise<FakeUpstream> {
  const record = options.record ?? true;
  const requests: RecordedRequest[] = [];
  const queue: FakeReply[] = [];
  let defaultReply: FakeReply = options.defaultReply ?? {};
  const abortWaiters: ((r: RecordedRequest) => void)[] = [];
  const sockets = new Set<import("node:net").Socket>();

  const handle = (req: IncomingMessage, res: ServerResponse, rawBody: string): void => {
    const method = req.method ?? "GET";
    const path = req.url ?? "/";
    const api = apiOf(method, path);
    let body: unknown;
    let badJson = false;
    if (rawBody.length > 0) {
      try {
        body = JSON.parse(rawBody);
      } catch {
        badJson = true;
      }
    }
    const rec: RecordedRequest = {
      api,
      method,
      path,
      headers: { ...req.headers },
      rawBody,
      body,
      stream: streamFlag(body),
      usage: undefined,
      completed: false,
      aborted: false,
    };
    if (record) requests.push(rec);
    res.on("close", () => {
      if (!res.writableFinished) {
        rec.aborted = true;
        for (const w of abortWaiters.splice(0)) w(rec);
      }
    });
    res.on("finish", () => {
      rec.completed = true;
    });

    if (api === "models") {
      sendJson(
        res,
        200,
        JSON.stringify({
          object: "list",
          data: [{ id: "fake-model", object: "model", created: 0, owned_by: "fake" }],
        }),
      );
      return;
    }
    if (api === "unknown" || (api === "anthropic-count-tokens" && options.countTokens === false)) {
      sendJson(res, 404, errorBody(api, 404, `no route for ${method} ${path}`));
      return;
    }
    if (options.requireKey !== undefined) {
      const presented =
        api === "anthropic-messages" || api === "anthropic-count-tokens"
          ? req.headers["x-api-key"]
          : (req.headers.authorization ?? "").replace(/^Bearer /, "");
      if (presented !== options.requireKey) {
        sendJson(res, 401, errorBody(api, 401, "invalid api key"));
        return;
      }
    }
    if (badJson || typeof body !== "object" || body === null) {
      sendJson(res, 400, errorBody(api, 400, "request body is not a JSON object"));
      return;
    }

    if (api === "anthropic-count-tokens") {
      // Deterministic: a quarter of the request bytes, minus one (so it differs from an estimate).
      const n = Math.max(1, Math.ceil(Buffer.byteLength(rawBody) / 4) - 1);
      sendJson(res, 200, JSON.stringify({ input_tokens: n }));
      rec.completed = true;
      return;
    }
    const reply = queue.shift() ?? defaultReply;
    const fault = reply.fault;
    if (fault?.kind === "timeout") return; // hold the request open until the client gives up
    if (fault?.kind === "reset") {
      req.socket.destroy();
      return;
    }
    if (fault?.kind === "status") {
      sendJson(
        res,
        fault.status,
        errorBody(api, fault.status, fault.message ?? `upstream failure ${fault.status}`),
        reply.headers,
      );
      return;
    }

    if (api === "openai-embeddings" || api === "openai-compact") {
      const resolved = resolveReply("openai-responses", reply, body, Buffer.byteLength(rawBody));
      const u = resolved.usage;
      rec.usage = api === "openai-embeddings" ? { ...u, output: 0 } : u;
      const json =
        api === "openai-embeddings"
          ? {
              object: "list",
              data: [{ object: "embedding", index: 0, embedding: [0.25, -0.5, 0.125] }],
              model: resolved.model,
              usage: { prompt_tokens: u.input, total_tokens: u.input },
            }
          : {
              id: resolved.id,
              object: "response.compaction",
              created_at: resolved.created,
              output: [{ id: "cmp_1", type: "compaction", encrypted_content: "c29tZS1zdW1tYXJ5" }],
              usage: {
                input_tokens: u.input,
                input_tokens_details: { cached_tokens: u.cacheRead ?? 0 },
                output_tokens: u.output,
                output_tokens_details: { reasoning_tokens: u.reasoning ?? 0 },
                total_tokens: u.input + u.output,
              },
            };
      sendJson(res, 200, JSON.stringify(json), reply.headers);
      return;
    }
    const resolved = resolveReply(api, reply, body, Buffer.byteLength(rawBody));
    const stream = rec.stream;
    if (!stream) {
      rec.usage = resolved.usage;
      const json =
        api === "openai-chat"
          ? openaiChatJson(resolved)
          : api === "openai-responses"
            ? openaiResponsesJson(resolved)
            : anthropicJson(resolved);
      sendJson(res, 200, JSON.stringify(json), reply.headers);
      return;
    }

    const wantUsage = api !== "openai-chat" || (includeUsageFlag(body) && reply.omitUsage !== true);
    const frames =
      api === "openai-chat"
        ? openaiChatFrames(resolved, wantUsage)
        : api === "openai-responses"
          ? openaiResponsesFrames(resolved)
          : anthropicFrames(resolved);
    if (wantUsage) rec.usage = resolved.usage;
    res.writeHead(200, {
      ...reply.headers,
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-cache",
      connection: "keep-alive",
    });
    const limit =
      fault?.kind === "truncate" ? Math.min(fault.afterFrames, frames.length) : frames.length;
    const delay = reply.frameDelayMs ?? 0;
    let i = 0;
    const finish = (): void => {
      if (fault?.kind === "truncate") {
        if (fault.mode === "end") res.end();
        // Let what was written reach the client first, then drop the connection.
        else res.write("", () => setImmediate(() => res.socket?.destroy()));
        return;
      }
      const endDelay = reply.endDelayMs ?? 0;
      if (endDelay > 0) setTimeout(() => res.end(), endDelay);
      else res.end();
    };
    const pump = (): void => {
      if (res.destroyed) return;
      if (delay === 0) {
        let chunk = "";
        for (; i < limit; i++) chunk += frames[i];
        if (chunk.length > 0) res.write(chunk);
        finish();
        return;
      }
      if (i >= limit) {
        finish();
        return;
      }
      res.write(frames[i++]);
      setTimeout(pump, delay);
    };
    pump();
  };

  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => handle(req, res, Buffer.concat(chunks).toString("utf8")));
  });
  server.keepAliveTimeout = 60_000;
  server.on("connection", (s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, options.host ?? "127.0.0.1", () => resolve());
  });
  const addr = server.address() as AddressInfo;
  const host = addr.family === "IPv6" ? `[${addr.address}]` : addr.address;

  return {
    url: `http://${host}:${addr.port}`,
    port: addr.port,
    requests,
    enqueue: (...replies) => {
      queue.push(...replies);
    },
    setDefaultReply: (reply) => {
      defaultReply = reply;
    },
    waitForAbort: (timeoutMs = 5_000) => {
      const already = requests.find((r) => r.aborted);
      if (already) return Promise.resolve(already);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          reject(
            new TestUtilsError(
              "E_INTERNAL",
              `no upstream request was aborted within ${timeoutMs} ms`,
            ),
          );
        }, timeoutMs);
        abortWaiters.push((r) => {
          clearTimeout(timer);
          resolve(r);
        });
      });
    },
    reset: () => {
      requests.length = 0;
      queue.length = 0;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
