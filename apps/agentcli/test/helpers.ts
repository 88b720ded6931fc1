import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { captureIo, createFakeUpstream, type FakeUpstream } from "@bottlekit/test-utils";
import { run } from "../src/cli.ts";

export interface Sandbox {
  dir: string;
  /** The agent's workspace (inside dir). */
  ws: string;
  home: string;
  upstream: FakeUpstream;
  /** Environment for an agent run against the fake upstream (OpenAI-compatible base URL). */
  env: NodeJS.ProcessEnv;
  audit: string;
  run(
    args: string[],
    env?: NodeJS.ProcessEnv,
    stdin?: string,
  ): Promise<{ code: number; out: string; err: string }>;
  auditLines(): Promise<Record<string, unknown>[]>;
  cleanup(): Promise<void>;
}

export const UPSTREAM_KEY = "sk-proj-TESTupstreamKEY0123456789abcdefABCDEF01234567";

export async function sandbox(): Promise<Sandbox> {
  const dir = await mkdtemp(join(tmpdir(), "agentcli-test-"));
  const ws = join(dir, "ws");
  const home = join(dir, "home");
  await mkdir(ws);
  await mkdir(home);
  const upstream = await createFakeUpstream({ requireKey: UPSTREAM_KEY });
  const audit = join(dir, "audit.ndjson");
  const env: NodeJS.ProcessEnv = {
    PATH: process.env["PATH"] ?? "/usr/bin:/bin",
    HOME: home,
    BOTTLEKIT_HOME: home,
    AGENTCLI_BASE_URL: `${upstream.url}/v1`,
    AGENTCLI_API_KEY_ENV: "TEST_UPSTREAM_KEY",
    TEST_UPSTREAM_KEY: UPSTREAM_KEY,
    AGENTCLI_AUDIT: audit,
    AGENTCLI_ALLOW_ROOT: "1",
    AGENTCLI_HTTP_RETRY_BACKOFF: "0",
  };
  return {
    dir,
    ws,
    home,
    upstream,
    env,
    audit,
    async run(args, extra = {}, stdin) {
      const c = captureIo({ ...env, ...extra }, stdin === undefined ? {} : { stdin });
      const code = await run(["-C", ws, ...args], { ...c.io, cwd: dir });
      return { code, out: c.out(), err: c.err() };
    },
    async auditLines() {
      const text = await readFile(audit, "utf8").catch(() => "");
      return text
        .split("\n")
        .filter((l) => l !== "")
        .map((l) => JSON.parse(l) as Record<string, unknown>);
    },
    async cleanup() {
      await upstream.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Writes an executable script. */
export async function script(path: string, body: string): Promise<void> {
  await mkdir(join(path, ".."), { recursive: true });
  await writeFile(path, body);
  await chmod(path, 0o755);
}

/** The messages of a recorded chat request. */
export function messagesOf(body: unknown): Array<Record<string, unknown>> {
  return (body as { messages: Array<Record<string, unknown>> }).messages;
}

/** The tool message answering `id` in a recorded request, parsed. */
export function toolResult(body: unknown, id: string): Record<string, unknown> {
  const m = messagesOf(body).find((x) => x["role"] === "tool" && x["tool_call_id"] === id);
  if (m === undefined) throw new Error(`no tool message for ${id}`);
  return JSON.parse(String(m["content"])) as Record<string, unknown>;
}

export interface ScriptedReply {
  status?: number;
  headers?: Record<string, string>;
  body: unknown;
}

/** A raw chat-completions server answering from a queue, for status codes and headers the fake upstream does not script. */
export async function scriptedServer(replies: ScriptedReply[]): Promise<{
  url: string;
  requests: { headers: IncomingMessage["headers"]; body: Record<string, unknown> }[];
  close(): Promise<void>;
}> {
  const requests: { headers: IncomingMessage["headers"]; body: Record<string, unknown> }[] = [];
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      requests.push({
        headers: req.headers,
        body: JSON.parse(Buffer.concat(chunks).toString("utf8")),
      });
      const r = replies.shift() ?? {
        status: 500,
        body: { error: { message: "script exhausted", type: "server_error" } },
      };
      const text = JSON.stringify(r.body);
      res.writeHead(r.status ?? 200, { "content-type": "application/json", ...r.headers });
      res.end(text);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/v1`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** An OpenAI chat completion body. */
export function completion(
  content: string | null,
  finish: string,
  usage = { prompt_tokens: 10, completion_tokens: 5 },
): Record<string, unknown> {
  return {
    id: "chatcmpl-scripted",
    object: "chat.completion",
    created: 0,
    model: "scripted-model",
    choices: [
      {
        index: 0,
        message: { role: "assistant", content, refusal: null },
        logprobs: null,
        finish_reason: finish,
      },
    ],
    usage: { ...usage, total_tokens: usage.prompt_tokens + usage.completion_tokens },
  };
}
