// OpenAI Responses ⇄ IR.
import {
  argsText,
  asArray,
  asRecord,
  asString,
  EMPTY_CONTEXT,
  flatToolName,
  type IrEvent,
  type IrFinish,
  type IrMessage,
  type IrPart,
  type IrRequest,
  type IrResponse,
  type IrTool,
  type IrToolChoice,
  type IrUsage,
  type NamespacedName,
  readOpenAiUsage,
  refuseUnknown,
  TOOL_NAME,
  type TranslationContext,
  TranslationError,
} from "./ir.ts";

const API = "openai-responses" as const;
/**
 * Hints with no effect on what the model writes, or that only OpenAI can act on (`reasoning`
 * effort and `include` of encrypted reasoning are asked by Codex on every call; `store`,
 * `prompt_cache_key` and `service_tier` are OpenAI's account-side knobs). Documented as dropped.
 */
const HINTS = [
  "store",
  "include",
  "prompt_cache_key",
  "service_tier",
  "reasoning",
  "metadata",
  // Codex's own client tags (installation and session ids), like `metadata`.
  "client_metadata",
  "text",
  "truncation",
];
const REQUEST_KEYS = new Set([
  "model",
  "input",
  "instructions",
  "tools",
  "tool_choice",
  "parallel_tool_calls",
  "max_output_tokens",
  "temperature",
  "top_p",
  "stream",
  "user",
  ...HINTS,
]);

function push(out: IrMessage[], role: IrMessage["role"], parts: IrPart[]): void {
  if (parts.length === 0) return;
  const last = out.at(-1);
  if (last?.role === role) last.parts.push(...parts);
  else out.push({ role, parts });
}

function contentParts(content: unknown, at: string): IrPart[] {
  if (typeof content === "string") return [{ type: "text", text: content }];
  return asArray(content, at).map((raw, i): IrPart => {
    const p = asRecord(raw, `${at}[${i}]`);
    const t = p["type"];
    if (t === "input_text" || t === "output_text" || t === "text")
      return { type: "text", text: asString(p["text"], `${at}[${i}].text`) };
    if (t === "input_image") {
      const url = asString(p["image_url"], `${at}[${i}].image_url`);
      const m = /^data:([^;,]+);base64,(.*)$/s.exec(url);
      return m
        ? { type: "image", mediaType: m[1] as string, data: m[2] as string }
        : { type: "image", url };
    }
    throw new TranslationError(
      `${at}[${i}].type`,
      `content part "${String(t)}" has no equivalent in the target API`,
    );
  });
}

function text(parts: IrPart[]): string {
  return parts.flatMap((p) => (p.type === "text" ? [p.text] : [])).join("");
}

/**
 * The flat name of a namespaced tool (see `flatToolName`), remembered in `names`. Refused when
 * the flat name is not a valid tool name for the other APIs (too long, odd characters).
 */
function namespaced(
  namespace: string,
  name: string,
  at: string,
  names: Map<string, NamespacedName>,
): string {
  const flat = flatToolName(namespace, name);
  if (!TOOL_NAME.test(flat))
    throw new TranslationError(
      at,
      `tool "${name}" of namespace "${namespace}" becomes "${flat}" on the target API, which allows only letters, digits, "_" and "-" up to 64 characters; shorten the namespace or the tool name`,
    );
  names.set(flat, { namespace, name });
  return flat;
}

/** Hosted tools OpenAI runs on its own servers: no other provider can run them for the client. */
const HOSTED_TOOL_FIX: Record<string, string> = {
  web_search:
    'remove the tool (Codex: set web_search = "disabled" in its config.toml) or use an OpenAI model',
  web_search_preview: "remove the tool or use an OpenAI model",
};

function functionTool(t: Record<string, unknown>, name: string): IrTool {
  return {
    name,
    ...(typeof t["description"] === "string" ? { description: t["description"] } : {}),
    parameters: (t["parameters"] as Record<string, unknown> | undefined) ?? {
      type: "object",
      properties: {},
    },
  };
}

/**
 * Responses tools as IR tools: function tools as they are, the function tools of a `namespace`
 * tool flattened (`namespace__name`, remembered in `names` so calls go back under their
 * namespace). Tools only OpenAI can run (hosted search, file search, computer use, code
 * interpreter, custom grammar tools) are refused, named.
 */
