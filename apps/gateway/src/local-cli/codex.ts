// Codex (`codex exec --json`) as a model: an OpenAI Responses request becomes one prompt on the
// CLI's stdin, and its JSONL events become IR events (the agent's messages as text, usage from
// `turn.completed`), which the bridge writes as a Responses answer. What the CLI cannot be told
// is refused, named.
import type { IrEvent } from "../translate/ir.ts";
import { type AgentTurn, LocalCliRequestError } from "./claude.ts";
import { isRecord, JsonLinesReader } from "./lines.ts";

/** Keys the bridge reads; the rest of these are hints with no effect on a local agent's answer. */
const KNOWN = new Set([
  "model",
  "input",
  "instructions",
  "stream",
  "max_output_tokens",
  "metadata",
  "client_metadata",
  "store",
  "include",
  "prompt_cache_key",
  "service_tier",
  "reasoning",
  "parallel_tool_calls",
  "truncation",
  "user",
]);

function textOf(content: unknown, at: string): string {
  if (typeof content === "string") return content;
  if (!Array.isArray(content)) throw new LocalCliRequestError(at, "must be a string or a list");
  return content
    .map((raw, j) => {
      if (!isRecord(raw)) throw new LocalCliRequestError(`${at}[${j}]`, "must be an object");
      const t = raw["type"];
      if (
        (t === "input_text" || t === "output_text" || t === "text") &&
        typeof raw["text"] === "string"
      )
        return raw["text"];
      throw new LocalCliRequestError(
        `${at}[${j}].type`,
        `content "${String(t)}" cannot be handed to the Codex CLI (it takes text)`,
      );
    })
    .join("");
}

/**
 * The Codex turn for a Responses request: instructions first, then earlier turns as a
 * transcript, then the last user message, as one prompt on stdin. Linear in the request size.
 */
export function codexTurn(body: Record<string, unknown>): AgentTurn {
  for (const key of Object.keys(body)) {
    const v = body[key];
    if (KNOWN.has(key) || v === undefined || v === null) continue;
    if (key === "tools" && Array.isArray(v) && v.length === 0) continue;
    if (key === "tool_choice" && !(Array.isArray(body["tools"]) && body["tools"].length > 0))
      continue;
    if (key === "text" && isRecord(v) && (!isRecord(v["format"]) || v["format"]["type"] === "text"))
      continue;
    throw new LocalCliRequestError(
      key === "text" ? "text.format" : key,
      key === "tools"
        ? "a local agent CLI runs its own tools (configured for the provider), not the client's; remove the tools or use a model"
        : "has no equivalent for a local agent CLI; remove it or use a model",
    );
  }
  const system: string[] = [];
  if (typeof body["instructions"] === "string" && body["instructions"])
    system.push(body["instructions"]);
  const turns: { role: "user" | "assistant"; text: string }[] = [];
  const input = body["input"];
  if (typeof input === "string") turns.push({ role: "user", text: input });
  else if (Array.isArray(input))
    input.forEach((raw, i) => {
      const at = `input[${i}]`;
      if (!isRecord(raw)) throw new LocalCliRequestError(at, "must be an object");
      const type = raw["type"] ?? "message";
      if (type !== "message")
        throw new LocalCliRequestError(
          `${at}.type`,
          `input item "${String(type)}" cannot be handed to the Codex CLI (client-side tool calls and results cannot be expressed)`,
        );
      const role = raw["role"];
      const text = textOf(raw["content"], `${at}.content`);
      if (role === "system" || role === "developer") system.push(text);
      else if (role === "user" || role === "assistant") turns.push({ role, text });
      else throw new LocalCliRequestError(`${at}.role`, `role "${String(role)}" is not known`);
    });
  else throw new LocalCliRequestError("input", "must be a string or a list");
  const last = turns.at(-1);
  if (last === undefined || last.role !== "user")
    throw new LocalCliRequestError(
      "input",
      "the last message must be the user's (a local agent CLI cannot continue an assistant turn)",
    );
  let prompt = "";
  if (system.length > 0) prompt += `Instructions:\n${system.join("\n\n")}\n\n`;
  if (turns.length > 1) {
    prompt += "The conversation so far:\n\n";
    for (const t of turns.slice(0, -1))
      prompt += `${t.role === "user" ? "User" : "Assistant"}: ${t.text}\n\n`;
    prompt += "Now the user says: ";
  }
  prompt += last.text;
  return {
    model: typeof body["model"] === "string" ? body["model"] : "",
    system: "",
    stdin: prompt,
    stream: body["stream"] === true,
  };
}

/** Reads `codex exec --json` lines (any split) as IR events. */
export class CodexEventReader extends JsonLinesReader {
  private started = false;
  private texts = 0;

  private start(id: string): IrEvent[] {
    if (this.started) return [];
    this.started = true;
    return [{ type: "start", id: `resp_${id.replace(/[^A-Za-z0-9_-]/g, "")}`, model: "" }];
  }

  protected event(e: Record<string, unknown>): IrEvent[] {
    const type = e["type"];
    if (type === "thread.started") return this.start(String(e["thread_id"] ?? "local"));
    if (type === "item.completed" && isRecord(e["item"])) {
      const item = e["item"];
      if (item["type"] !== "agent_message" || typeof item["text"] !== "string") return [];
      return [
        ...this.start("local"),
        { type: "text", delta: this.texts++ > 0 ? `\n\n${item["text"]}` : item["text"] },
      ];
    }
    if (type === "turn.completed") {
      this.done = true;
      const u = isRecord(e["usage"]) ? e["usage"] : {};
      const n = (k: string) => (typeof u[k] === "number" ? (u[k] as number) : 0);
      const cached = n("cached_input_tokens");
      const reasoning = n("reasoning_output_tokens");
      return [
        ...this.start("local"),
        {
          type: "usage",
          usage: {
            input: n("input_tokens"),
            output: n("output_tokens"),
            ...(cached > 0 ? { cacheRead: cached } : {}),
            ...(reasoning > 0 ? { reasoning } : {}),
          },
        },
        { type: "finish", finish: "stop" },
      ];
    }
    // A plain `error` event may be a notice the CLI recovers from (a reconnect): remembered, and
    // reported only if the run ends without an answer.
    if (type === "error") {
      this.lastError = String(e["message"] ?? "error");
      return [];
    }
    if (type === "turn.failed") {
      this.done = true;
      const err = isRecord(e["error"]) ? e["error"] : e;
      return [
        ...this.start("local"),
        {
          type: "error",
          message: `the local agent CLI failed: ${String(err["message"] ?? type)}`,
          errorType: "api_error",
        },
      ];
    }
    return [];
  }
}
