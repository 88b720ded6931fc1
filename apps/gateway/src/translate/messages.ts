// Anthropic Messages ⇄ IR.
import {
  argsObject,
  argsText,
  asArray,
  asRecord,
  asString,
  type IrEvent,
  type IrFinish,
  type IrMessage,
  type IrPart,
  type IrRequest,
  type IrResponse,
  type IrTool,
  type IrToolChoice,
  type IrUsage,
  refuseUnknown,
  TranslationError,
} from "./ir.ts";

const API = "anthropic-messages" as const;
const REQUEST_KEYS = new Set([
  "model",
  "messages",
  "system",
  "max_tokens",
  "temperature",
  "top_p",
  "stop_sequences",
  "stream",
  "tools",
  "tool_choice",
  "metadata",
  "thinking",
  // Server-side context editing (Claude Code sends it): an upstream without it keeps the whole
  // conversation, which changes what the model is shown, never what the client asked for.
  "context_management",
  "output_config",
]);
const BLOCK_HINTS = new Set(["cache_control", "citations"]);

function blockKeys(b: Record<string, unknown>, allowed: string[], at: string): void {
  refuseUnknown(b, new Set([...allowed, ...BLOCK_HINTS]), API, `${at}.`);
}

function systemTexts(v: unknown): string[] {
  if (v === undefined || v === null) return [];
  if (typeof v === "string") return v ? [v] : [];
  return asArray(v, "system").map((raw, i) => {
    const b = asRecord(raw, `system[${i}]`);
    if (b["type"] !== "text")
      throw new TranslationError(`system[${i}].type`, "only text system blocks can be translated");
    return asString(b["text"], `system[${i}].text`);
  });
}

function resultText(content: unknown, at: string): string {
  if (content === undefined || content === null) return "";
  if (typeof content === "string") return content;
  return asArray(content, at)
    .map((raw, i) => {
      const b = asRecord(raw, `${at}[${i}]`);
      if (b["type"] !== "text")
        throw new TranslationError(
          `${at}[${i}].type`,
          `a "${String(b["type"])}" block inside a tool result cannot be translated`,
        );
      return asString(b["text"], `${at}[${i}].text`);
    })
    .join("");
}

function readBlocks(content: unknown, at: string): IrPart[] {
  if (typeof content === "string") return [{ type: "text", text: content }];
  return asArray(content, at).flatMap((raw, i): IrPart[] => {
    const where = `${at}[${i}]`;
    const b = asRecord(raw, where);
    switch (b["type"]) {
      case "text":
        blockKeys(b, ["type", "text"], where);
        return [{ type: "text", text: asString(b["text"], `${where}.text`) }];
      case "image": {
        blockKeys(b, ["type", "source"], where);
        const src = asRecord(b["source"], `${where}.source`);
        if (src["type"] === "base64")
          return [
            {
              type: "image",
              mediaType: asString(src["media_type"], `${where}.source.media_type`),
              data: asString(src["data"], `${where}.source.data`),
            },
          ];
        if (src["type"] === "url")
          return [{ type: "image", url: asString(src["url"], `${where}.source.url`) }];
        throw new TranslationError(
          `${where}.source.type`,
          `image source "${String(src["type"])}" cannot be translated`,
        );
      }
      case "tool_use":
        blockKeys(b, ["type", "id", "name", "input"], where);
        return [
          {
            type: "tool_call",
            id: asString(b["id"], `${where}.id`),
            name: asString(b["name"], `${where}.name`),
            arguments: argsText(b["input"]),
          },
        ];
      case "tool_result":
        blockKeys(b, ["type", "tool_use_id", "content", "is_error"], where);
        return [
          {
            type: "tool_result",
            id: asString(b["tool_use_id"], `${where}.tool_use_id`),
            content: resultText(b["content"], `${where}.content`),
            ...(b["is_error"] === true ? { isError: true } : {}),
          },
        ];
      case "thinking":
        return [
          {
            type: "thinking",
            text: asString(b["thinking"], `${where}.thinking`),
            ...(typeof b["signature"] === "string" ? { signature: b["signature"] } : {}),
          },
        ];
      case "redacted_thinking":
        return []; // encrypted for Anthropic alone: no other provider can read it
      default:
        throw new TranslationError(
          `${where}.type`,
          `content block "${String(b["type"])}" has no equivalent in the target API`,
        );
    }
  });
}

