import { ProviderRegistryError } from "./errors.ts";
import { type UsageResult, WIRE_APIS, type WireApi } from "./types.ts";

// Usage extraction for each wire API, from a whole JSON response (parseUsage) or incrementally
// from a streamed SSE response (createUsageTap). Normalized counts:
//   inputTokens  = every input token, cached ones included (Anthropic reports them apart: summed)
//   outputTokens = every output token, reasoning included (Gemini reports thoughts apart: summed)
//   cacheRead/cacheWrite/reasoning are parts of those totals.

interface Acc {
  input: number;
  output: number;
  cacheRead: number;
  cacheWrite: number;
  reasoning: number;
  /** Some usage was seen (maybe partial). */
  seen: boolean;
  /** The upstream's final usage report was seen. */
  complete: boolean;
  /** Gemini: a candidate reported a finishReason. */
  finished: boolean;
}

function newAcc(): Acc {
  return {
    input: 0,
    output: 0,
    cacheRead: 0,
    cacheWrite: 0,
    reasoning: 0,
    seen: false,
    complete: false,
    finished: false,
  };
}

function num(v: unknown): number {
  return typeof v === "number" && Number.isFinite(v) && v > 0 ? Math.floor(v) : 0;
}

function obj(v: unknown): Record<string, unknown> | undefined {
  return v !== null && typeof v === "object" && !Array.isArray(v)
    ? (v as Record<string, unknown>)
    : undefined;
}

// ---- per-API readers of one usage object ----

/** OpenAI chat `usage` (also Groq's `x_groq.usage`, DeepSeek's cache-hit fields, OpenRouter's cache writes). */
function readOpenAiChatUsage(acc: Acc, u: Record<string, unknown>): void {
  const pd = obj(u.prompt_tokens_details);
  const cd = obj(u.completion_tokens_details);
  acc.input = num(u.prompt_tokens);
  acc.output = num(u.completion_tokens);
  acc.cacheRead = num(pd?.cached_tokens) || num(u.prompt_cache_hit_tokens);
  acc.cacheWrite = num(pd?.cache_write_tokens) || num(pd?.cache_creation_tokens);
  acc.reasoning = num(cd?.reasoning_tokens);
  acc.seen = true;
  acc.complete = true;
}

/** OpenAI Responses `usage`. */
function readResponsesUsage(acc: Acc, u: Record<string, unknown>): void {
  acc.input = num(u.input_tokens);
  acc.output = num(u.output_tokens);
  acc.cacheRead = num(obj(u.input_tokens_details)?.cached_tokens);
  acc.cacheWrite = 0;
  acc.reasoning = num(obj(u.output_tokens_details)?.reasoning_tokens);
  acc.seen = true;
  acc.complete = true;
}

/**
 * Anthropic `usage`: input_tokens excludes cache reads and writes, so they are added. In a stream,
 * message_start carries the input side and message_delta the cumulative output; fields absent
 * from a delta keep their earlier value.
 */
function readAnthropicUsage(acc: Acc, u: Record<string, unknown>, final: boolean): void {
  const has = (k: string) => typeof u[k] === "number";
  const read = has("cache_read_input_tokens") ? num(u.cache_read_input_tokens) : acc.cacheRead;
  const write = has("cache_creation_input_tokens")
    ? num(u.cache_creation_input_tokens)
    : acc.cacheWrite;
  if (has("input_tokens")) acc.input = num(u.input_tokens) + read + write;
  else acc.input += read - acc.cacheRead + (write - acc.cacheWrite);
  acc.cacheRead = read;
  acc.cacheWrite = write;
  if (has("output_tokens")) acc.output = num(u.output_tokens);
  acc.reasoning = 0; // Anthropic counts thinking inside output_tokens and does not split it out.
  acc.seen = true;
  if (final) acc.complete = true;
}

/** Gemini `usageMetadata`: thoughts are billed as output but reported apart, so they are added. */
function readGeminiUsage(acc: Acc, u: Record<string, unknown>): void {
  const thoughts = num(u.thoughtsTokenCount);
  acc.input = num(u.promptTokenCount) + num(u.toolUsePromptTokenCount);
  acc.output = num(u.candidatesTokenCount) + thoughts;
  acc.cacheRead = num(u.cachedContentTokenCount);
  acc.cacheWrite = 0;
  acc.reasoning = thoughts;
  acc.seen = true;
}

// ---- one parsed JSON value (a whole response or one stream event) ----

