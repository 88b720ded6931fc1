/**
 * Builders for the exact wire shapes of the three provider APIs the fake upstream speaks:
 * OpenAI chat completions, OpenAI responses and Anthropic messages, as JSON bodies and as
 * server-sent-event frames. Kept separate from the server so tests can build expected bodies.
 */

/** One tool call the fake model makes. `arguments` is the JSON text of the arguments. */
export interface FakeToolCall {
  id?: string;
  name: string;
  arguments: string;
}

/** Token usage a fake reply reports, in neutral terms. */
export interface FakeUsage {
  input: number;
  output: number;
  cacheRead?: number;
  cacheWrite?: number;
  reasoning?: number;
}

/** A fully resolved reply: what the fake model says and what it reports. */
export interface ResolvedReply {
  id: string;
  model: string;
  created: number;
  /** The assistant text, already split into the streamed pieces. */
  pieces: string[];
  toolCalls: Required<FakeToolCall>[];
  usage: FakeUsage;
}

/** One SSE frame: optional event name plus the data line(s). */
export function sseFrame(data: string, event?: string): string {
  return event === undefined ? `data: ${data}\n\n` : `event: ${event}\ndata: ${data}\n\n`;
}

function text(reply: ResolvedReply): string {
  return reply.pieces.join("");
}

/** Splits a JSON argument string into a few pieces, as real providers stream them. */
function argPieces(args: string): string[] {
  if (args.length <= 8) return [args];
  const third = Math.ceil(args.length / 3);
  return [args.slice(0, third), args.slice(third, 2 * third), args.slice(2 * third)];
}

// ---------------------------------------------------------------- OpenAI chat completions

export function openaiChatUsage(u: FakeUsage): Record<string, unknown> {
  return {
    prompt_tokens: u.input,
    completion_tokens: u.output,
    total_tokens: u.input + u.output,
    prompt_tokens_details: { cached_tokens: u.cacheRead ?? 0, audio_tokens: 0 },
    completion_tokens_details: {
      reasoning_tokens: u.reasoning ?? 0,
      audio_tokens: 0,
      accepted_prediction_tokens: 0,
      rejected_prediction_tokens: 0,
    },
  };
}

export function openaiChatJson(reply: ResolvedReply): Record<string, unknown> {
  const message: Record<string, unknown> = {
    role: "assistant",
    content: reply.pieces.length > 0 ? text(reply) : null,
    refusal: null,
    annotations: [],
  };
  if (reply.toolCalls.length > 0) {
    message["tool_calls"] = reply.toolCalls.map((t) => ({
      id: t.id,
      type: "function",
      function: { name: t.name, arguments: t.arguments },
    }));
  }
  return {
    id: reply.id,
    object: "chat.completion",
    created: reply.created,
    model: reply.model,
    choices: [
      {
        index: 0,
        message,
        logprobs: null,
        finish_reason: reply.toolCalls.length > 0 ? "tool_calls" : "stop",
      },
    ],
    usage: openaiChatUsage(reply.usage),
    service_tier: "default",
    system_fingerprint: "fp_fake",
  };
}

/** The SSE frames of a streamed chat completion, in order, ending with `[DONE]`. */
export function openaiChatFrames(reply: ResolvedReply, includeUsage: boolean): string[] {
  const head = `{"id":${JSON.stringify(reply.id)},"object":"chat.completion.chunk","created":${reply.created},"model":${JSON.stringify(reply.model)},"service_tier":"default","system_fingerprint":"fp_fake",`;
  const usageNull = includeUsage ? `,"usage":null` : "";
  const chunk = (delta: unknown, finish: string | null) =>
    sseFrame(
      `${head}"choices":[{"index":0,"delta":${JSON.stringify(delta)},"logprobs":null,"finish_reason":${JSON.stringify(finish)}}]${usageNull}}`,
    );
  const frames: string[] = [chunk({ role: "assistant", content: "", refusal: null }, null)];
  for (const piece of reply.pieces) frames.push(chunk({ content: piece }, null));
  reply.toolCalls.forEach((t, index) => {
    frames.push(
      chunk(
        {
          tool_calls: [
            { index, id: t.id, type: "function", function: { name: t.name, arguments: "" } },
          ],
        },
        null,
      ),
    );
    for (const a of argPieces(t.arguments)) {
      frames.push(chunk({ tool_calls: [{ index, function: { arguments: a } }] }, null));
    }
  });
  frames.push(chunk({}, reply.toolCalls.length > 0 ? "tool_calls" : "stop"));
  if (includeUsage) {
    frames.push(
      sseFrame(`${head}"choices":[],"usage":${JSON.stringify(openaiChatUsage(reply.usage))}}`),
    );
  }
  frames.push(sseFrame("[DONE]"));
  return frames;
}

