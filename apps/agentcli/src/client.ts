/**
 * The model client: OpenAI chat completions over undici, with retries that honour the server
 * (`retry-after-ms`, `retry-after`, `x-should-retry`), streaming with tool-call assembly, and
 * the gateway's refusals (`budget_exceeded`, `dlp_blocked`) surfaced as their own error codes
 * and never retried.
 */
import { randomUUID } from "node:crypto";
import { AgentCliError } from "./errors.ts";
import { SseDecoder } from "./sse.ts";

export interface ToolCall {
  id: string;
  type: "function";
  function: { name: string; arguments: string };
}

export interface ChatMessage {
  role: "system" | "developer" | "user" | "assistant" | "tool";
  content: string | null;
  tool_calls?: ToolCall[];
  tool_call_id?: string;
}

export interface ToolSpec {
  type: "function";
  function: { name: string; description: string; parameters: Record<string, unknown> };
}

export interface ChatRequest {
  model: string;
  messages: ChatMessage[];
  tools?: ToolSpec[];
  maxTokens?: number;
}

export interface Usage {
  input: number;
  output: number;
}

export interface ChatResponse {
  content: string;
  toolCalls: ToolCall[];
  finishReason: string;
  usage: Usage | undefined;
  model: string;
  attempts: number;
  latencyMs: number;
}

/** One HTTP attempt, for the audit log. */
export interface AttemptInfo {
  attempt: number;
  status: number | undefined;
  error?: string;
  backoffMs?: number;
}

export interface ClientOptions {
  /** e.g. `http://127.0.0.1:4100/v1`; `/chat/completions` is appended. */
  baseUrl: string;
  apiKey: string | undefined;
  /** Time allowed for the response headers, and between two chunks of a stream. */
  timeoutMs: number;
  /** Retries after the first attempt. */
  retries: number;
  /** First backoff; doubled per retry, capped at 8 s, with jitter. */
  backoffMs: number;
  env: NodeJS.ProcessEnv;
  userAgent: string;
  onAttempt?: (info: AttemptInfo) => void;
  /** Sleeps between retries (tests count calls instead of waiting). */
  sleep?: (ms: number) => Promise<void>;
}

export interface CallOptions {
  stream: boolean;
  /** Text deltas of a streamed answer, as they arrive. */
  onDelta?: (text: string) => void;
}

const MAX_BACKOFF_MS = 8_000;
/** A server-requested delay longer than this is not honoured; the computed backoff is used. */
const MAX_SERVER_DELAY_MS = 60_000;

type Undici = typeof import("undici");
let undiciPromise: Promise<Undici> | undefined;
/** undici is imported on the first model call, so `--help` and `--print-config` stay fast. */
function undici(): Promise<Undici> {
  undiciPromise ??= import("undici");
  return undiciPromise;
}

const PROXY_VARS = ["HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"] as const;

/** True when the environment names a proxy; the client then goes through it (`bottle run`'s proxy door). */
export function proxyConfigured(env: NodeJS.ProcessEnv): boolean {
  return PROXY_VARS.some((k) => (env[k] ?? "") !== "");
}

/** Parses `retry-after-ms` / `retry-after` (seconds or an HTTP date) into milliseconds. */
export function serverDelayMs(
  headers: { get(name: string): string | null },
  now = Date.now(),
): number | undefined {
  const ms = headers.get("retry-after-ms");
  if (ms !== null && ms.trim() !== "") {
    const v = Number(ms);
    if (Number.isFinite(v) && v >= 0) return v;
  }
  const ra = headers.get("retry-after");
  if (ra !== null && ra.trim() !== "") {
    const secs = Number(ra);
    if (Number.isFinite(secs)) return secs >= 0 ? secs * 1000 : undefined;
    const date = Date.parse(ra);
    if (!Number.isNaN(date)) return Math.max(0, date - now);
  }
  return undefined;
}

/** The delay before retry number `retry` (0-based). */
export function backoffDelay(
  retry: number,
  baseMs: number,
  server: number | undefined,
  random = Math.random,
): number {
  if (server !== undefined && server <= MAX_SERVER_DELAY_MS) return server;
  const exp = Math.min(MAX_BACKOFF_MS, baseMs * 2 ** retry);
  return Math.round(exp * (0.75 + 0.25 * random()));
}