function applyValue(api: WireApi, acc: Acc, value: unknown, streamed: boolean): void {
  if (Array.isArray(value)) {
    // Gemini's non-SSE streamGenerateContent returns a JSON array of chunks.
    for (const v of value) applyValue(api, acc, v, streamed);
    return;
  }
  const o = obj(value);
  if (!o) return;
  switch (api) {
    case "openai-chat": {
      const u = obj(o.usage) ?? obj(obj(o.x_groq)?.usage);
      if (u) readOpenAiChatUsage(acc, u);
      return;
    }
    case "openai-responses": {
      // Whole response: { usage }. Stream: response.completed / .incomplete / .failed carry response.usage.
      const u = obj(o.usage) ?? obj(obj(o.response)?.usage);
      if (u) readResponsesUsage(acc, u);
      return;
    }
    case "anthropic-messages": {
      if (!streamed) {
        const u = obj(o.usage);
        if (u) readAnthropicUsage(acc, u, true);
        return;
      }
      if (o.type === "message_start") {
        const u = obj(obj(o.message)?.usage);
        if (u) readAnthropicUsage(acc, u, false);
      } else if (o.type === "message_delta") {
        const u = obj(o.usage);
        if (u) readAnthropicUsage(acc, u, true);
      }
      return;
    }
    case "gemini": {
      const u = obj(o.usageMetadata);
      if (u) readGeminiUsage(acc, u);
      const cands = o.candidates;
      if (Array.isArray(cands) && cands.some((c) => typeof obj(c)?.finishReason === "string")) {
        acc.finished = true;
      }
      if (!streamed && u) acc.complete = true;
      else if (acc.finished && acc.seen) acc.complete = true;
      return;
    }
  }
}

function result(acc: Acc): UsageResult {
  return Object.freeze({
    inputTokens: acc.input,
    outputTokens: acc.output,
    cacheReadTokens: acc.cacheRead,
    cacheWriteTokens: acc.cacheWrite,
    reasoningTokens: acc.reasoning,
    usageMissing: !acc.complete,
  });
}

function checkApi(api: WireApi): void {
  if (!WIRE_APIS.includes(api)) {
    throw new ProviderRegistryError("E_INVALID_INPUT", `unknown wire API "${String(api)}"`, {
      hint: `use one of ${WIRE_APIS.join(", ")}`,
    });
  }
}

const decoder = new TextDecoder();

/**
 * Usage from a whole (non-streamed) response of `api`: a parsed object, or its JSON text/bytes.
 * SSE text is accepted too and read like a stream. `usageMissing` is true when the body has no
 * usage report (including text that is neither JSON nor SSE). Throws E_INVALID_INPUT only for an
 * unknown `api`.
 */
export function parseUsage(api: WireApi, body: unknown): UsageResult {
  checkApi(api);
  if (typeof body === "string" || body instanceof Uint8Array) {
    const tap = createUsageTap(api);
    tap.write(body);
    return tap.end();
  }
  const acc = newAcc();
  applyValue(api, acc, body, false);
  return result(acc);
}

export interface UsageTap {
  /** Feed the next chunk of the response body. Chunks may split anywhere, mid-UTF-8 included. */
  write(chunk: Uint8Array | string): void;
  /** The stream ended: final usage, or the partial counts with `usageMissing: true`. */
  end(): UsageResult;
  /** Usage seen so far (partial until the final report). */
  peek(): UsageResult;
  /** Bytes written so far. */
  readonly bytes: number;
}

export interface UsageTapOptions {
  /** A non-SSE (plain JSON) body larger than this is not buffered: usage is reported missing. */
  maxJsonBytes?: number;
}

const LF = 10;
const CR = 13;
const COLON = 58;
const SPACE = 32;
const USAGE_KEY = '"usage"';
const GEMINI_USAGE_KEY = '"usageMetadata"';
const FINISH_KEY = '"finishReason"';

/**
 * Read a streamed response incrementally and keep its usage. SSE (`data: {...}` events) is read
 * line by line; a body whose first byte is `{` or `[` is buffered and parsed as JSON at `end()`.
 *
 * Cost: linear in the bytes written. Lines are found with native byte search, and so are the
 * usage keys; only events whose data holds a usage key with a non-null value are kept. For APIs
 * whose usage reports are cumulative (OpenAI chat and Responses, Gemini) only the latest such
 * event is kept and it is parsed once, at `end()` or `peek()`; Anthropic's two usage events
 * (message_start, message_delta) are parsed as they come.
 */
export function createUsageTap(api: WireApi, options: UsageTapOptions = {}): UsageTap {
  checkApi(api);
  return new Tap(api, options.maxJsonBytes ?? 64 * 1024 * 1024);
}

