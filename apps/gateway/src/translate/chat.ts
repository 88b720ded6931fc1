// OpenAI Chat Completions ⇄ IR.
import {
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
  readOpenAiUsage,
  refuseUnknown,
  TranslationError,
} from "./ir.ts";

const API = "openai-chat" as const;
/** Fields with no effect on what the model produces, or that the gateway itself handles. */
const IGNORABLE = ["stream_options", "store", "metadata", "service_tier", "prompt_cache_key"];
const REQUEST_KEYS = new Set([
  "model",
  "messages",
  "tools",
  "tool_choice",
  "parallel_tool_calls",
  "max_tokens",
  "max_completion_tokens",
  "temperature",
  "top_p",
  "stop",
  "stream",
  "user",
  ...IGNORABLE,
]);

function dataUrl(url: string): { mediaType: string; data: string } | undefined {
  const m = /^data:([^;,]+);base64,(.*)$/s.exec(url);
  return m ? { mediaType: m[1] as string, data: m[2] as string } : undefined;
}

function userParts(content: unknown, at: string): IrPart[] {
  if (typeof content === "string") return [{ type: "text", text: content }];
  return asArray(content, at).map((raw, i): IrPart => {
    const p = asRecord(raw, `${at}[${i}]`);
    if (p["type"] === "text")
      return { type: "text", text: asString(p["text"], `${at}[${i}].text`) };
    if (p["type"] === "image_url") {
      const img = p["image_url"];
      const url =
        typeof img === "string"
          ? img
          : asString(asRecord(img, `${at}[${i}].image_url`)["url"], `${at}[${i}].image_url.url`);
      const inline = dataUrl(url);
      return inline ? { type: "image", ...inline } : { type: "image", url };
    }
    throw new TranslationError(
      `${at}[${i}].type`,
      `content part "${String(p["type"])}" has no equivalent in the target API`,
    );
  });
}

function textOf(content: unknown, at: string): string {
  if (content === null || content === undefined) return "";
  if (typeof content === "string") return content;
  return asArray(content, at)
    .map((raw, i) => {
      const p = asRecord(raw, `${at}[${i}]`);
      if (p["type"] !== "text" && p["type"] !== "refusal")
        throw new TranslationError(`${at}[${i}].type`, "only text parts can be translated here");
      return asString(p["text"] ?? p["refusal"], `${at}[${i}].text`);
    })
    .join("");
}

/** Appends to the last message when it has the same role (the IR alternates roles). */
function push(out: IrMessage[], role: IrMessage["role"], parts: IrPart[]): void {
  const last = out.at(-1);
  if (last?.role === role) last.parts.push(...parts);
  else out.push({ role, parts });
}

function readToolChoice(v: unknown): IrToolChoice | undefined {
  if (v === undefined || v === null) return undefined;
  if (v === "auto" || v === "none" || v === "required") return v;
  const r = asRecord(v, "tool_choice");
  const fn = asRecord(r["function"], "tool_choice.function");
  return { name: asString(fn["name"], "tool_choice.function.name") };
}