/** Whether a failed response may be retried: `x-should-retry` wins, then the status. */
export function retryable(status: number, shouldRetry: string | null): boolean {
  if (shouldRetry === "true") return true;
  if (shouldRetry === "false") return false;
  return status === 408 || status === 409 || status === 429 || status >= 500;
}

interface GatewayError {
  type: string | undefined;
  message: string;
  extra: Record<string, unknown>;
}

function errorOf(body: unknown): GatewayError | undefined {
  if (typeof body !== "object" || body === null) return undefined;
  const e = (body as { error?: unknown }).error;
  if (typeof e !== "object" || e === null) return undefined;
  const r = e as Record<string, unknown>;
  const type =
    typeof r["type"] === "string" ? r["type"] : typeof r["code"] === "string" ? r["code"] : "";
  return {
    type: type === "" ? undefined : type,
    message: typeof r["message"] === "string" ? r["message"] : "",
    extra: r,
  };
}

/** Maps the gateway's own refusals to errors that end the run with exit 3. */
function refusal(err: GatewayError | undefined): AgentCliError | undefined {
  if (err === undefined) return undefined;
  const isType = (t: string) => err.type === t || err.extra["code"] === t;
  if (isType("budget_exceeded")) {
    const remaining = err.extra["remaining"];
    return new AgentCliError("E_BUDGET", `budget exceeded: ${err.message}`, {
      hint:
        typeof remaining === "number"
          ? `${remaining} tokens remain in that budget; raise it or restore the bottle`
          : "raise the budget or restore the bottle (bottle-gateway / bottle usage)",
    });
  }
  if (isType("dlp_blocked")) {
    return new AgentCliError("E_POLICY", `the gateway blocked the call: ${err.message}`, {
      hint: "the request carried something the gateway's DLP policy refuses to send out",
    });
  }
  return undefined;
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function usageOf(u: unknown): Usage | undefined {
  if (typeof u !== "object" || u === null) return undefined;
  const r = u as Record<string, unknown>;
  const input = typeof r["prompt_tokens"] === "number" ? r["prompt_tokens"] : undefined;
  const output = typeof r["completion_tokens"] === "number" ? r["completion_tokens"] : undefined;
  if (input === undefined && output === undefined) return undefined;
  return { input: input ?? 0, output: output ?? 0 };
}

/** A stream cut short before its finish: retried like a network failure when nothing was shown yet. */
class StreamEnded extends Error {}

const sleepReal = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export class ChatClient {
  readonly #o: ClientOptions;
  #dispatcher: import("undici").Dispatcher | undefined;

  constructor(options: ClientOptions) {
    this.#o = options;
  }

  async #getDispatcher(u: Undici): Promise<import("undici").Dispatcher> {
    if (this.#dispatcher === undefined) {
      // EnvHttpProxyAgent reads HTTP(S)_PROXY and NO_PROXY; without them a plain Agent.
      this.#dispatcher = proxyConfigured(this.#o.env)
        ? new u.EnvHttpProxyAgent({
            httpProxy: this.#o.env["HTTP_PROXY"] ?? this.#o.env["http_proxy"],
            httpsProxy:
              this.#o.env["HTTPS_PROXY"] ??
              this.#o.env["https_proxy"] ??
              this.#o.env["HTTP_PROXY"] ??
              this.#o.env["http_proxy"],
            noProxy: this.#o.env["NO_PROXY"] ?? this.#o.env["no_proxy"] ?? "",
          })
        : new u.Agent({ keepAliveTimeout: 30_000 });
    }
    return this.#dispatcher;
  }

  async close(): Promise<void> {
    const d = this.#dispatcher;
    this.#dispatcher = undefined;
    if (d !== undefined) await d.close().catch(() => undefined);
  }

  /** One chat completion, with retries. Throws AgentCliError (E_HTTP, E_BUDGET, E_POLICY). */
  async chat(req: ChatRequest, call: CallOptions): Promise<ChatResponse> {
    const u = await undici();
    const dispatcher = await this.#getDispatcher(u);
    const body: Record<string, unknown> = {
      model: req.model,
      messages: req.messages,
    };
    if (req.tools !== undefined && req.tools.length > 0) {
      body["tools"] = req.tools;
      body["tool_choice"] = "auto";
      body["parallel_tool_calls"] = true;
    }
    if (req.maxTokens !== undefined) body["max_tokens"] = req.maxTokens;
    if (call.stream) {
      body["stream"] = true;
      body["stream_options"] = { include_usage: true };
    }
    const payload = JSON.stringify(body);
    const url = `${this.#o.baseUrl.replace(/\/+$/, "")}/chat/completions`;
    const headers: Record<string, string> = {
      "content-type": "application/json",
      accept: call.stream ? "text/event-stream" : "application/json",
      "idempotency-key": `agentcli-${randomUUID()}`,
      "user-agent": this.#o.userAgent,
    };
    if (this.#o.apiKey !== undefined && this.#o.apiKey !== "") {
      headers["authorization"] = `Bearer ${this.#o.apiKey}`;
    }
    const sleep = this.#o.sleep ?? sleepReal;
    const started = performance.now();
    let lastError = "";
    for (let attempt = 1; attempt <= this.#o.retries + 1; attempt++) {
      const ac = new AbortController();
      let timer = setTimeout(() => ac.abort(), this.#o.timeoutMs);
      const rearm = () => {
        clearTimeout(timer);
        timer = setTimeout(() => ac.abort(), this.#o.timeoutMs);
      };
      let emitted = false;
      let delay: number | undefined;
      try {
        const res = await u.fetch(url, {
          method: "POST",
          headers,
          body: payload,
          dispatcher,
          signal: ac.signal,
        });
        if (!res.ok) {
          const text = await res.text().catch(() => "");
          const err = errorOf(parseJson(text));
          const refused = refusal(err);
          if (refused !== undefined) {
            this.#o.onAttempt?.({ attempt, status: res.status, error: err?.type ?? "refused" });
            throw refused;
          }
          lastError = `HTTP ${res.status}${err?.message ? `: ${err.message}` : ""}`;
          const again =
            retryable(res.status, res.headers.get("x-should-retry")) && attempt <= this.#o.retries;
          if (!again) {
            this.#o.onAttempt?.({ attempt, status: res.status, error: lastError });
            throw new AgentCliError("E_HTTP", `the model call failed: ${lastError}`, {
              hint:
                res.status === 401
                  ? "check the key: BOTTLEKIT_GATEWAY_KEY for the gateway, or --api-key-env for another base URL"
                  : `endpoint ${url}`,
            });
          }
          delay = backoffDelay(attempt - 1, this.#o.backoffMs, serverDelayMs(res.headers));
          this.#o.onAttempt?.({ attempt, status: res.status, error: lastError, backoffMs: delay });
        } else {
          const out = call.stream
            ? await this.#readStream(res, rearm, (t) => {
                emitted = true;
                call.onDelta?.(t);
              })
            : this.#readJson(await res.text());
          this.#o.onAttempt?.({ attempt, status: res.status });
          return {
            ...out,
            model: out.model || req.model,
            attempts: attempt,
            latencyMs: performance.now() - started,
          };
        }
      } catch (error) {
        // Refusals, final HTTP statuses and malformed bodies end here; network failures,
        // timeouts and streams cut short are retried.
        if (error instanceof AgentCliError) throw error;
        const cause = (error as { cause?: { code?: unknown } }).cause;
        lastError = ac.signal.aborted
          ? `no response within ${this.#o.timeoutMs} ms`
          : error instanceof Error
            ? `${error.message}${typeof cause?.code === "string" ? ` (${cause.code})` : ""}`
            : String(error);
        if (attempt > this.#o.retries || emitted) {
          this.#o.onAttempt?.({ attempt, status: undefined, error: lastError });
          throw new AgentCliError("E_HTTP", `the model call failed: ${lastError}`, {
            cause: error,
            hint: `endpoint ${url}; is the gateway running (bottle-gateway up)?`,
          });
        }
        delay = backoffDelay(attempt - 1, this.#o.backoffMs, undefined);
        this.#o.onAttempt?.({ attempt, status: undefined, error: lastError, backoffMs: delay });
      } finally {
        clearTimeout(timer);
      }
      await sleep(delay ?? 0);
    }
    throw new AgentCliError("E_HTTP", `the model call failed: ${lastError}`);
  }

  #readJson(text: string): Omit<ChatResponse, "attempts" | "latencyMs"> {
    const body = parseJson(text);
    const choice = (body as { choices?: unknown[] } | undefined)?.choices?.[0] as
      | { message?: { content?: unknown; tool_calls?: unknown }; finish_reason?: unknown }
      | undefined;
    if (choice === undefined || typeof choice.message !== "object") {
      throw new AgentCliError("E_HTTP", "the model endpoint answered without a choice", {
        hint: "is the base URL an OpenAI-compatible chat completions endpoint?",
      });
    }
    const m = choice.message;
    const toolCalls: ToolCall[] = [];
    if (Array.isArray(m.tool_calls)) {
      for (const t of m.tool_calls as Array<Record<string, unknown>>) {
        const f = t["function"] as { name?: unknown; arguments?: unknown } | undefined;
        toolCalls.push({
          id: String(t["id"] ?? ""),
          type: "function",
          function: {
            name: typeof f?.name === "string" ? f.name : "",
            arguments: typeof f?.arguments === "string" ? f.arguments : "",
          },
        });
      }
    }
    return {
      content: typeof m.content === "string" ? m.content : "",
      toolCalls,
      finishReason: typeof choice.finish_reason === "string" ? choice.finish_reason : "stop",
      usage: usageOf((body as { usage?: unknown }).usage),
      model: String((body as { model?: unknown }).model ?? ""),
    };
  }

  async #readStream(
    res: Response | import("undici").Response,
    rearm: () => void,
    onDelta: (t: string) => void,
  ): Promise<Omit<ChatResponse, "attempts" | "latencyMs">> {
    const dec = new SseDecoder();
    const td = new TextDecoder();
    let content = "";
    let finishReason: string | undefined;
    let usage: Usage | undefined;
    let model = "";
    let done = false;
    const calls: ToolCall[] = [];
    const handle = (data: string): void => {
      if (data === "[DONE]") {
        done = true;
        return;
      }
      const chunk = parseJson(data) as Record<string, unknown> | undefined;
      if (chunk === undefined) return;
      const err = errorOf(chunk);
      if (err !== undefined) {
        throw (
          refusal(err) ??
          new AgentCliError("E_HTTP", `the stream failed: ${err.message || err.type}`)
        );
      }
      if (typeof chunk["model"] === "string") model = chunk["model"];
      const u = usageOf(chunk["usage"]);
      if (u !== undefined) usage = u;
      const choices = chunk["choices"];
      if (!Array.isArray(choices)) return;
      for (const c of choices as Array<Record<string, unknown>>) {
        const delta = (c["delta"] ?? {}) as Record<string, unknown>;
        if (typeof delta["content"] === "string" && delta["content"] !== "") {
          content += delta["content"];
          onDelta(delta["content"]);
        }
        if (Array.isArray(delta["tool_calls"])) {
          for (const t of delta["tool_calls"] as Array<Record<string, unknown>>) {
            const index = typeof t["index"] === "number" ? t["index"] : calls.length;
            let call = calls[index];
            if (call === undefined) {
              call = { id: "", type: "function", function: { name: "", arguments: "" } };
              calls[index] = call;
            }
            if (typeof t["id"] === "string") call.id = t["id"];
            const f = t["function"] as { name?: unknown; arguments?: unknown } | undefined;
            if (typeof f?.name === "string") call.function.name += f.name;
            if (typeof f?.arguments === "string") call.function.arguments += f.arguments;
          }
        }
        if (typeof c["finish_reason"] === "string") finishReason = c["finish_reason"];
      }
    };
    if (res.body === null) throw new AgentCliError("E_HTTP", "the stream had no body");
    for await (const bytes of res.body as AsyncIterable<Uint8Array>) {
      rearm();
      for (const ev of dec.push(td.decode(bytes, { stream: true }))) handle(ev.data);
    }
    for (const ev of dec.end()) handle(ev.data);
    if (finishReason === undefined) {
      throw new StreamEnded(
        `the stream ended before its finish_reason${done ? "" : " (no [DONE])"}`,
      );
    }
    return {
      content,
      toolCalls: calls.filter((c) => c !== undefined),
      finishReason,
      usage,
      model,
    };
  }
}