class Tap implements UsageTap {
  bytes = 0;
  private readonly acc = newAcc();
  private readonly usageKey: string;
  /** Gemini may send finishReason in a chunk of its own. */
  private readonly finishKey: string | undefined;
  /** Usage reports are cumulative: keep the latest and parse it lazily. */
  private readonly lastWins: boolean;
  private mode: "detect" | "sse" | "json" | "json-overflow" = "detect";
  /** Partial line carried over from earlier chunks (owned copies). */
  private carry: Buffer[] = [];
  /** Data lines of the event being read; entries before `owned` are copies we own. */
  private lines: Buffer[] = [];
  private owned = 0;
  /** A first data line not yet materialized (no allocation for events we will drop). */
  private pBuf: Buffer | undefined;
  private pStart = 0;
  private pEnd = 0;
  private evUsage = false;
  private evFinish = false;
  /** Latest usage event not parsed yet, and whether it still points into the caller's chunk. */
  private latest: Buffer | undefined;
  private latestIsView = false;
  private json: Buffer[] = [];
  private jsonBytes = 0;
  private ended: UsageResult | undefined;

  constructor(
    private readonly api: WireApi,
    private readonly maxJsonBytes: number,
  ) {
    this.usageKey = api === "gemini" ? GEMINI_USAGE_KEY : USAGE_KEY;
    this.finishKey = api === "gemini" ? FINISH_KEY : undefined;
    this.lastWins = api !== "anthropic-messages";
  }

  write(chunk: Uint8Array | string): void {
    if (this.ended) {
      throw new ProviderRegistryError("E_USAGE", "usage tap: write() after end()", {
        hint: "create a new tap for each response",
      });
    }
    let buf: Buffer;
    if (typeof chunk === "string") buf = Buffer.from(chunk, "utf8");
    else if (Buffer.isBuffer(chunk)) buf = chunk;
    else if (chunk instanceof Uint8Array) {
      buf = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    } else {
      throw new ProviderRegistryError(
        "E_INVALID_INPUT",
        "usage tap: chunk must be a Uint8Array or a string",
      );
    }
    if (buf.length === 0) return;
    this.bytes += buf.length;
    if (this.mode === "detect") {
      let i = 0;
      // Skip leading whitespace and a UTF-8 byte-order mark.
      while (i < buf.length && (isSpace(buf[i]!) || buf[i]! >= 0xbb)) i++;
      if (i === buf.length) return; // only whitespace so far
      const first = buf[i]!;
      this.mode = first === 0x7b || first === 0x5b ? "json" : "sse";
      buf = buf.subarray(i);
    }
    if (this.mode === "sse") this.sse(buf);
    else if (this.mode === "json") {
      this.jsonBytes += buf.length;
      if (this.jsonBytes > this.maxJsonBytes) {
        this.mode = "json-overflow";
        this.json = [];
      } else this.json.push(Buffer.from(buf));
    }
  }

  peek(): UsageResult {
    this.applyLatest();
    return result(this.acc);
  }

  end(): UsageResult {
    if (this.ended) return this.ended;
    if (this.mode === "sse") {
      // Parse what is known good first: a last line cut mid-JSON must not hide it.
      this.applyLatest();
      if (this.carry.length) {
        const line = Buffer.concat(this.carry);
        this.carry = [];
        this.wholeLine(line);
      }
      this.dispatch();
      this.applyLatest();
    } else if (this.mode === "json") {
      const text = decoder.decode(Buffer.concat(this.json));
      this.json = [];
      try {
        applyValue(this.api, this.acc, JSON.parse(text), false);
      } catch {
        // A truncated or malformed body has no trustworthy usage: reported missing.
      }
    }
    this.ended = result(this.acc);
    return this.ended;
  }

  // ---- SSE ----