function readToolChoice(v: unknown): { choice?: IrToolChoice; parallel?: boolean } {
  if (v === undefined || v === null) return {};
  const r = asRecord(v, "tool_choice");
  const parallel = r["disable_parallel_tool_use"] === true ? { parallel: false } : {};
  if (r["type"] === "auto") return { choice: "auto", ...parallel };
  if (r["type"] === "none") return { choice: "none", ...parallel };
  if (r["type"] === "any") return { choice: "required", ...parallel };
  if (r["type"] === "tool")
    return { choice: { name: asString(r["name"], "tool_choice.name") }, ...parallel };
  throw new TranslationError("tool_choice.type", `"${String(r["type"])}" cannot be translated`);
}

export function readMessagesRequest(body: Record<string, unknown>): IrRequest {
  refuseUnknown(body, REQUEST_KEYS, API);
  const thinking = body["thinking"];
  // `adaptive` leaves it to the model whether to think, as a model without the option does.
  const thinkingType =
    thinking === undefined || thinking === null
      ? undefined
      : asRecord(thinking, "thinking")["type"];
  if (thinkingType !== undefined && thinkingType !== "disabled" && thinkingType !== "adaptive")
    throw new TranslationError(
      "thinking",
      "extended thinking has no equivalent on the target model; remove it or use a Claude model",
    );
  // `output_config.effort` is a hint (like Responses' `reasoning` effort, dropped); a structured
  // output `format` changes what the model must write and is refused.
  const oc = body["output_config"];
  if (oc !== undefined && oc !== null)
    refuseUnknown(asRecord(oc, "output_config"), new Set(["effort"]), API, "output_config.");
  const messages: IrMessage[] = asArray(body["messages"], "messages").map((raw, i) => {
    const m = asRecord(raw, `messages[${i}]`);
    const role = m["role"];
    if (role !== "user" && role !== "assistant" && role !== "system")
      throw new TranslationError(
        `messages[${i}].role`,
        `role "${String(role)}" cannot be translated`,
      );
    const parts = readBlocks(m["content"], `messages[${i}].content`);
    if (role === "system") {
      const j = parts.findIndex((p) => p.type !== "text");
      if (j !== -1)
        throw new TranslationError(
          `messages[${i}].content[${j}]`,
          "a system message in the conversation can be translated only with text blocks",
        );
    }
    return { role, parts };
  });
  const tools: IrTool[] =
    body["tools"] === undefined
      ? []
      : asArray(body["tools"], "tools").map((raw, i) => {
          const t = asRecord(raw, `tools[${i}]`);
          if (t["type"] !== undefined && t["type"] !== "custom")
            throw new TranslationError(
              `tools[${i}].type`,
              `server tool "${String(t["type"])}" runs only on Anthropic's side`,
            );
          // `defer_loading` (tool search): the tool is offered in full instead.
          blockKeys(
            t,
            ["type", "name", "description", "input_schema", "defer_loading"],
            `tools[${i}]`,
          );
          return {
            name: asString(t["name"], `tools[${i}].name`),
            ...(typeof t["description"] === "string" ? { description: t["description"] } : {}),
            parameters: asRecord(t["input_schema"], `tools[${i}].input_schema`),
          };
        });
  const tc = readToolChoice(body["tool_choice"]);
  const meta = body["metadata"] as Record<string, unknown> | undefined;
  return {
    model: asString(body["model"], "model"),
    system: systemTexts(body["system"]),
    messages,
    tools,
    ...(tc.choice !== undefined ? { toolChoice: tc.choice } : {}),
    ...(tc.parallel !== undefined ? { parallelToolCalls: tc.parallel } : {}),
    ...(typeof body["max_tokens"] === "number" ? { maxTokens: body["max_tokens"] } : {}),
    ...(typeof body["temperature"] === "number" ? { temperature: body["temperature"] } : {}),
    ...(typeof body["top_p"] === "number" ? { topP: body["top_p"] } : {}),
    ...(Array.isArray(body["stop_sequences"]) ? { stop: body["stop_sequences"] as string[] } : {}),
    stream: body["stream"] === true,
    ...(typeof meta?.["user_id"] === "string" ? { user: meta["user_id"] } : {}),
  };
}