function readTools(raw: unknown, names: Map<string, NamespacedName>): IrTool[] {
  if (raw === undefined || raw === null) return [];
  const out: IrTool[] = [];
  const seen = new Set<string>();
  const add = (tool: IrTool, at: string) => {
    if (seen.has(tool.name))
      throw new TranslationError(
        at,
        `two tools are called "${tool.name}" once namespaces are flattened; rename one`,
      );
    seen.add(tool.name);
    out.push(tool);
  };
  asArray(raw, "tools").forEach((item, i) => {
    const at = `tools[${i}]`;
    const t = asRecord(item, at);
    const type = t["type"];
    if (type === "function") {
      add(functionTool(t, asString(t["name"], `${at}.name`)), `${at}.name`);
      return;
    }
    if (type === "namespace") {
      const ns = asString(t["name"], `${at}.name`);
      asArray(t["tools"], `${at}.tools`).forEach((innerRaw, j) => {
        const iat = `${at}.tools[${j}]`;
        const inner = asRecord(innerRaw, iat);
        if (inner["type"] !== "function")
          throw new TranslationError(
            `${iat}.type`,
            `tool type "${String(inner["type"])}" inside namespace "${ns}" runs only on OpenAI's side; only function tools can be translated`,
          );
        const name = asString(inner["name"], `${iat}.name`);
        const tool = functionTool(inner, namespaced(ns, name, `${iat}.name`, names));
        // The namespace's description tells the model what the group is for: keep it.
        const groupDescription = typeof t["description"] === "string" ? t["description"] : "";
        if (groupDescription && tool.description === undefined)
          tool.description = `(${ns}: ${groupDescription})`;
        else if (groupDescription)
          tool.description = `${tool.description} (${ns}: ${groupDescription})`;
        add(tool, `${iat}.name`);
      });
      return;
    }
    const fix = HOSTED_TOOL_FIX[String(type)] ?? "remove the tool or use an OpenAI model";
    throw new TranslationError(
      `${at}.type`,
      `tool type "${String(type)}" runs only on OpenAI's side and the target model's provider cannot run it; ${fix}`,
    );
  });
  return out;
}

export function readResponsesRequest(body: Record<string, unknown>): IrRequest {
  refuseUnknown(body, REQUEST_KEYS, API);
  // `text` carries verbosity (a hint) and the output format: a structured-output format changes
  // what the model must write, so only plain text may be dropped.
  const format = (body["text"] as Record<string, unknown> | undefined)?.["format"] as
    | Record<string, unknown>
    | undefined;
  if (format !== undefined && format !== null && format["type"] !== "text")
    throw new TranslationError(
      "text.format",
      `structured output ("${String(format["type"])}") has no equivalent on the target model; remove it or use an OpenAI model`,
    );
  const toolNames = new Map<string, NamespacedName>();
  const tools = readTools(body["tools"], toolNames);
  const system: string[] = [];
  if (typeof body["instructions"] === "string" && body["instructions"])
    system.push(body["instructions"]);
  const messages: IrMessage[] = [];
  const input = body["input"];
  if (typeof input === "string") push(messages, "user", [{ type: "text", text: input }]);
  else
    asArray(input, "input").forEach((raw, i) => {
      const at = `input[${i}]`;
      const item = asRecord(raw, at);
      const type = item["type"] ?? "message";
      if (type === "message") {
        const role = item["role"];
        const parts = contentParts(item["content"], `${at}.content`);
        if (role === "system" || role === "developer") system.push(text(parts));
        else if (role === "user" || role === "assistant") push(messages, role, parts);
        else
          throw new TranslationError(`${at}.role`, `role "${String(role)}" cannot be translated`);
      } else if (type === "function_call") {
        const name = asString(item["name"], `${at}.name`);
        push(messages, "assistant", [
          {
            type: "tool_call",
            id: asString(item["call_id"], `${at}.call_id`),
            name:
              typeof item["namespace"] === "string"
                ? namespaced(item["namespace"], name, `${at}.namespace`, toolNames)
                : name,
            arguments: argsText(item["arguments"]),
          },
        ]);
      } else if (type === "function_call_output") {
        const output = item["output"];
        push(messages, "user", [
          {
            type: "tool_result",
            id: asString(item["call_id"], `${at}.call_id`),
            content:
              typeof output === "string" ? output : text(contentParts(output, `${at}.output`)),
          },
        ]);
      } else if (type === "reasoning") {
        const summary = (item["summary"] as Record<string, unknown>[] | undefined) ?? [];
        const t = summary.map((s) => String(s["text"] ?? "")).join("\n");
        if (t) push(messages, "assistant", [{ type: "thinking", text: t }]);
      } else
        throw new TranslationError(
          `${at}.type`,
          `input item "${String(type)}" has no equivalent in the target API`,
        );
    });
  let toolChoice: IrToolChoice | undefined;
  const tc = body["tool_choice"];
  if (tc === "auto" || tc === "none" || tc === "required") toolChoice = tc;
  else if (tc !== undefined && tc !== null) {
    const c = asRecord(tc, "tool_choice");
    const name = asString(c["name"], "tool_choice.name");
    toolChoice = {
      name:
        typeof c["namespace"] === "string"
          ? namespaced(c["namespace"], name, "tool_choice.namespace", toolNames)
          : name,
    };
  }
  return {
    model: asString(body["model"], "model"),
    system,
    messages,
    tools,
    ...(toolChoice !== undefined ? { toolChoice } : {}),
    ...(typeof body["parallel_tool_calls"] === "boolean"
      ? { parallelToolCalls: body["parallel_tool_calls"] }
      : {}),
    ...(typeof body["max_output_tokens"] === "number"
      ? { maxTokens: body["max_output_tokens"] }
      : {}),
    ...(typeof body["temperature"] === "number" ? { temperature: body["temperature"] } : {}),
    ...(typeof body["top_p"] === "number" ? { topP: body["top_p"] } : {}),
    stream: body["stream"] === true,
    ...(typeof body["user"] === "string" ? { user: body["user"] } : {}),
    ...(toolNames.size > 0 ? { toolNames } : {}),
  };
}

