/**
 * What translation itself costs per call, without the network: a Claude-Code-sized Messages
 * request (a long system prompt, 12 tools, a 20-turn conversation with tool calls) rewritten for
 * Chat Completions, and the upstream's answer rewritten back, JSON and SSE. Prints p50 and p99
 * per call in one run. The gateway bench (`bench/run.ts`, part (d)) measures the added p50 of a
 * translated call end to end against a same-API call; this one shows where that time goes.
 *
 *   pnpm --filter @bottlekit/gateway exec tsx --conditions=@bottlekit/source bench/translate.ts
 */
import { performance } from "node:perf_hooks";
import {
  createStreamTranslator,
  translateRequest,
  translateRequestWithContext,
  translateResponse,
} from "../src/translate/index.ts";

const N = Number(process.env["BENCH_N"] ?? 3000);

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] as number;
}

function measure(name: string, fn: () => unknown): void {
  for (let i = 0; i < 300; i++) fn();
  const xs: number[] = [];
  for (let i = 0; i < N; i++) {
    const t0 = performance.now();
    fn();
    xs.push(performance.now() - t0);
  }
  console.log(
    `  ${name.padEnd(58)} p50 ${pct(xs, 50).toFixed(3)} ms  p99 ${pct(xs, 99).toFixed(3)} ms`,
  );
}

const tools = Array.from({ length: 12 }, (_, i) => ({
  name: `tool_${i}`,
  description: "x".repeat(800),
  input_schema: {
    type: "object",
    properties: { path: { type: "string" }, limit: { type: "number" } },
    required: ["path"],
  },
}));
const messages: Record<string, unknown>[] = [];
for (let i = 0; i < 10; i++) {
  messages.push({ role: "user", content: `question ${i} ${"q".repeat(300)}` });
  messages.push({
    role: "assistant",
    content: [
      { type: "text", text: "looking" },
      { type: "tool_use", id: `toolu_${i}`, name: "tool_1", input: { path: `/f${i}` } },
    ],
  });
  messages.push({
    role: "user",
    content: [{ type: "tool_result", tool_use_id: `toolu_${i}`, content: "r".repeat(600) }],
  });
}
messages.push({ role: "user", content: "and now?" });
const messagesBody = {
  model: "local/qwen3",
  max_tokens: 32000,
  stream: true,
  system: [{ type: "text", text: "s".repeat(12_000) }],
  tools,
  messages,
};
console.log(`request: ${JSON.stringify(messagesBody).length} bytes, n=${N}`);

const codexBody = {
  model: "anthropic/claude",
  stream: true,
  input: [{ type: "message", role: "user", content: [{ type: "input_text", text: "hi" }] }],
  tools: [
    ...tools.map((t) => ({ type: "function", name: t.name, parameters: t.input_schema })),
    {
      type: "namespace",
      name: "multi_agent_v1",
      description: "sub-agents",
      tools: tools.slice(0, 5).map((t) => ({
        type: "function",
        name: t.name,
        parameters: t.input_schema,
      })),
    },
  ],
};

const chatAnswer = {
  id: "chatcmpl-1",
  object: "chat.completion",
  model: "qwen3",
  choices: [
    {
      index: 0,
      finish_reason: "tool_calls",
      message: {
        role: "assistant",
        content: "a".repeat(400),
        tool_calls: [
          { id: "c1", type: "function", function: { name: "tool_1", arguments: '{"path":"/x"}' } },
        ],
      },
    },
  ],
  usage: { prompt_tokens: 9000, completion_tokens: 120 },
};
const sse = [
  ...Array.from({ length: 60 }, (_, i) => ({
    id: "c",
    model: "qwen3",
    choices: [
      { index: 0, delta: i === 0 ? { role: "assistant", content: "w " } : { content: "w " } },
    ],
  })),
  { id: "c", model: "qwen3", choices: [{ index: 0, delta: {}, finish_reason: "stop" }] },
  { id: "c", model: "qwen3", choices: [], usage: { prompt_tokens: 9000, completion_tokens: 60 } },
]
  .map((c) => `data: ${JSON.stringify(c)}\n\n`)
  .join("")
  .concat("data: [DONE]\n\n");

console.log("translation per call (CPU only):");
measure("request  Messages → Chat Completions (Claude Code sized)", () =>
  translateRequest("anthropic-messages", "openai-chat", messagesBody),
);
measure("request  Responses → Messages (Codex, with a namespace)", () =>
  translateRequestWithContext("openai-responses", "anthropic-messages", codexBody),
);
measure("response Chat Completions JSON → Messages", () =>
  translateResponse("openai-chat", "anthropic-messages", chatAnswer),
);
measure("stream   Chat Completions SSE (62 chunks) → Messages", () => {
  const t = createStreamTranslator("openai-chat", "anthropic-messages");
  t.push(sse);
  t.end();
});