export function readChatRequest(body: Record<string, unknown>): IrRequest {
  refuseUnknown(body, REQUEST_KEYS, API);
  const system: string[] = [];
  const messages: IrMessage[] = [];
  asArray(body["messages"], "messages").forEach((raw, i) => {
    const at = `messages[${i}]`;
    const m = asRecord(raw, at);
    const role = m["role"];
    if (role === "system" || role === "developer")
      system.push(textOf(m["content"], `${at}.content`));
    else if (role === "user") push(messages, "user", userParts(m["content"], `${at}.content`));
    else if (role === "tool") {
      push(messages, "user", [
        {
          type: "tool_result",
          id: asString(m["tool_call_id"], `${at}.tool_call_id`),
          content: textOf(m["content"], `${at}.content`),
        },
      ]);
    } else if (role === "assistant") {
      const parts: IrPart[] = [];
      const reasoning = m["reasoning_content"];
      if (typeof reasoning === "string" && reasoning)
        parts.push({ type: "thinking", text: reasoning });
      const text = textOf(m["content"], `${at}.content`);
      if (text) parts.push({ type: "text", text });
      const calls = m["tool_calls"];
      if (calls !== undefined && calls !== null)
        asArray(calls, `${at}.tool_calls`).forEach((c, j) => {
          const call = asRecord(c, `${at}.tool_calls[${j}]`);
          const fn = asRecord(call["function"], `${at}.tool_calls[${j}].function`);
          parts.push({
            type: "tool_call",
            id: asString(call["id"], `${at}.tool_calls[${j}].id`),
            name: asString(fn["name"], `${at}.tool_calls[${j}].function.name`),
            arguments: argsText(fn["arguments"]),
          });
        });
      push(messages, "assistant", parts);
    } else throw new TranslationError(`${at}.role`, `role "${String(role)}" cannot be translated`);
  });
  const tools: IrTool[] =
    body["tools"] === undefined
      ? []
      : asArray(body["tools"], "tools").map((raw, i) => {
          const t = asRecord(raw, `tools[${i}]`);
          if (t["type"] !== "function")
            throw new TranslationError(
              `tools[${i}].type`,
              `tool type "${String(t["type"])}" has no equivalent in the target API`,
            );
          const fn = asRecord(t["function"], `tools[${i}].function`);
          return {
            name: asString(fn["name"], `tools[${i}].function.name`),
            ...(typeof fn["description"] === "string" ? { description: fn["description"] } : {}),
            parameters: (fn["parameters"] as Record<string, unknown> | undefined) ?? {
              type: "object",
              properties: {},
            },
          };
        });
  const max = body["max_completion_tokens"] ?? body["max_tokens"];
  const stop = body["stop"];
  const toolChoice = readToolChoice(body["tool_choice"]);
  return {
    model: asString(body["model"], "model"),
    system,
    messages,
    tools,
    ...(toolChoice !== undefined ? { toolChoice } : {}),
    ...(typeof body["parallel_tool_calls"] === "boolean"
      ? { parallelToolCalls: body["parallel_tool_calls"] }
      : {}),
    ...(typeof max === "number" ? { maxTokens: max } : {}),
    ...(typeof body["temperature"] === "number" ? { temperature: body["temperature"] } : {}),
    ...(typeof body["top_p"] === "number" ? { topP: body["top_p"] } : {}),
    ...(stop !== undefined && stop !== null
      ? { stop: typeof stop === "string" ? [stop] : (stop as string[]) }
      : {}),
    stream: body["stream"] === true,
    ...(typeof body["user"] === "string" ? { user: body["user"] } : {}),
  };
}

export function writeChatRequest(ir: IrRequest): Record<string, unknown> {
  const messages: Record<string, unknown>[] = ir.system.map((s) => ({
    role: "system",
    content: s,
  }));
  for (const m of ir.messages) {
    if (m.role === "system") {
      const text = m.parts.flatMap((p) => (p.type === "text" ? [p.text] : [])).join("");
      messages.push({ role: "system", content: text });
    } else if (m.role === "user") {
      const rest: Record<string, unknown>[] = [];
      for (const p of m.parts) {
        if (p.type === "tool_result")
          messages.push({ role: "tool", tool_call_id: p.id, content: p.content });
        else if (p.type === "text") rest.push({ type: "text", text: p.text });
        else if (p.type === "image")
          rest.push({
            type: "image_url",
            image_url: { url: p.url ?? `data:${p.mediaType};base64,${p.data}` },
          });
      }
      if (rest.length === 1 && rest[0]?.["type"] === "text")
        messages.push({ role: "user", content: rest[0]["text"] });
      else if (rest.length > 0) messages.push({ role: "user", content: rest });
    } else {
      const text = m.parts.flatMap((p) => (p.type === "text" ? [p.text] : [])).join("");
      const calls = m.parts.flatMap((p) =>
        p.type === "tool_call"
          ? [{ id: p.id, type: "function", function: { name: p.name, arguments: p.arguments } }]
          : [],
      );
      messages.push({
        role: "assistant",
        content: text || (calls.length ? null : ""),
        ...(calls.length ? { tool_calls: calls } : {}),
      });
    }
  }
  const out: Record<string, unknown> = { model: ir.model, messages };
  if (ir.tools.length)
    out["tools"] = ir.tools.map((t) => ({
      type: "function",
      function: {
        name: t.name,
        ...(t.description !== undefined ? { description: t.description } : {}),
        parameters: t.parameters,
      },
    }));
  if (ir.toolChoice !== undefined)
    out["tool_choice"] =
      typeof ir.toolChoice === "string"
        ? ir.toolChoice
        : { type: "function", function: { name: ir.toolChoice.name } };
  if (ir.parallelToolCalls !== undefined && ir.tools.length)
    out["parallel_tool_calls"] = ir.parallelToolCalls;
  if (ir.maxTokens !== undefined) out["max_completion_tokens"] = ir.maxTokens;
  if (ir.temperature !== undefined) out["temperature"] = ir.temperature;
  if (ir.topP !== undefined) out["top_p"] = ir.topP;
  if (ir.stop !== undefined) out["stop"] = ir.stop;
  if (ir.user !== undefined) out["user"] = ir.user;
  if (ir.stream) {
    out["stream"] = true;
    out["stream_options"] = { include_usage: true };
  }
  return out;
}