export function writeResponsesRequest(ir: IrRequest): Record<string, unknown> {
  if (ir.stop !== undefined && ir.stop.length > 0)
    throw new TranslationError("stop", "the Responses API has no stop sequences");
  const input: Record<string, unknown>[] = [];
  for (const m of ir.messages) {
    const content: Record<string, unknown>[] = [];
    const flush = () => {
      if (content.length) input.push({ type: "message", role: m.role, content: content.splice(0) });
    };
    for (const p of m.parts) {
      if (p.type === "text")
        content.push({ type: m.role === "assistant" ? "output_text" : "input_text", text: p.text });
      else if (p.type === "image")
        content.push({
          type: "input_image",
          image_url: p.url ?? `data:${p.mediaType};base64,${p.data}`,
        });
      else if (p.type === "tool_call") {
        flush();
        input.push({ type: "function_call", call_id: p.id, name: p.name, arguments: p.arguments });
      } else if (p.type === "tool_result") {
        flush();
        input.push({ type: "function_call_output", call_id: p.id, output: p.content });
      }
      // thinking from another provider cannot be handed to OpenAI (its reasoning is encrypted)
    }
    flush();
  }
  const out: Record<string, unknown> = { model: ir.model, input };
  if (ir.system.length) out["instructions"] = ir.system.join("\n\n");
  if (ir.tools.length)
    out["tools"] = ir.tools.map((t) => ({
      type: "function",
      name: t.name,
      ...(t.description !== undefined ? { description: t.description } : {}),
      parameters: t.parameters,
      strict: false,
    }));
  if (ir.toolChoice !== undefined)
    out["tool_choice"] =
      typeof ir.toolChoice === "string"
        ? ir.toolChoice
        : { type: "function", name: ir.toolChoice.name };
  if (ir.parallelToolCalls !== undefined && ir.tools.length)
    out["parallel_tool_calls"] = ir.parallelToolCalls;
  if (ir.maxTokens !== undefined) out["max_output_tokens"] = ir.maxTokens;
  if (ir.temperature !== undefined) out["temperature"] = ir.temperature;
  if (ir.topP !== undefined) out["top_p"] = ir.topP;
  if (ir.user !== undefined) out["user"] = ir.user;
  if (ir.stream) out["stream"] = true;
  return out;
}

function readUsage(u: unknown): IrUsage | undefined {
  return readOpenAiUsage(u, {
    input: "input_tokens",
    output: "output_tokens",
    inputDetails: "input_tokens_details",
    outputDetails: "output_tokens_details",
  });
}

