/**
 * The agent loop: one chat completion per step; the tool calls of a step run in parallel and
 * their results go back in call order; a final answer (no tool calls) ends the run. Stops on
 * the step limit, the gateway's budget or policy refusal, or the agent's own token cap.
 */
import type { AuditLog } from "./audit.ts";
import type { ChatClient, ChatMessage, ChatResponse } from "./client.ts";
import { type AgentCliErrorCode, exitCodeOf, isAgentCliError } from "./errors.ts";
import type { Redactor } from "./redact.ts";
import type { Toolbox, ToolRecord } from "./tools/toolbox.ts";

export type RunStatus =
  | "final"
  | "max_steps"
  | "budget_exceeded"
  | "token_cap"
  | "policy_stopped"
  | "failed";

export interface RunUsage {
  input: number;
  output: number;
  total: number;
  modelCalls: number;
}

export interface StepToolRecord extends ToolRecord {
  step: number;
}

export interface RunSummary {
  status: RunStatus;
  exitCode: number;
  answer: string | undefined;
  model: string;
  steps: number;
  usage: RunUsage;
  toolCalls: StepToolRecord[];
  error?: { code: AgentCliErrorCode; message: string; hint?: string };
}

export interface AgentOptions {
  client: ChatClient;
  model: string;
  messages: ChatMessage[];
  toolbox: Toolbox;
  maxSteps: number;
  /** The agent's own cap on total tokens (input + output) for the run. */
  maxTokens: number | undefined;
  stream: boolean;
  /** Streamed text of the answer, as it arrives. */
  onDelta?: (text: string) => void;
  /** Called when a streamed step turned out to call tools (its text was not the answer). */
  onStepText?: () => void;
  audit: AuditLog | undefined;
  redactor: Redactor;
  /** Progress lines for stderr (tool calls, retries). */
  progress?: (line: string) => void;
}

/** Completion cap used for the one resend after `finish_reason: "length"` when none was set. */
const DEFAULT_COMPLETION_CAP = 4096;

export async function runAgent(o: AgentOptions): Promise<RunSummary> {
  const usage: RunUsage = { input: 0, output: 0, total: 0, modelCalls: 0 };
  const toolCalls: StepToolRecord[] = [];
  const messages = [...o.messages];
  const tools = o.toolbox.specs();
  let step = 0;
  const end = (status: RunStatus, answer?: string, error?: RunSummary["error"]): RunSummary => {
    const exitCode =
      status === "final" ? 0 : status === "max_steps" ? 1 : error ? exitCodeOf(error.code) : 3;
    const s: RunSummary = {
      status,
      exitCode,
      answer,
      model: o.model,
      steps: step,
      usage,
      toolCalls,
    };
    if (error !== undefined) s.error = error;
    o.audit?.write({
      event: "run.end",
      status,
      exitCode,
      steps: step,
      usage,
      ...(error ? { error: error.code } : {}),
    });
    return s;
  };
  const remaining = () =>
    o.maxTokens === undefined ? undefined : Math.max(0, o.maxTokens - usage.total);

  const callModel = async (maxTokens: number | undefined): Promise<ChatResponse> => {
    const started = performance.now();
    try {
      const req = {
        model: o.model,
        messages,
        tools,
        ...(maxTokens !== undefined ? { maxTokens } : {}),
      };
      const res = await o.client.chat(req, {
        stream: o.stream,
        ...(o.onDelta ? { onDelta: o.onDelta } : {}),
      });
      usage.modelCalls++;
      if (res.usage) {
        usage.input += res.usage.input;
        usage.output += res.usage.output;
        usage.total = usage.input + usage.output;
      }
      o.audit?.write({
        event: "model.call",
        step,
        model: res.model,
        attempts: res.attempts,
        latencyMs: Math.round(res.latencyMs),
        usage: res.usage ?? null,
        finishReason: res.finishReason,
        toolCalls: res.toolCalls.length,
        ...(maxTokens !== undefined ? { maxTokens } : {}),
      });
      return res;
    } catch (error) {
      o.audit?.write({
        event: "model.call",
        step,
        model: o.model,
        latencyMs: Math.round(performance.now() - started),
        error: isAgentCliError(error) ? error.code : "E_INTERNAL",
      });
      throw error;
    }
  };

  while (step < o.maxSteps) {
    step++;
    const left = remaining();
    if (left !== undefined && left <= 0) {
      step--;
      return end("token_cap", undefined, {
        code: "E_BUDGET",
        message: `stopped by --max-tokens ${o.maxTokens}: ${usage.total} tokens used`,
        hint: "raise --max-tokens to let the run go further",
      });
    }
    let res: ChatResponse;
    try {
      res = await callModel(left);
      if (res.finishReason === "length" && res.toolCalls.length === 0) {
        // One resend in the same step with a larger completion cap.
        let cap = Math.max(256, 2 * (left ?? DEFAULT_COMPLETION_CAP));
        const again = remaining();
        if (again !== undefined) cap = Math.min(cap, again);
        if (cap > 0) {
          o.progress?.(
            `step ${step}: the answer was cut at the token limit; asking again with max_tokens ${cap}`,
          );
          o.audit?.write({ event: "length.resend", step, maxTokens: cap });
          res = await callModel(cap);
        }
      }
    } catch (error) {
      if (!isAgentCliError(error)) throw error;
      const e: RunSummary["error"] = { code: error.code, message: error.message };
      if (error.hint !== undefined) e.hint = error.hint;
      const status: RunStatus =
        error.code === "E_BUDGET"
          ? "budget_exceeded"
          : error.code === "E_POLICY"
            ? "policy_stopped"
            : "failed";
      return end(status, undefined, e);
    }
    const assistant: ChatMessage = {
      role: "assistant",
      content: res.content === "" ? null : res.content,
    };
    if (res.toolCalls.length === 0) {
      messages.push(assistant);
      return end("final", res.content);
    }
    if (o.stream && res.content !== "") o.onStepText?.();
    // Calls without an id get one, so each tool message answers exactly one call.
    res.toolCalls.forEach((tc, i) => {
      if (tc.id === "") tc.id = `call_${step}_${i}`;
    });
    assistant.tool_calls = res.toolCalls;
    messages.push(assistant);
    const outcomes = await Promise.all(res.toolCalls.map((tc) => o.toolbox.call(tc)));
    for (const [i, out] of outcomes.entries()) {
      const tc = res.toolCalls[i];
      if (tc === undefined) continue;
      messages.push({ role: "tool", tool_call_id: tc.id, content: out.content });
      const rec: StepToolRecord = { step, ...out.record, argv: o.redactor.argv(out.record.argv) };
      if (rec.reason !== undefined) rec.reason = o.redactor.text(rec.reason);
      toolCalls.push(rec);
      o.audit?.write({ event: "tool.call", ...rec });
      o.progress?.(
        `step ${step}: ${rec.name} ${rec.decision}${rec.exit !== undefined ? ` exit ${rec.exit}` : ""}${rec.error ? ` (${rec.error})` : ""}`,
      );
    }
  }
  return end("max_steps", undefined, undefined);
}