function writeBlocks(parts: readonly IrPart[], role: IrMessage["role"]): Record<string, unknown>[] {
  return parts.flatMap((p): Record<string, unknown>[] => {
    switch (p.type) {
      case "text":
        return p.text ? [{ type: "text", text: p.text }] : [];
      case "image":
        return [
          {
            type: "image",
            source:
              p.url !== undefined
                ? { type: "url", url: p.url }
                : { type: "base64", media_type: p.mediaType, data: p.data },
          },
        ];
      case "tool_call":
        return [
          {
            type: "tool_use",
            id: p.id,
            name: p.name,
            input: argsObject(p.arguments, "tool_call.arguments"),
          },
        ];
      case "tool_result":
        return [
          {
            type: "tool_result",
            tool_use_id: p.id,
            content: p.content,
            ...(p.isError ? { is_error: true } : {}),
          },
        ];
      case "thinking":
        // A thinking block goes back to Anthropic only with its signature (it rejects others).
        return role === "assistant" && p.signature !== undefined
          ? [{ type: "thinking", thinking: p.text, signature: p.signature }]
          : [];
    }
    return [];
  });
}

/** `defaultMaxTokens`: Anthropic requires max_tokens; a client API that may omit it gets this. */
export function writeMessagesRequest(
  ir: IrRequest,
  defaultMaxTokens = 4096,
): Record<string, unknown> {
  const messages: Record<string, unknown>[] = [];
  for (const m of ir.messages) {
    // Tool results lead their user turn, as Anthropic requires.
    const parts =
      m.role === "user"
        ? [
            ...m.parts.filter((p) => p.type === "tool_result"),
            ...m.parts.filter((p) => p.type !== "tool_result"),
          ]
        : m.parts;
    const content = writeBlocks(parts, m.role);
    if (content.length === 0) continue;
    const last = messages.at(-1);
    if (last?.["role"] === m.role) (last["content"] as unknown[]).push(...content);
    else messages.push({ role: m.role, content });
  }
  const out: Record<string, unknown> = {
    model: ir.model,
    max_tokens: ir.maxTokens ?? defaultMaxTokens,
    messages,
  };
  if (ir.system.length) out["system"] = ir.system.join("\n\n");
  if (ir.tools.length)
    out["tools"] = ir.tools.map((t) => ({
      name: t.name,
      ...(t.description !== undefined ? { description: t.description } : {}),
      input_schema: t.parameters,
    }));
  const disable =
    ir.parallelToolCalls === false && ir.tools.length ? { disable_parallel_tool_use: true } : {};
  if (ir.toolChoice !== undefined) {
    const c = ir.toolChoice;
    out["tool_choice"] =
      c === "auto"
        ? { type: "auto", ...disable }
        : c === "none"
          ? { type: "none" }
          : c === "required"
            ? { type: "any", ...disable }
            : { type: "tool", name: c.name, ...disable };
  } else if (Object.keys(disable).length) out["tool_choice"] = { type: "auto", ...disable };
  if (ir.temperature !== undefined) out["temperature"] = Math.min(ir.temperature, 1);
  if (ir.topP !== undefined) out["top_p"] = ir.topP;
  if (ir.stop !== undefined) out["stop_sequences"] = ir.stop;
  if (ir.user !== undefined) out["metadata"] = { user_id: ir.user };
  if (ir.stream) out["stream"] = true;
  return out;
}

function readFinish(v: unknown): IrFinish {
  if (v === "max_tokens") return "length";
  if (v === "tool_use") return "tool_calls";
  if (v === "refusal") return "content_filter";
  return "stop";
}

function writeFinish(f: IrFinish): string {
  return f === "length"
    ? "max_tokens"
    : f === "tool_calls"
      ? "tool_use"
      : f === "content_filter"
        ? "refusal"
        : "end_turn";
}

/** Anthropic's input_tokens exclude cache reads and writes; the IR counts all input. */
function readUsage(u: unknown): Partial<IrUsage> | undefined {
  if (u === null || typeof u !== "object") return undefined;
  const r = u as Record<string, unknown>;
  const out: Partial<IrUsage> = {};
  const read = Number(r["cache_read_input_tokens"] ?? 0);
  const write = Number(r["cache_creation_input_tokens"] ?? 0);
  if (typeof r["input_tokens"] === "number") out.input = r["input_tokens"] + read + write;
  if (typeof r["output_tokens"] === "number") out.output = r["output_tokens"];
  if (read) out.cacheRead = read;
  if (write) out.cacheWrite = write;
  return out;
}