function writeUsage(u: IrUsage): Record<string, unknown> {
  return {
    input_tokens: u.input,
    input_tokens_details: { cached_tokens: u.cacheRead ?? 0 },
    output_tokens: u.output,
    output_tokens_details: { reasoning_tokens: u.reasoning ?? 0 },
    total_tokens: u.input + u.output,
  };
}

export function readResponsesResponse(body: Record<string, unknown>): IrResponse {
  const parts: IrPart[] = [];
  for (const raw of (body["output"] as Record<string, unknown>[] | undefined) ?? []) {
    if (raw["type"] === "message")
      parts.push(...contentParts(raw["content"] ?? [], "output.content"));
    else if (raw["type"] === "function_call")
      parts.push({
        type: "tool_call",
        id: String(raw["call_id"]),
        name: String(raw["name"]),
        arguments: argsText(raw["arguments"]),
      });
    else if (raw["type"] === "reasoning") {
      const t = ((raw["summary"] as Record<string, unknown>[] | undefined) ?? [])
        .map((s) => String(s["text"] ?? ""))
        .join("\n");
      if (t) parts.push({ type: "thinking", text: t });
    }
  }
  const incomplete = (body["incomplete_details"] as Record<string, unknown> | null | undefined)?.[
    "reason"
  ];
  const finish: IrFinish = parts.some((p) => p.type === "tool_call")
    ? "tool_calls"
    : incomplete === "max_output_tokens"
      ? "length"
      : incomplete === "content_filter"
        ? "content_filter"
        : "stop";
  const usage = readUsage(body["usage"]);
  return {
    id: String(body["id"] ?? "resp_translated"),
    model: String(body["model"] ?? ""),
    parts,
    finish,
    ...(usage ? { usage } : {}),
  };
}

/** Output items of a finished response, with ids (`msg_…`, `fc_…`, `rs_…`). */
/** A function call's name as the Responses client declared it: under its namespace, if any. */
function callName(name: string, context: TranslationContext): Record<string, string> {
  const n = context.toolNames.get(name);
  return n === undefined ? { name } : { name: n.name, namespace: n.namespace };
}

function outputItems(
  id: string,
  parts: readonly IrPart[],
  context: TranslationContext,
): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  const thinking = parts.flatMap((p) => (p.type === "thinking" ? [p.text] : [])).join("");
  if (thinking)
    out.push({
      type: "reasoning",
      id: `rs_${id}`,
      summary: [{ type: "summary_text", text: thinking }],
    });
  const t = text([...parts]);
  if (t)
    out.push({
      type: "message",
      id: `msg_${id}`,
      status: "completed",
      role: "assistant",
      content: [{ type: "output_text", text: t, annotations: [] }],
    });
  parts.forEach((p, i) => {
    if (p.type === "tool_call")
      out.push({
        type: "function_call",
        id: `fc_${id}_${i}`,
        call_id: p.id,
        ...callName(p.name, context),
        arguments: p.arguments,
        status: "completed",
      });
  });
  return out;
}

function responseObject(
  id: string,
  model: string,
  status: string,
  output: unknown[],
  finish?: IrFinish,
  usage?: IrUsage,
): Record<string, unknown> {
  return {
    id,
    object: "response",
    created_at: Math.floor(Date.now() / 1000),
    status,
    model,
    output,
    incomplete_details:
      finish === "length"
        ? { reason: "max_output_tokens" }
        : finish === "content_filter"
          ? { reason: "content_filter" }
          : null,
    error: null,
    parallel_tool_calls: true,
    tool_choice: "auto",
    tools: [],
    ...(usage ? { usage: writeUsage(usage) } : { usage: null }),
  };
}

export function writeResponsesResponse(
  ir: IrResponse,
  context: TranslationContext = EMPTY_CONTEXT,
): Record<string, unknown> {
  const id = ir.id.startsWith("resp_") ? ir.id : `resp_${ir.id}`;
  const status =
    ir.finish === "length" || ir.finish === "content_filter" ? "incomplete" : "completed";
  return responseObject(
    id,
    ir.model,
    status,
    outputItems(id.slice(5), ir.parts, context),
    ir.finish,
    ir.usage,
  );
}

/** Reads Responses stream events. */
export class ResponsesStreamReader {
  private readonly toolIndex = new Map<number, number>();
  private tools = 0;
  private sawTool = false;

