import type { ClientApi } from "./apis.ts";

/**
 * Pulls the model's text (content deltas, tool-call arguments) out of a response, so the inbound
 * injection scan sees the words the model produced rather than SSE framing and JSON escapes that
 * split a phrase across events.
 *
 * Streams: linear in the bytes. Each SSE line is found with one indexOf; only `data:` lines that
 * contain a text-bearing key are JSON-parsed.
 */
export class TextExtractor {
  private readonly decoder = new TextDecoder("utf-8");
  private carry = "";
  /**
   * True once the stream's terminal marker was seen: `data: [DONE]` (OpenAI chat),
   * `response.completed` / `.incomplete` / `.failed` (responses), `message_stop` (Anthropic).
   * A stream that ends without it was cut off.
   */
  complete = false;

  constructor(private readonly api: ClientApi) {}

  /** Feeds SSE bytes; returns the text carried by the complete lines seen so far. */
  push(chunk: Uint8Array): string {
    const text = this.carry + this.decoder.decode(chunk, { stream: true });
    let out = "";
    let start = 0;
    for (;;) {
      const nl = text.indexOf("\n", start);
      if (nl === -1) break;
      out += this.line(text, start, nl);
      start = nl + 1;
    }
    this.carry = text.slice(start);
    return out;
  }

  end(): string {
    const rest = this.carry + this.decoder.decode();
    this.carry = "";
    return rest.length > 0 ? this.line(rest, 0, rest.length) : "";
  }

  private line(text: string, start: number, end: number): string {
    if (!text.startsWith("data:", start)) {
      if (text.startsWith("event:", start)) {
        const ev = text.slice(start + 6, end).trim();
        if (
          ev === "message_stop" ||
          ev === "response.completed" ||
          ev === "response.incomplete" ||
          ev === "response.failed"
        ) {
          this.complete = true;
        }
      }
      return "";
    }
    const line = text.slice(start + 5, end).trim();
    if (line === "[DONE]") {
      this.complete = true;
      return "";
    }
    if (line.length === 0) return "";
    if (!line.includes('"delta"') && !line.includes('"text"') && !line.includes('"arguments"'))
      return "";
    let ev: unknown;
    try {
      ev = JSON.parse(line);
    } catch {
      return "";
    }
    return streamEventText(this.api, ev);
  }
}

function str(v: unknown): string {
  return typeof v === "string" ? v : "";
}

function obj(v: unknown): Record<string, unknown> {
  return typeof v === "object" && v !== null ? (v as Record<string, unknown>) : {};
}

/** Text carried by one parsed stream event. */
export function streamEventText(api: ClientApi, ev: unknown): string {
  const e = obj(ev);
  if (api === "openai-chat") {
    let out = "";
    const choices = e["choices"];
    if (Array.isArray(choices)) {
      for (const c of choices) {
        const d = obj(obj(c)["delta"]);
        out += str(d["content"]) + str(d["refusal"]);
        const calls = d["tool_calls"];
        if (Array.isArray(calls))
          for (const t of calls) out += str(obj(obj(t)["function"])["arguments"]);
      }
    }
    return out;
  }
  if (api === "openai-responses") {
    const type = str(e["type"]);
    if (
      type === "response.output_text.delta" ||
      type === "response.function_call_arguments.delta" ||
      type === "response.refusal.delta"
    ) {
      return str(e["delta"]);
    }
    return "";
  }
  if (str(e["type"]) === "content_block_delta") {
    const d = obj(e["delta"]);
    return str(d["text"]) + str(d["partial_json"]) + str(d["thinking"]);
  }
  return "";
}

/** Text of a complete (non-streamed) JSON response. */
export function responseText(api: ClientApi, body: unknown): string {
  const b = obj(body);
  const parts: string[] = [];
  if (api === "openai-chat") {
    const choices = b["choices"];
    if (Array.isArray(choices)) {
      for (const c of choices) {
        const m = obj(obj(c)["message"]);
        parts.push(str(m["content"]), str(m["refusal"]));
        const calls = m["tool_calls"];
        if (Array.isArray(calls))
          for (const t of calls) parts.push(str(obj(obj(t)["function"])["arguments"]));
      }
    }
  } else if (api === "openai-responses") {
    const output = b["output"];
    if (Array.isArray(output)) {
      for (const item of output) {
        const it = obj(item);
        parts.push(str(it["arguments"]));
        const content = it["content"];
        if (Array.isArray(content))
          for (const c of content) parts.push(str(obj(c)["text"]), str(obj(c)["refusal"]));
      }
    }
  } else {
    const content = b["content"];
    if (Array.isArray(content)) {
      for (const c of content) {
        const it = obj(c);
        parts.push(str(it["text"]), str(it["thinking"]));
        if (it["input"] !== undefined) parts.push(JSON.stringify(it["input"]));
      }
    }
  }
  return parts.filter((p) => p.length > 0).join("\n");
}
