// Claude Code (`claude -p --input-format stream-json --output-format stream-json`) as a model:
// an Anthropic Messages request becomes one user turn on the CLI's stdin, and the CLI's events
// become IR events (text, usage from its `result` event, finish), which the bridge writes as a
// Messages answer. What the CLI cannot be told is refused, named; nothing is dropped silently.
import type { IrEvent, IrUsage } from "../translate/ir.ts";
import { isRecord, JsonLinesReader } from "./lines.ts";

/** A request field the local agent cannot honour, named by its key path. */
export class LocalCliRequestError extends Error {
  override readonly name = "LocalCliRequestError";
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(`${field}: ${message}`);
  }
}

/** What one CLI run is given: the model, the system prompt (a file) and stdin. */
export interface AgentTurn {
  model: string;
  /** System prompt text (written to a private file, never put in argv). */
  system: string;
  /** One stream-json line: the user turn (the conversation so far, then the last message). */
  stdin: string;
  stream: boolean;
}

/** Keys of a Messages request the bridge reads; hints with no effect on the answer are dropped. */
const KNOWN = new Set(["model", "messages", "system", "max_tokens", "stream", "metadata"]);

function blocksOf(content: unknown, at: string): Record<string, unknown>[] {
  if (typeof content === "string") return [{ type: "text", text: content }];
  if (!Array.isArray(content)) throw new LocalCliRequestError(at, "must be a string or a list");
  return content.map((raw, j) => {
    if (!isRecord(raw)) throw new LocalCliRequestError(`${at}[${j}]`, "must be an object");
    const t = raw["type"];
    if (t === "text" && typeof raw["text"] === "string") return { type: "text", text: raw["text"] };
    if (t === "image" && isRecord(raw["source"])) return { type: "image", source: raw["source"] };
    throw new LocalCliRequestError(
      `${at}[${j}].type`,
      `content "${String(t)}" cannot be handed to a local agent CLI (it takes text and images; client-side tool calls and results cannot be expressed)`,
    );
  });
}

/**
 * The CLI turn for a Messages request. The last message must be the user's; earlier turns are
 * handed over as a transcript at the start of that turn (the CLI keeps no state between requests).
 * Linear in the request size.
 */
export function claudeTurn(body: Record<string, unknown>): AgentTurn {
  for (const key of Object.keys(body)) {
    const v = body[key];
    if (KNOWN.has(key) || v === undefined || v === null) continue;
    // No client tools: an empty list, and a tool choice with nothing to choose, say nothing.
    if (key === "tools" && Array.isArray(v) && v.length === 0) continue;
    if (key === "tool_choice" && !(Array.isArray(body["tools"]) && body["tools"].length > 0))
      continue;
    throw new LocalCliRequestError(
      key,
      key === "tools"
        ? "a local agent CLI runs its own tools (configured for the provider), not the client's; remove the tools or use a model"
        : "has no equivalent for a local agent CLI; remove it or use a model",
    );
  }
  const model = typeof body["model"] === "string" ? body["model"] : "";
  let system = "";
  const sys = body["system"];
  if (typeof sys === "string") system = sys;
  else if (Array.isArray(sys))
    system = blocksOf(sys, "system")
      .map((b) => {
        if (b["type"] !== "text")
          throw new LocalCliRequestError("system", "only text can be a system prompt");
        return String(b["text"]);
      })
      .join("\n\n");
  else if (sys !== undefined && sys !== null)
    throw new LocalCliRequestError("system", "must be a string or a list");
  const messages = body["messages"];
  if (!Array.isArray(messages) || messages.length === 0)
    throw new LocalCliRequestError("messages", "must be a non-empty list");
  const content: Record<string, unknown>[] = [];
  const last = messages.length - 1;
  messages.forEach((raw, i) => {
    const at = `messages[${i}]`;
    if (!isRecord(raw)) throw new LocalCliRequestError(at, "must be an object");
    const role = raw["role"];
    if (role !== "user" && role !== "assistant")
      throw new LocalCliRequestError(`${at}.role`, 'must be "user" or "assistant"');
    if (i === last && role !== "user")
      throw new LocalCliRequestError(
        `${at}.role`,
        "the last message must be the user's (a local agent CLI cannot continue an assistant turn)",
      );
    const blocks = blocksOf(raw["content"], `${at}.content`);
    if (last > 0) {
      const label = i === last ? "Now the user says:" : role === "user" ? "User:" : "Assistant:";
      const intro = i === 0 ? "The conversation so far:\n\n" : "";
      content.push({ type: "text", text: `${intro}${label}` });
    }
    content.push(...blocks);
  });
  const line = JSON.stringify({ type: "user", message: { role: "user", content } });
  return { model, system, stdin: `${line}\n`, stream: body["stream"] === true };
}