function readFinish(v: unknown): IrFinish {
  if (v === "length") return "length";
  if (v === "tool_calls" || v === "function_call") return "tool_calls";
  if (v === "content_filter") return "content_filter";
  return "stop";
}

function readUsage(u: unknown): IrUsage | undefined {
  return readOpenAiUsage(u, {
    input: "prompt_tokens",
    output: "completion_tokens",
    inputDetails: "prompt_tokens_details",
    outputDetails: "completion_tokens_details",
  });
}

function writeUsage(u: IrUsage): Record<string, unknown> {
  return {
    prompt_tokens: u.input,
    completion_tokens: u.output,
    total_tokens: u.input + u.output,
    prompt_tokens_details: { cached_tokens: u.cacheRead ?? 0 },
    completion_tokens_details: { reasoning_tokens: u.reasoning ?? 0 },
  };
}

export function readChatResponse(body: Record<string, unknown>): IrResponse {
  const choice = asRecord(asArray(body["choices"], "choices")[0], "choices[0]");
  const msg = asRecord(choice["message"], "choices[0].message");
  const parts: IrPart[] = [];
  if (typeof msg["reasoning_content"] === "string" && msg["reasoning_content"])
    parts.push({ type: "thinking", text: msg["reasoning_content"] });
  const text = textOf(msg["content"], "choices[0].message.content");
  if (text) parts.push({ type: "text", text });
  for (const c of (msg["tool_calls"] as Record<string, unknown>[] | undefined) ?? []) {
    const fn = c["function"] as Record<string, unknown>;
    parts.push({
      type: "tool_call",
      id: String(c["id"]),
      name: String(fn["name"]),
      arguments: argsText(fn["arguments"]),
    });
  }
  const usage = readUsage(body["usage"]);
  return {
    id: String(body["id"] ?? "chatcmpl-translated"),
    model: String(body["model"] ?? ""),
    parts,
    finish: readFinish(choice["finish_reason"]),
    ...(usage ? { usage } : {}),
  };
}

export function writeChatResponse(ir: IrResponse): Record<string, unknown> {
  const text = ir.parts.flatMap((p) => (p.type === "text" ? [p.text] : [])).join("");
  const calls = ir.parts.flatMap((p) =>
    p.type === "tool_call"
      ? [{ id: p.id, type: "function", function: { name: p.name, arguments: p.arguments } }]
      : [],
  );
  return {
    id: ir.id,
    object: "chat.completion",
    created: Math.floor(Date.now() / 1000),
    model: ir.model,
    choices: [
      {
        index: 0,
        message: {
          role: "assistant",
          content: text || null,
          refusal: null,
          ...(calls.length ? { tool_calls: calls } : {}),
        },
        finish_reason: ir.finish,
        logprobs: null,
      },
    ],
    ...(ir.usage ? { usage: writeUsage(ir.usage) } : {}),
  };
}

/** Reads chat stream chunks (the JSON of each `data:` line; `[DONE]` ends it). */
export class ChatStreamReader {
  private started = false;
  private readonly seenTools = new Set<number>();