// ---------------------------------------------------------------- OpenAI responses

export function openaiResponsesUsage(u: FakeUsage): Record<string, unknown> {
  return {
    input_tokens: u.input,
    input_tokens_details: { cached_tokens: u.cacheRead ?? 0 },
    output_tokens: u.output,
    output_tokens_details: { reasoning_tokens: u.reasoning ?? 0 },
    total_tokens: u.input + u.output,
  };
}

function responsesOutput(reply: ResolvedReply): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  if (reply.pieces.length > 0) {
    out.push({
      id: `msg_${reply.id.slice(5)}`,
      type: "message",
      status: "completed",
      role: "assistant",
      content: [{ type: "output_text", text: text(reply), annotations: [], logprobs: [] }],
    });
  }
  reply.toolCalls.forEach((t, i) => {
    out.push({
      id: `fc_${reply.id.slice(5)}_${i}`,
      type: "function_call",
      status: "completed",
      arguments: t.arguments,
      call_id: t.id,
      name: t.name,
    });
  });
  return out;
}

function responseObject(
  reply: ResolvedReply,
  status: "in_progress" | "completed",
): Record<string, unknown> {
  return {
    id: reply.id,
    object: "response",
    created_at: reply.created,
    status,
    background: false,
    error: null,
    incomplete_details: null,
    instructions: null,
    max_output_tokens: null,
    model: reply.model,
    output: status === "completed" ? responsesOutput(reply) : [],
    parallel_tool_calls: true,
    previous_response_id: null,
    reasoning: { effort: null, summary: null },
    store: true,
    temperature: 1,
    text: { format: { type: "text" } },
    tool_choice: "auto",
    tools: [],
    top_p: 1,
    truncation: "disabled",
    usage: status === "completed" ? openaiResponsesUsage(reply.usage) : null,
    user: null,
    metadata: {},
  };
}

export function openaiResponsesJson(reply: ResolvedReply): Record<string, unknown> {
  return responseObject(reply, "completed");
}

/** The SSE frames of a streamed response, `response.created` through `response.completed`. */
export function openaiResponsesFrames(reply: ResolvedReply): string[] {
  let seq = 0;
  const frames: string[] = [];
  const emit = (type: string, body: Record<string, unknown>) => {
    frames.push(sseFrame(JSON.stringify({ type, sequence_number: seq++, ...body }), type));
  };
  emit("response.created", { response: responseObject(reply, "in_progress") });
  emit("response.in_progress", { response: responseObject(reply, "in_progress") });
  const items = responsesOutput(reply);
  let outputIndex = 0;
  if (reply.pieces.length > 0) {
    const item = items[0] as Record<string, unknown>;
    const itemId = item["id"];
    emit("response.output_item.added", {
      output_index: outputIndex,
      item: { ...item, status: "in_progress", content: [] },
    });
    emit("response.content_part.added", {
      item_id: itemId,
      output_index: outputIndex,
      content_index: 0,
      part: { type: "output_text", text: "", annotations: [], logprobs: [] },
    });
    for (const piece of reply.pieces) {
      emit("response.output_text.delta", {
        item_id: itemId,
        output_index: outputIndex,
        content_index: 0,
        delta: piece,
        logprobs: [],
      });
    }
    emit("response.output_text.done", {
      item_id: itemId,
      output_index: outputIndex,
      content_index: 0,
      text: text(reply),
      logprobs: [],
    });
    emit("response.content_part.done", {
      item_id: itemId,
      output_index: outputIndex,
      content_index: 0,
      part: { type: "output_text", text: text(reply), annotations: [], logprobs: [] },
    });
    emit("response.output_item.done", { output_index: outputIndex, item });
    outputIndex++;
  }
  reply.toolCalls.forEach((t, i) => {
    const item = items[outputIndex] as Record<string, unknown>;
    const itemId = item["id"];
    emit("response.output_item.added", {
      output_index: outputIndex,
      item: { ...item, status: "in_progress", arguments: "" },
    });
    for (const a of argPieces(t.arguments)) {
      emit("response.function_call_arguments.delta", {
        item_id: itemId,
        output_index: outputIndex,
        delta: a,
      });
    }
    emit("response.function_call_arguments.done", {
      item_id: itemId,
      output_index: outputIndex,
      arguments: t.arguments,
    });
    emit("response.output_item.done", { output_index: outputIndex, item });
    outputIndex++;
    void i;
  });
  emit("response.completed", { response: responseObject(reply, "completed") });
  return frames;
}