  read(data: string): IrEvent[] {
    const e = JSON.parse(data) as Record<string, unknown>;
    switch (e["type"]) {
      case "response.created": {
        const r = asRecord(e["response"], "response");
        return [{ type: "start", id: String(r["id"] ?? "resp"), model: String(r["model"] ?? "") }];
      }
      case "response.output_item.added": {
        const item = asRecord(e["item"], "item");
        if (item["type"] !== "function_call") return [];
        const index = this.tools++;
        this.sawTool = true;
        this.toolIndex.set(Number(e["output_index"]), index);
        return [
          { type: "tool_start", index, id: String(item["call_id"]), name: String(item["name"]) },
        ];
      }
      case "response.output_text.delta":
        return [{ type: "text", delta: String(e["delta"]) }];
      case "response.reasoning_summary_text.delta":
      case "response.reasoning_text.delta":
        return [{ type: "thinking", delta: String(e["delta"]) }];
      case "response.function_call_arguments.delta":
        return [
          {
            type: "tool_args",
            index: this.toolIndex.get(Number(e["output_index"])) ?? 0,
            delta: String(e["delta"]),
          },
        ];
      case "response.completed":
      case "response.incomplete": {
        const r = asRecord(e["response"], "response");
        const out: IrEvent[] = [];
        const usage = readUsage(r["usage"]);
        if (usage) out.push({ type: "usage", usage });
        const reason = (r["incomplete_details"] as Record<string, unknown> | null | undefined)?.[
          "reason"
        ];
        out.push({
          type: "finish",
          finish: this.sawTool
            ? "tool_calls"
            : reason === "max_output_tokens"
              ? "length"
              : reason === "content_filter"
                ? "content_filter"
                : "stop",
        });
        return out;
      }
      case "response.failed":
      case "error": {
        const r =
          (e["response"] as Record<string, unknown> | undefined)?.["error"] ?? e["error"] ?? e;
        const err = r as Record<string, unknown>;
        return [{ type: "error", message: String(err["message"] ?? "upstream error") }];
      }
      default:
        return [];
    }
  }
}

type Item =
  | { kind: "message"; id: string; text: string }
  | { kind: "reasoning"; id: string; text: string }
  | { kind: "tool"; id: string; callId: string; name: string; args: string };

/** Writes IR events as Responses stream events, with sequence numbers and full item lifecycles. */
export class ResponsesStreamWriter {
  private id = "resp_translated";
  private model = "";
  private seq = 0;
  private readonly items: Item[] = [];
  private open: number | undefined;
  private readonly toolItem = new Map<number, number>();
  private finish: IrFinish | undefined;
  private usage: Partial<IrUsage> = {};
  private started = false;

  constructor(private readonly context: TranslationContext = EMPTY_CONTEXT) {}

  private ev(type: string, data: Record<string, unknown>): string {
    return `event: ${type}\ndata: ${JSON.stringify({ type, sequence_number: this.seq++, ...data })}\n\n`;
  }

  private itemJson(it: Item, done: boolean): Record<string, unknown> {
    const status = done ? "completed" : "in_progress";
    if (it.kind === "message")
      return {
        type: "message",
        id: it.id,
        status,
        role: "assistant",
        content: done ? [{ type: "output_text", text: it.text, annotations: [] }] : [],
      };
    if (it.kind === "reasoning")
      return {
        type: "reasoning",
        id: it.id,
        summary: done ? [{ type: "summary_text", text: it.text }] : [],
      };
    return {
      type: "function_call",
      id: it.id,
      call_id: it.callId,
      ...callName(it.name, this.context),
      arguments: done ? it.args : "",
      status,
    };
  }

  private closeOpen(): string {
    if (this.open === undefined) return "";
    const index = this.open;
    const it = this.items[index] as Item;
    this.open = undefined;
    let out = "";
    if (it.kind === "message") {
      out += this.ev("response.output_text.done", {
        item_id: it.id,
        output_index: index,
        content_index: 0,
        text: it.text,
        logprobs: [],
      });
      out += this.ev("response.content_part.done", {
        item_id: it.id,
        output_index: index,
        content_index: 0,
        part: { type: "output_text", text: it.text, annotations: [] },
      });
    } else if (it.kind === "reasoning") {
      out += this.ev("response.reasoning_summary_text.done", {
        item_id: it.id,
        output_index: index,
        summary_index: 0,
        text: it.text,
      });
      out += this.ev("response.reasoning_summary_part.done", {
        item_id: it.id,
        output_index: index,
        summary_index: 0,
        part: { type: "summary_text", text: it.text },
      });
    } else {
      out += this.ev("response.function_call_arguments.done", {
        item_id: it.id,
        output_index: index,
        arguments: it.args,
      });
    }
    return (
      out +
      this.ev("response.output_item.done", { output_index: index, item: this.itemJson(it, true) })
    );
  }