function writeUsage(u: Partial<IrUsage>): Record<string, unknown> {
  const read = u.cacheRead ?? 0;
  const write = u.cacheWrite ?? 0;
  return {
    input_tokens: Math.max(0, (u.input ?? 0) - read - write),
    output_tokens: u.output ?? 0,
    cache_read_input_tokens: read,
    cache_creation_input_tokens: write,
  };
}

export function readMessagesResponse(body: Record<string, unknown>): IrResponse {
  const usage = readUsage(body["usage"]);
  return {
    id: String(body["id"] ?? "msg_translated"),
    model: String(body["model"] ?? ""),
    parts: readBlocks(body["content"] ?? [], "content"),
    finish: readFinish(body["stop_reason"]),
    ...(usage ? { usage: { input: usage.input ?? 0, output: usage.output ?? 0, ...usage } } : {}),
  };
}

export function writeMessagesResponse(ir: IrResponse): Record<string, unknown> {
  return {
    id: ir.id.startsWith("msg_") ? ir.id : `msg_${ir.id}`,
    type: "message",
    role: "assistant",
    model: ir.model,
    content: writeBlocks(ir.parts, "assistant").map((b) =>
      b["type"] === "text" ? { ...b, citations: null } : b,
    ),
    stop_reason: writeFinish(ir.finish),
    stop_sequence: null,
    usage: writeUsage(ir.usage ?? { input: 0, output: 0 }),
  };
}

/** Reads Messages stream events (event name and JSON data). */
export class MessagesStreamReader {
  private readonly toolIndex = new Map<number, number>();
  private tools = 0;

  read(data: string): IrEvent[] {
    const e = JSON.parse(data) as Record<string, unknown>;
    switch (e["type"]) {
      case "message_start": {
        const m = asRecord(e["message"], "message");
        const usage = readUsage(m["usage"]);
        return [
          {
            type: "start",
            id: String(m["id"] ?? "msg"),
            model: String(m["model"] ?? ""),
            ...(usage ? { usage } : {}),
          },
        ];
      }
      case "content_block_start": {
        const b = asRecord(e["content_block"], "content_block");
        if (b["type"] === "tool_use") {
          const index = this.tools++;
          this.toolIndex.set(Number(e["index"]), index);
          return [{ type: "tool_start", index, id: String(b["id"]), name: String(b["name"]) }];
        }
        if (b["type"] === "text" && typeof b["text"] === "string" && b["text"])
          return [{ type: "text", delta: b["text"] }];
        return [];
      }
      case "content_block_delta": {
        const d = asRecord(e["delta"], "delta");
        if (d["type"] === "text_delta") return [{ type: "text", delta: String(d["text"]) }];
        if (d["type"] === "thinking_delta")
          return [{ type: "thinking", delta: String(d["thinking"]) }];
        if (d["type"] === "signature_delta")
          return [{ type: "signature", signature: String(d["signature"]) }];
        if (d["type"] === "input_json_delta") {
          const index = this.toolIndex.get(Number(e["index"])) ?? 0;
          return d["partial_json"]
            ? [{ type: "tool_args", index, delta: String(d["partial_json"]) }]
            : [];
        }
        return [];
      }
      case "message_delta": {
        const out: IrEvent[] = [];
        const usage = readUsage(e["usage"]);
        if (usage)
          out.push({
            type: "usage",
            usage:
              usage.output !== undefined && usage.input === undefined
                ? { output: usage.output }
                : usage,
          });
        const d = e["delta"] as Record<string, unknown> | undefined;
        if (d?.["stop_reason"] !== undefined && d["stop_reason"] !== null)
          out.push({ type: "finish", finish: readFinish(d["stop_reason"]) });
        return out;
      }
      case "error": {
        const err = (e["error"] as Record<string, unknown> | undefined) ?? {};
        return [
          {
            type: "error",
            message: String(err["message"] ?? "upstream error"),
            errorType: String(err["type"] ?? "api_error"),
          },
        ];
      }
      default:
        return [];
    }
  }
}