// ---------------------------------------------------------------- Anthropic messages

export function anthropicUsage(u: FakeUsage): Record<string, unknown> {
  return {
    input_tokens: u.input,
    cache_creation_input_tokens: u.cacheWrite ?? 0,
    cache_read_input_tokens: u.cacheRead ?? 0,
    output_tokens: u.output,
    service_tier: "standard",
  };
}

function parseArgs(args: string): unknown {
  try {
    return JSON.parse(args);
  } catch {
    return {};
  }
}

export function anthropicJson(reply: ResolvedReply): Record<string, unknown> {
  const content: Record<string, unknown>[] = [];
  if (reply.pieces.length > 0) content.push({ type: "text", text: text(reply) });
  for (const t of reply.toolCalls) {
    content.push({ type: "tool_use", id: t.id, name: t.name, input: parseArgs(t.arguments) });
  }
  return {
    id: reply.id,
    type: "message",
    role: "assistant",
    model: reply.model,
    content,
    stop_reason: reply.toolCalls.length > 0 ? "tool_use" : "end_turn",
    stop_sequence: null,
    usage: anthropicUsage(reply.usage),
  };
}

/** The SSE frames of a streamed message, `message_start` through `message_stop`. */
export function anthropicFrames(reply: ResolvedReply): string[] {
  const frames: string[] = [];
  const emit = (type: string, body: Record<string, unknown>) => {
    frames.push(sseFrame(JSON.stringify({ type, ...body }), type));
  };
  emit("message_start", {
    message: {
      id: reply.id,
      type: "message",
      role: "assistant",
      model: reply.model,
      content: [],
      stop_reason: null,
      stop_sequence: null,
      usage: anthropicUsage({ ...reply.usage, output: 1 }),
    },
  });
  let index = 0;
  if (reply.pieces.length > 0) {
    emit("content_block_start", { index, content_block: { type: "text", text: "" } });
    frames.push(sseFrame(`{"type": "ping"}`, "ping"));
    for (const piece of reply.pieces) {
      emit("content_block_delta", { index, delta: { type: "text_delta", text: piece } });
    }
    emit("content_block_stop", { index });
    index++;
  }
  for (const t of reply.toolCalls) {
    emit("content_block_start", {
      index,
      content_block: { type: "tool_use", id: t.id, name: t.name, input: {} },
    });
    for (const a of argPieces(t.arguments)) {
      emit("content_block_delta", { index, delta: { type: "input_json_delta", partial_json: a } });
    }
    emit("content_block_stop", { index });
    index++;
  }
  emit("message_delta", {
    delta: {
      stop_reason: reply.toolCalls.length > 0 ? "tool_use" : "end_turn",
      stop_sequence: null,
    },
    usage: { output_tokens: reply.usage.output },
  });
  emit("message_stop", {});
  return frames;
}

// ---------------------------------------------------------------- errors

/** Provider error bodies, in each API's own shape. */
export function openaiErrorBody(message: string, type: string, code: string | null): string {
  return JSON.stringify({ error: { message, type, param: null, code } });
}

export function anthropicErrorBody(message: string, type: string): string {
  return JSON.stringify({ type: "error", error: { type, message } });
}
