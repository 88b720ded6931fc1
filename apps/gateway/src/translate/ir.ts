/**
 * The neutral form a call takes between two wire APIs (OpenAI Chat Completions, OpenAI
 * Responses, Anthropic Messages). Each API has a reader (its JSON → IR) and a writer (IR → its
 * JSON), for requests, responses and stream events; translating A → B is B.write(A.read(x)).
 * Whatever a reader meets that the IR cannot carry is refused with the field's path, so a
 * translation never silently drops meaning.
 */

export type WireApi = "openai-chat" | "openai-responses" | "anthropic-messages";

export type IrPart =
  | { type: "text"; text: string }
  | { type: "image"; url?: string; mediaType?: string; data?: string }
  | { type: "tool_call"; id: string; name: string; arguments: string }
  | { type: "tool_result"; id: string; content: string; isError?: boolean }
  | { type: "thinking"; text: string; signature?: string };

export interface IrMessage {
  /** `system`: instructions in the middle of a conversation (text only; Claude Code sends them). */
  role: "user" | "assistant" | "system";
  parts: IrPart[];
}

export interface IrTool {
  name: string;
  description?: string;
  /** JSON Schema of the arguments. */
  parameters: Record<string, unknown>;
}

export type IrToolChoice = "auto" | "none" | "required" | { name: string };

/** Where a flattened tool name came from: a function tool inside a Responses `namespace` tool. */
export interface NamespacedName {
  namespace: string;
  name: string;
}

/**
 * What a request's translation must remember for its response: the flattened names of
 * namespaced tools (Codex groups tools in Responses `namespace` tools, which the other APIs do
 * not have), so the calls the model makes are handed back under their namespace.
 */
export interface TranslationContext {
  readonly toolNames: ReadonlyMap<string, NamespacedName>;
}

export const EMPTY_CONTEXT: TranslationContext = { toolNames: new Map() };

/** Tool names every API accepts: OpenAI's and Anthropic's common rule. */
export const TOOL_NAME = /^[a-zA-Z0-9_-]{1,64}$/;

/**
 * The flat name of tool `name` in namespace `namespace` (`namespace__name`), as the APIs without
 * namespaces call it. The mapping is kept per request, so it is reversible even when a plain tool
 * name contains the separator.
 */
export function flatToolName(namespace: string, name: string): string {
  return `${namespace}__${name}`;
}

export interface IrRequest {
  model: string;
  /** System and developer instructions, in order. */
  system: string[];
  messages: IrMessage[];
  tools: IrTool[];
  toolChoice?: IrToolChoice;
  parallelToolCalls?: boolean;
  maxTokens?: number;
  temperature?: number;
  topP?: number;
  stop?: string[];
  stream: boolean;
  /** An end-user id for the provider's abuse monitoring. */
  user?: string;
  /** Flattened names of namespaced tools (Responses clients only; see `TranslationContext`). */
  toolNames?: Map<string, NamespacedName>;
}

export type IrFinish = "stop" | "length" | "tool_calls" | "content_filter";

export interface IrUsage {
  input: number;
  output: number;
  cacheRead?: number;
  cacheWrite?: number;
  reasoning?: number;
}

export interface IrResponse {
  id: string;
  model: string;
  parts: IrPart[];
  finish: IrFinish;
  usage?: IrUsage;
}

/** One streamed step, in the order the content appears. */
export type IrEvent =
  | { type: "start"; id: string; model: string; usage?: Partial<IrUsage> }
  | { type: "text"; delta: string }
  | { type: "thinking"; delta: string }
  | { type: "signature"; signature: string }
  | { type: "tool_start"; index: number; id: string; name: string }
  | { type: "tool_args"; index: number; delta: string }
  | { type: "usage"; usage: Partial<IrUsage> }
  | { type: "finish"; finish: IrFinish }
  | { type: "error"; message: string; errorType?: string };

/** A request or response the target API cannot express, named by its key path. */
export class TranslationError extends Error {
  override readonly name = "TranslationError";
  readonly code = "E_UNTRANSLATABLE" as const;
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(`${field}: ${message}`);
  }
}

/** Refuses every key of `body` outside `known` (or ignorable), naming the first such field. */
export function refuseUnknown(
  body: Record<string, unknown>,
  known: ReadonlySet<string>,
  from: WireApi,
  prefix = "",
): void {
  for (const key of Object.keys(body)) {
    if (known.has(key) || body[key] === undefined || body[key] === null) continue;
    throw new TranslationError(
      `${prefix}${key}`,
      `is not translated from ${from}: the model's provider speaks another API, and this field has no equivalent there (remove it, or use a model whose provider speaks ${from})`,
    );
  }
}

export function asRecord(v: unknown, field: string): Record<string, unknown> {
  if (v === null || typeof v !== "object" || Array.isArray(v))
    throw new TranslationError(field, "must be an object");
  return v as Record<string, unknown>;
}

export function asArray(v: unknown, field: string): unknown[] {
  if (!Array.isArray(v)) throw new TranslationError(field, "must be a list");
  return v;
}

export function asString(v: unknown, field: string): string {
  if (typeof v !== "string") throw new TranslationError(field, "must be a string");
  return v;
}

/** Tool-call arguments as the JSON text every API carries on the wire. */
export function argsText(v: unknown): string {
  return typeof v === "string" ? v : JSON.stringify(v ?? {});
}

/** Parsed tool-call arguments (Anthropic carries an object); invalid JSON is refused. */
export function argsObject(text: string, field: string): Record<string, unknown> {
  if (text.trim() === "") return {};
  try {
    const v = JSON.parse(text) as unknown;
    if (v !== null && typeof v === "object" && !Array.isArray(v))
      return v as Record<string, unknown>;
  } catch {
    // fall through
  }
  throw new TranslationError(field, "tool-call arguments must be a JSON object");
}

/**
 * An OpenAI usage object — Chat Completions (`prompt_tokens`, `prompt_tokens_details`, …) or
 * Responses (`input_tokens`, `input_tokens_details`, …): the same shape under two sets of names.
 */
export function readOpenAiUsage(
  u: unknown,
  names: { input: string; output: string; inputDetails: string; outputDetails: string },
): IrUsage | undefined {
  if (u === null || typeof u !== "object") return undefined;
  const r = u as Record<string, unknown>;
  const detail = (key: string, field: string): unknown =>
    (r[key] as Record<string, unknown> | undefined)?.[field];
  const cached = detail(names.inputDetails, "cached_tokens");
  const reasoning = detail(names.outputDetails, "reasoning_tokens");
  return {
    input: Number(r[names.input] ?? 0),
    output: Number(r[names.output] ?? 0),
    ...(typeof cached === "number" && cached > 0 ? { cacheRead: cached } : {}),
    ...(typeof reasoning === "number" && reasoning > 0 ? { reasoning } : {}),
  };
}