/** Anthropic usage as IR usage (input counts cache reads and writes, like the Messages reader). */
function readUsage(u: unknown): IrUsage | undefined {
  if (!isRecord(u)) return undefined;
  const n = (k: string) => (typeof u[k] === "number" ? (u[k] as number) : 0);
  const read = n("cache_read_input_tokens");
  const write = n("cache_creation_input_tokens");
  return {
    input: n("input_tokens") + read + write,
    output: n("output_tokens"),
    ...(read > 0 ? { cacheRead: read } : {}),
    ...(write > 0 ? { cacheWrite: write } : {}),
  };
}

/**
 * Reads the CLI's stream-json lines (any split) as IR events. The agent's own tool calls and
 * their results stay inside the agent: the client sees the text it writes, and the usage and
 * outcome of its `result` event (the usage of every model call the run made).
 */
export class ClaudeEventReader extends JsonLinesReader {
  private started = false;
  private texts = 0;
  /** Messages whose text arrived as partial deltas (`stream_event`): their whole copy is skipped. */
  private readonly streamed = new Set<string>();
  private current = "";
  private firstDelta = false;

  protected event(e: Record<string, unknown>): IrEvent[] {
    const out: IrEvent[] = [];
    // A sub-agent's messages (parent_tool_use_id set) are the agent's own work, not the answer.
    const own = e["parent_tool_use_id"] === undefined || e["parent_tool_use_id"] === null;
    if (e["type"] === "stream_event" && own && isRecord(e["event"])) {
      const ev = e["event"];
      if (ev["type"] === "message_start" && isRecord(ev["message"])) {
        const m = ev["message"];
        this.current = String(m["id"] ?? "");
        this.firstDelta = true;
        if (!this.started) {
          this.started = true;
          out.push({
            type: "start",
            id: this.current || "msg_local",
            model: String(m["model"] ?? ""),
          });
        }
      } else if (
        ev["type"] === "content_block_delta" &&
        isRecord(ev["delta"]) &&
        ev["delta"]["type"] === "text_delta" &&
        typeof ev["delta"]["text"] === "string"
      ) {
        const text = ev["delta"]["text"];
        this.streamed.add(this.current);
        const sep = this.firstDelta && this.texts > 0 ? "\n\n" : "";
        if (this.firstDelta) this.texts++;
        this.firstDelta = false;
        out.push({ type: "text", delta: `${sep}${text}` });
      }
    } else if (e["type"] === "assistant" && own && isRecord(e["message"])) {
      const m = e["message"];
      if (this.streamed.has(String(m["id"] ?? ""))) return out;
      if (!this.started) {
        this.started = true;
        out.push({
          type: "start",
          id: String(m["id"] ?? "msg_local"),
          model: String(m["model"] ?? ""),
        });
      }
      const content = Array.isArray(m["content"]) ? m["content"] : [];
      for (const b of content) {
        if (!isRecord(b) || b["type"] !== "text" || typeof b["text"] !== "string") continue;
        // Text of successive assistant messages (between the agent's own tool calls) is one answer.
        out.push({ type: "text", delta: this.texts++ > 0 ? `\n\n${b["text"]}` : b["text"] });
      }
    } else if (e["type"] === "result") {
      this.done = true;
      if (!this.started) {
        this.started = true;
        out.push({ type: "start", id: `msg_${String(e["session_id"] ?? "local")}`, model: "" });
      }
      const usage = readUsage(e["usage"]);
      if (usage) out.push({ type: "usage", usage });
      if (e["is_error"] === true || e["subtype"] !== "success") {
        const why =
          typeof e["result"] === "string" && e["result"] ? e["result"] : String(e["subtype"]);
        out.push({
          type: "error",
          message: `the local agent CLI failed: ${why}`,
          errorType: "api_error",
        });
      } else out.push({ type: "finish", finish: "stop" });
    }
    return out;
  }
}