  read(data: string): IrEvent[] {
    if (data === "[DONE]") return [];
    const chunk = JSON.parse(data) as Record<string, unknown>;
    const out: IrEvent[] = [];
    if (chunk["error"] !== undefined) {
      const e = chunk["error"] as Record<string, unknown>;
      return [{ type: "error", message: String(e["message"] ?? "upstream error") }];
    }
    if (!this.started) {
      this.started = true;
      out.push({
        type: "start",
        id: String(chunk["id"] ?? "chatcmpl"),
        model: String(chunk["model"] ?? ""),
      });
    }
    for (const raw of (chunk["choices"] as Record<string, unknown>[] | undefined) ?? []) {
      const delta = (raw["delta"] as Record<string, unknown> | undefined) ?? {};
      if (typeof delta["reasoning_content"] === "string" && delta["reasoning_content"])
        out.push({ type: "thinking", delta: delta["reasoning_content"] });
      if (typeof delta["content"] === "string" && delta["content"])
        out.push({ type: "text", delta: delta["content"] });
      for (const tc of (delta["tool_calls"] as Record<string, unknown>[] | undefined) ?? []) {
        const index = Number(tc["index"] ?? 0);
        const fn = (tc["function"] as Record<string, unknown> | undefined) ?? {};
        if (!this.seenTools.has(index)) {
          this.seenTools.add(index);
          out.push({
            type: "tool_start",
            index,
            id: String(tc["id"] ?? `call_${index}`),
            name: String(fn["name"] ?? ""),
          });
        }
        if (typeof fn["arguments"] === "string" && fn["arguments"])
          out.push({ type: "tool_args", index, delta: fn["arguments"] });
      }
      if (raw["finish_reason"] !== null && raw["finish_reason"] !== undefined)
        out.push({ type: "finish", finish: readFinish(raw["finish_reason"]) });
    }
    const usage = readUsage(chunk["usage"]);
    if (usage) out.push({ type: "usage", usage });
    return out;
  }
}

/** Writes IR events as chat stream frames (`data: …\n\n`, then `data: [DONE]`). */
export class ChatStreamWriter {
  private id = "chatcmpl-translated";
  private model = "";
  private readonly created = Math.floor(Date.now() / 1000);
  private finish: IrFinish | undefined;
  private usage: Partial<IrUsage> = {};

  constructor(private readonly includeUsage: boolean) {}

  private frame(choices: unknown[], extra: Record<string, unknown> = {}): string {
    return `data: ${JSON.stringify({ id: this.id, object: "chat.completion.chunk", created: this.created, model: this.model, choices, ...extra })}\n\n`;
  }

  private delta(delta: Record<string, unknown>): string {
    return this.frame([{ index: 0, delta, finish_reason: null, logprobs: null }]);
  }

  write(e: IrEvent): string {
    switch (e.type) {
      case "start":
        this.id = e.id.startsWith("chatcmpl") ? e.id : `chatcmpl-${e.id}`;
        this.model = e.model;
        if (e.usage) Object.assign(this.usage, e.usage);
        return this.delta({ role: "assistant", content: "", refusal: null });
      case "text":
        return this.delta({ content: e.delta });
      case "thinking":
      case "signature":
        return ""; // chat has no thinking blocks
      case "tool_start":
        return this.delta({
          tool_calls: [
            {
              index: e.index,
              id: e.id,
              type: "function",
              function: { name: e.name, arguments: "" },
            },
          ],
        });
      case "tool_args":
        return this.delta({ tool_calls: [{ index: e.index, function: { arguments: e.delta } }] });
      case "usage":
        Object.assign(this.usage, e.usage);
        return "";
      case "finish":
        this.finish = e.finish;
        return "";
      case "error":
        return `data: ${JSON.stringify({ error: { message: e.message, type: e.errorType ?? "upstream_error" } })}\n\n`;
    }
  }

  /** The finish chunk, the usage chunk when the client asked for it, and `[DONE]`. */
  end(): string {
    let out = this.frame([
      { index: 0, delta: {}, finish_reason: this.finish ?? "stop", logprobs: null },
    ]);
    if (this.includeUsage) {
      const u: IrUsage = {
        input: this.usage.input ?? 0,
        output: this.usage.output ?? 0,
        ...this.usage,
      };
      out += this.frame([], { usage: writeUsage(u) });
    }
    return `${out}data: [DONE]\n\n`;
  }
}