  private sse(buf: Buffer): void {
    let start = 0;
    const len = buf.length;
    if (this.carry.length) {
      const nl = buf.indexOf(LF);
      if (nl === -1) {
        this.carry.push(Buffer.from(buf));
        return;
      }
      this.carry.push(buf.subarray(0, nl));
      const line = Buffer.concat(this.carry);
      this.carry = [];
      this.wholeLine(line);
      start = nl + 1;
    }
    // Searching a one-byte-per-char (latin1) view of the chunk is several times faster than
    // Buffer#indexOf with a multi-byte needle; offsets are the same as in the bytes.
    const str = buf.toString("latin1", 0, len);
    let usageAt = next(this.usageKey, str, start);
    let finishAt = this.finishKey ? next(this.finishKey, str, start) : -1;
    while (start < len) {
      const nl = str.indexOf("\n", start);
      if (nl === -1) break;
      let usage = false;
      let finish = false;
      if (usageAt !== -1 && usageAt < nl) {
        usage = true;
        usageAt = next(this.usageKey, str, nl + 1);
      }
      if (finishAt !== -1 && finishAt < nl) {
        finish = true;
        finishAt = next(this.finishKey!, str, nl + 1);
      }
      this.line(buf, str, start, nl, usage, finish);
      start = nl + 1;
    }
    if (start < len) this.carry.push(Buffer.from(buf.subarray(start)));
    // Nothing kept may point into the caller's chunk once write() returns.
    if (this.pBuf === buf) {
      this.lines.push(Buffer.from(buf.subarray(this.pStart, this.pEnd)));
      this.pBuf = undefined;
    }
    for (let i = this.owned; i < this.lines.length; i++) {
      this.lines[i] = Buffer.from(this.lines[i]!);
    }
    this.owned = this.lines.length;
    if (this.latestIsView && this.latest) {
      this.latest = Buffer.from(this.latest);
      this.latestIsView = false;
    }
  }

  /** A line that was split across chunks, now whole. */
  private wholeLine(line: Buffer): void {
    const str = line.toString("latin1");
    const usage = next(this.usageKey, str, 0) !== -1;
    const finish = this.finishKey ? next(this.finishKey, str, 0) !== -1 : false;
    this.line(line, str, 0, line.length, usage, finish);
  }

  private line(
    buf: Buffer,
    str: string,
    start: number,
    end: number,
    usage: boolean,
    finish: boolean,
  ): void {
    if (end > start && str.charCodeAt(end - 1) === CR) end--;
    if (end === start) {
      this.dispatch();
      return;
    }
    // "data:" — other fields (event:, id:, retry:) and comments (":") carry no usage.
    if (!str.startsWith("data:", start)) return;
    let s = start + 5;
    if (s < end && str.charCodeAt(s) === SPACE) s++;
    if (this.pBuf) {
      this.lines.push(this.pBuf.subarray(this.pStart, this.pEnd));
      this.pBuf = undefined;
    }
    if (this.lines.length === 0 && !usage && !finish && !this.evUsage && !this.evFinish) {
      this.pBuf = buf;
      this.pStart = s;
      this.pEnd = end;
    } else this.lines.push(buf.subarray(s, end));
    if (usage) this.evUsage = true;
    if (finish) this.evFinish = true;
  }

  private dispatch(): void {
    if (this.evUsage || this.evFinish) {
      if (this.pBuf) this.lines.push(this.pBuf.subarray(this.pStart, this.pEnd));
      if (this.evFinish) this.acc.finished = true;
      if (this.evUsage) {
        const data =
          this.lines.length === 1
            ? this.lines[0]!
            : Buffer.from(this.lines.map((b) => decoder.decode(b)).join("\n"));
        if (this.lastWins) {
          this.latest = data;
          this.latestIsView = true;
        } else this.parse(data);
      } else if (this.acc.finished && this.acc.seen) this.acc.complete = true;
    }
    this.lines = [];
    this.owned = 0;
    this.pBuf = undefined;
    this.evUsage = false;
    this.evFinish = false;
  }

  private applyLatest(): void {
    if (!this.latest) return;
    const data = this.latest;
    this.latest = undefined;
    this.latestIsView = false;
    this.parse(data);
  }

  private parse(data: Buffer): void {
    let value: unknown;
    try {
      value = JSON.parse(decoder.decode(data));
    } catch {
      return; // a malformed event carries no usage we can trust
    }
    applyValue(this.api, this.acc, value, true);
  }
}

/** Next position of `key` followed by `:` and a non-null value, at or after `from`, or -1. */
function next(key: string, str: string, from: number): number {
  let at = str.indexOf(key, from);
  while (at !== -1) {
    if (valueFollows(str, at + key.length)) return at;
    at = str.indexOf(key, at + key.length);
  }
  return -1;
}

/** After a key: `:` then anything but `null` on the same line. */
function valueFollows(str: string, i: number): boolean {
  const end = str.length;
  while (i < end && isBlank(str.charCodeAt(i))) i++;
  if (i >= end || str.charCodeAt(i) !== COLON) return false;
  i++;
  while (i < end && isBlank(str.charCodeAt(i))) i++;
  return i < end && str.charCodeAt(i) !== 0x6e; // 'n' of null
}

function isBlank(c: number): boolean {
  return c === SPACE || c === 9;
}

function isSpace(b: number): boolean {
  return b === SPACE || b === LF || b === CR || b === 9;
}
