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
 * usage report. Throws E_INVALID_INPUT for text that is neither JSON nor SSE.
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

function needleFor(api: WireApi): Buffer {
  return Buffer.from(api === "gemini" ? '"usageMetadata"' : '"usage"');
}

/**
 * Read a streamed response incrementally and keep its usage. SSE (`data: {...}` events) is read
 * line by line; a body whose first byte is `{` or `[` is buffered and parsed as JSON at `end()`.
 *
 * Cost: linear in the bytes written. Lines are found with native byte search; only events whose
 * data contains a usage key with a non-null value are decoded and JSON-parsed, so content deltas
 * cost a newline search and a few byte compares each.
 */
export function createUsageTap(api: WireApi, options: UsageTapOptions = {}): UsageTap {
  checkApi(api);
  return new Tap(api, options.maxJsonBytes ?? 64 * 1024 * 1024);
}

class Tap implements UsageTap {
  bytes = 0;
  private readonly acc = newAcc();
  private readonly needle: Buffer;
  private mode: "detect" | "sse" | "json" | "json-overflow" = "detect";
  /** Partial line carried over from earlier chunks (owned copies). */
  private carry: Buffer[] = [];
  /** Data lines of the event being read; entries before `owned` are copies we own. */
  private eventLines: Buffer[] = [];
  private owned = 0;
  private eventRelevant = false;
  private json: Buffer[] = [];
  private jsonBytes = 0;
  private ended: UsageResult | undefined;

  constructor(
    private readonly api: WireApi,
    private readonly maxJsonBytes: number,
  ) {
    this.needle = needleFor(api);
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
    else if (chunk instanceof Uint8Array)
      buf = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    else
      throw new ProviderRegistryError(
        "E_INVALID_INPUT",
        "usage tap: chunk must be a Uint8Array or a string",
      );
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
    return result(this.acc);
  }

  end(): UsageResult {
    if (this.ended) return this.ended;
    if (this.mode === "sse") {
      if (this.carry.length) {
        const line = Buffer.concat(this.carry);
        this.carry = [];
        this.line(line, 0, line.length, this.relevant(line, 0, line.length));
      }
      this.dispatch();
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
      const line = Buffer.concat([...this.carry, buf.subarray(0, nl)]);
      this.carry = [];
      this.line(line, 0, line.length, this.relevant(line, 0, line.length));
      this.own();
      start = nl + 1;
    }
    let needleAt = this.nextNeedle(buf, start);
    while (start < len) {
      const nl = buf.indexOf(LF, start);
      if (nl === -1) break;
      let rel = false;
      if (needleAt !== -1 && needleAt < nl) {
        rel = true;
        needleAt = this.nextNeedle(buf, nl + 1);
      }
      this.line(buf, start, nl, rel);
      start = nl + 1;
    }
    if (start < len) this.carry.push(Buffer.from(buf.subarray(start)));
    this.own();
  }

  /** Copy retained event lines that still point into the caller's chunk. */
  private own(): void {
    for (let i = this.owned; i < this.eventLines.length; i++) {
      this.eventLines[i] = Buffer.from(this.eventLines[i]!);
    }
    this.owned = this.eventLines.length;
  }

  /** Next position of the usage key with a non-null value at or after `from`, or -1. */
  private nextNeedle(buf: Buffer, from: number): number {
    let at = buf.indexOf(this.needle, from);
    while (at !== -1) {
      if (this.valueFollows(buf, at + this.needle.length, buf.length)) return at;
      at = buf.indexOf(this.needle, at + this.needle.length);
    }
    return -1;
  }

  private relevant(buf: Buffer, start: number, end: number): boolean {
    let at = buf.indexOf(this.needle, start);
    while (at !== -1 && at < end) {
      if (this.valueFollows(buf, at + this.needle.length, end)) return true;
      at = buf.indexOf(this.needle, at + this.needle.length);
    }
    return false;
  }

  /** After `"usage"`: `:` then anything but `null`. */
  private valueFollows(buf: Buffer, i: number, end: number): boolean {
    while (i < end && isSpace(buf[i]!)) i++;
    if (i >= end || buf[i] !== COLON) return false;
    i++;
    while (i < end && isSpace(buf[i]!)) i++;
    return i < end && buf[i] !== 0x6e; // 'n' of null
  }

  private line(buf: Buffer, start: number, end: number, rel: boolean): void {
    if (end > start && buf[end - 1] === CR) end--;
    if (end === start) {
      this.dispatch();
      return;
    }
    // "data:" — other fields (event:, id:, retry:) and comments (":") carry no usage.
    if (
      end - start >= 5 &&
      buf[start] === 0x64 &&
      buf[start + 1] === 0x61 &&
      buf[start + 2] === 0x74 &&
      buf[start + 3] === 0x61 &&
      buf[start + 4] === COLON
    ) {
      let s = start + 5;
      if (s < end && buf[s] === SPACE) s++;
      this.eventLines.push(buf.subarray(s, end));
      if (rel) this.eventRelevant = true;
    }
  }

  private dispatch(): void {
    if (this.eventRelevant && this.eventLines.length) {
      const text =
        this.eventLines.length === 1
          ? decoder.decode(this.eventLines[0])
          : this.eventLines.map((b) => decoder.decode(b)).join("\n");
      let value: unknown;
      try {
        value = JSON.parse(text);
      } catch {
        value = undefined; // a malformed event carries no usage we can trust
      }
      if (value !== undefined) applyValue(this.api, this.acc, value, true);
    } else if (this.api === "gemini" && this.eventLines.length && !this.acc.finished) {
      // Gemini's finishReason may arrive in a chunk without usageMetadata.
      for (const b of this.eventLines) {
        if (b.includes('"finishReason"')) this.acc.finished = true;
      }
      if (this.acc.finished && this.acc.seen) this.acc.complete = true;
    }
    this.eventLines = [];
    this.owned = 0;
    this.eventRelevant = false;
  }
}

function isSpace(b: number): boolean {
  return b === SPACE || b === LF || b === CR || b === 9;
}