type OpenBlock = { kind: "text" | "thinking"; index: number };

/** Writes IR events as Messages stream events (`event: …\ndata: …\n\n`). */
export class MessagesStreamWriter {
  private block: OpenBlock | undefined;
  private next = 0;
  private finish: IrFinish | undefined;
  private usage: Partial<IrUsage> = {};
  private started = false;
  /**
   * Tool calls in progress, in the order they started. Another API may interleave the argument
   * deltas of parallel calls; Anthropic streams one block at a time, so each call is written as
   * one whole block when something else follows it (or the stream ends).
   */
  private readonly tools = new Map<number, { id: string; name: string; args: string }>();

  private flushTools(): string {
    let out = "";
    for (const t of this.tools.values()) {
      out += this.close();
      const index = this.next++;
      out += this.ev("content_block_start", {
        index,
        content_block: { type: "tool_use", id: t.id, name: t.name, input: {} },
      });
      if (t.args)
        out += this.ev("content_block_delta", {
          index,
          delta: { type: "input_json_delta", partial_json: t.args },
        });
      out += this.ev("content_block_stop", { index });
    }
    this.tools.clear();
    return out;
  }

  private ev(type: string, data: Record<string, unknown>): string {
    return `event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`;
  }

  private open(kind: OpenBlock["kind"], contentBlock: Record<string, unknown>): string {
    let out = this.flushTools() + this.close();
    this.block = { kind, index: this.next++ };
    out += this.ev("content_block_start", { index: this.block.index, content_block: contentBlock });
    return out;
  }

  private close(): string {
    if (!this.block) return "";
    const out = this.ev("content_block_stop", { index: this.block.index });
    this.block = undefined;
    return out;
  }

  private ensureStarted(): string {
    if (this.started) return "";
    return this.write({ type: "start", id: "msg_translated", model: "" });
  }

  write(e: IrEvent): string {
    switch (e.type) {
      case "start": {
        if (this.started) return "";
        this.started = true;
        if (e.usage) Object.assign(this.usage, e.usage);
        return this.ev("message_start", {
          message: {
            id: e.id.startsWith("msg_") ? e.id : `msg_${e.id}`,
            type: "message",
            role: "assistant",
            model: e.model,
            content: [],
            stop_reason: null,
            stop_sequence: null,
            usage: writeUsage({ input: this.usage.input ?? 0, output: 0, ...this.usage }),
          },
        });
      }
      case "text": {
        let out = this.ensureStarted();
        if (this.block?.kind !== "text" || this.tools.size > 0)
          out += this.open("text", { type: "text", text: "" });
        return (
          out +
          this.ev("content_block_delta", {
            index: this.block?.index,
            delta: { type: "text_delta", text: e.delta },
          })
        );
      }
      case "thinking": {
        let out = this.ensureStarted();
        if (this.block?.kind !== "thinking" || this.tools.size > 0)
          out += this.open("thinking", { type: "thinking", thinking: "", signature: "" });
        return (
          out +
          this.ev("content_block_delta", {
            index: this.block?.index,
            delta: { type: "thinking_delta", thinking: e.delta },
          })
        );
      }
      case "signature":
        return this.block?.kind === "thinking"
          ? this.ev("content_block_delta", {
              index: this.block.index,
              delta: { type: "signature_delta", signature: e.signature },
            })
          : "";
      case "tool_start": {
        const out = this.ensureStarted() + this.close();
        this.tools.set(e.index, { id: e.id, name: e.name, args: "" });
        return out;
      }
      case "tool_args": {
        const t = this.tools.get(e.index);
        if (t) t.args += e.delta;
        return "";
      }
      case "usage":
        Object.assign(this.usage, e.usage);
        return "";
      case "finish":
        this.finish = e.finish;
        return "";
      case "error":
        return this.ev("error", {
          error: { type: e.errorType ?? "api_error", message: e.message },
        });
    }
  }

  end(): string {
    let out = this.ensureStarted() + this.close() + this.flushTools();
    out += this.ev("message_delta", {
      delta: { stop_reason: writeFinish(this.finish ?? "stop"), stop_sequence: null },
      usage: writeUsage({
        input: this.usage.input ?? 0,
        output: this.usage.output ?? 0,
        ...this.usage,
      }),
    });
    return out + this.ev("message_stop", {});
  }
}