  private add(it: Item): string {
    let out = this.closeOpen();
    const index = this.items.push(it) - 1;
    this.open = index;
    out += this.ev("response.output_item.added", {
      output_index: index,
      item: this.itemJson(it, false),
    });
    if (it.kind === "message")
      out += this.ev("response.content_part.added", {
        item_id: it.id,
        output_index: index,
        content_index: 0,
        part: { type: "output_text", text: "", annotations: [] },
      });
    if (it.kind === "reasoning")
      out += this.ev("response.reasoning_summary_part.added", {
        item_id: it.id,
        output_index: index,
        summary_index: 0,
        part: { type: "summary_text", text: "" },
      });
    return out;
  }

  private ensureStarted(): string {
    return this.started ? "" : this.write({ type: "start", id: "resp_translated", model: "" });
  }

  write(e: IrEvent): string {
    switch (e.type) {
      case "start": {
        if (this.started) return "";
        this.started = true;
        this.id = e.id.startsWith("resp_") ? e.id : `resp_${e.id}`;
        this.model = e.model;
        if (e.usage) Object.assign(this.usage, e.usage);
        const r = responseObject(this.id, this.model, "in_progress", []);
        return (
          this.ev("response.created", { response: r }) +
          this.ev("response.in_progress", { response: r })
        );
      }
      case "text": {
        let out = this.ensureStarted();
        const cur = this.open === undefined ? undefined : this.items[this.open];
        if (cur?.kind !== "message")
          out += this.add({
            kind: "message",
            id: `msg_${this.id.slice(5)}_${this.items.length}`,
            text: "",
          });
        const index = this.open as number;
        const it = this.items[index] as Item & { text: string };
        it.text += e.delta;
        return (
          out +
          this.ev("response.output_text.delta", {
            item_id: it.id,
            output_index: index,
            content_index: 0,
            delta: e.delta,
            logprobs: [],
          })
        );
      }
      case "thinking": {
        let out = this.ensureStarted();
        const cur = this.open === undefined ? undefined : this.items[this.open];
        if (cur?.kind !== "reasoning")
          out += this.add({
            kind: "reasoning",
            id: `rs_${this.id.slice(5)}_${this.items.length}`,
            text: "",
          });
        const index = this.open as number;
        const it = this.items[index] as Item & { text: string };
        it.text += e.delta;
        return (
          out +
          this.ev("response.reasoning_summary_text.delta", {
            item_id: it.id,
            output_index: index,
            summary_index: 0,
            delta: e.delta,
          })
        );
      }
      case "signature":
        return "";
      case "tool_start": {
        const out =
          this.ensureStarted() +
          this.add({
            kind: "tool",
            id: `fc_${this.id.slice(5)}_${this.items.length}`,
            callId: e.id,
            name: e.name,
            args: "",
          });
        this.toolItem.set(e.index, this.open as number);
        return out;
      }
      case "tool_args": {
        const index = this.toolItem.get(e.index);
        if (index === undefined) return "";
        const it = this.items[index] as Item & { kind: "tool" };
        it.args += e.delta;
        return this.ev("response.function_call_arguments.delta", {
          item_id: it.id,
          output_index: index,
          delta: e.delta,
        });
      }
      case "usage":
        Object.assign(this.usage, e.usage);
        return "";
      case "finish":
        this.finish = e.finish;
        return "";
      case "error":
        return this.ev("error", {
          code: e.errorType ?? "upstream_error",
          message: e.message,
          param: null,
        });
    }
  }

  end(): string {
    let out = this.ensureStarted() + this.closeOpen();
    const usage: IrUsage = {
      input: this.usage.input ?? 0,
      output: this.usage.output ?? 0,
      ...this.usage,
    };
    const incomplete = this.finish === "length" || this.finish === "content_filter";
    const r = responseObject(
      this.id,
      this.model,
      incomplete ? "incomplete" : "completed",
      this.items.map((it) => this.itemJson(it, true)),
      this.finish,
      usage,
    );
    out += this.ev(incomplete ? "response.incomplete" : "response.completed", { response: r });
    return out;
  }
}
