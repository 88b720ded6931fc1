/**
 * agentcli benchmarks, printed (no assertions):
 *  1. per-step loop overhead: a real run against a local fake upstream (loopback HTTP, one
 *     built-in tool call per step), minus the model-call latency and the tool time the loop
 *     measured itself. What is left is message building, policy/redaction bookkeeping, audit
 *     writes and dispatch. Target: under 5 ms per step.
 *  2. tool spawn cost: /bin/true through the process runner (own process group, pipes, timeout
 *     timer), and a `shell` call end to end (policy check of the script + bash).
 *
 *   pnpm --filter @bottlekit/agentcli bench
 */
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createFakeUpstream } from "@bottlekit/test-utils";
import { runAgent } from "../src/agent.ts";
import { AuditLog } from "../src/audit.ts";
import { ChatClient } from "../src/client.ts";
import { PolicyGate } from "../src/gate.ts";
import { Redactor } from "../src/redact.ts";
import { runProcess } from "../src/tools/spawn.ts";
import { Toolbox } from "../src/tools/toolbox.ts";

const STEPS = Number(process.env["BENCH_STEPS"] ?? 200);
const SPAWNS = Number(process.env["BENCH_SPAWNS"] ?? 100);

const dir = await mkdtemp(join(tmpdir(), "agentcli-bench-"));
const upstream = await createFakeUpstream({
  record: false,
  defaultReply: {
    toolCalls: [{ name: "list_dir", arguments: "{}" }],
    usage: { input: 10, output: 5 },
  },
});
try {
  await writeFile(join(dir, "a.txt"), "a");
  await writeFile(join(dir, "policy.rules"), 'prefix_rule(pattern=["true"], decision="allow")\n');
  const gate = await PolicyGate.load([{ path: join(dir, "policy.rules"), origin: "bench" }]);
  const env = { PATH: process.env["PATH"] ?? "/usr/bin:/bin", HOME: dir };
  const redactor = await Redactor.create(env);
  const toolbox = new Toolbox({
    root: dir,
    gate,
    manifest: [],
    env,
    shellEnv: [],
    toolTimeoutMs: 10_000,
    capBytes: 65536,
    ask: undefined,
  });
  const client = new ChatClient({
    baseUrl: `${upstream.url}/v1`,
    apiKey: "bench",
    timeoutMs: 10_000,
    retries: 0,
    backoffMs: 0,
    env,
    userAgent: "agentcli-bench",
  });
  const audit = new AuditLog(join(dir, "audit.ndjson"));

  let modelMs = 0;
  const timedClient = {
    chat: async (...args: Parameters<ChatClient["chat"]>) => {
      const t = performance.now();
      try {
        return await client.chat(...args);
      } finally {
        modelMs += performance.now() - t;
      }
    },
  } as unknown as ChatClient;

  const once = async (steps: number) => {
    modelMs = 0;
    const t = performance.now();
    const s = await runAgent({
      client: timedClient,
      model: "bench",
      messages: [
        { role: "system", content: "bench" },
        { role: "user", content: "bench" },
      ],
      toolbox,
      maxSteps: steps,
      maxTokens: undefined,
      stream: false,
      audit,
      redactor,
    });
    const total = performance.now() - t;
    const toolMs = s.toolCalls.reduce((n, c) => n + c.durationMs, 0);
    return { total, modelMs, toolMs, steps: s.steps };
  };
  await once(20); // warm-up
  const r = await once(STEPS);
  const overhead = (r.total - r.modelMs - r.toolMs) / r.steps;
  const line = (k: string, v: string) => process.stdout.write(`${k.padEnd(44)} ${v}\n`);
  line("loop: steps", String(r.steps));
  line("loop: model time per step (loopback HTTP)", `${(r.modelMs / r.steps).toFixed(3)} ms`);
  line("loop: tool time per step (list_dir)", `${(r.toolMs / r.steps).toFixed(3)} ms`);
  line(
    "loop: overhead per step (the rest)",
    `${overhead.toFixed(3)} ms  (target < 5 ms: ${overhead < 5 ? "met" : "MISSED"})`,
  );

  const spawnOnce = async () => {
    const t = performance.now();
    await runProcess(["true"], { cwd: dir, env, stdin: "", timeoutMs: 10_000, capBytes: 65536 });
    return performance.now() - t;
  };
  for (let i = 0; i < 5; i++) await spawnOnce();
  let spawnMs = 0;
  for (let i = 0; i < SPAWNS; i++) spawnMs += await spawnOnce();
  line("spawn: /bin/true via the runner", `${(spawnMs / SPAWNS).toFixed(3)} ms`);

  let shellMs = 0;
  for (let i = 0; i < SPAWNS; i++) {
    const t = performance.now();
    await toolbox.call({
      id: "b",
      type: "function",
      function: { name: "shell", arguments: '{"command":"true"}' },
    });
    shellMs += performance.now() - t;
  }
  line("spawn: shell tool `true` (policy + bash)", `${(shellMs / SPAWNS).toFixed(3)} ms`);

  let gateMs = 0;
  for (let i = 0; i < SPAWNS; i++) {
    const t = performance.now();
    await gate.checkScript("git status && npm test > out.log; true");
    gateMs += performance.now() - t;
  }
  line("policy: check of a 3-command script", `${(gateMs / SPAWNS).toFixed(3)} ms`);
  // Start-up: `agentcli --help` (built bin) against a bare `node -e 0`, when dist exists.
  const bin = new URL("../bin/agentcli.js", import.meta.url).pathname;
  const dist = new URL("../dist/cli.js", import.meta.url).pathname;
  if (existsSync(dist)) {
    const time = (args: string[]) => {
      const t = performance.now();
      spawnSync(process.execPath, args, { stdio: "ignore" });
      return performance.now() - t;
    };
    let helpMs = 0;
    let nodeMs = 0;
    const n = 10;
    for (let i = 0; i < n; i++) {
      nodeMs += time(["-e", "0"]);
      helpMs += time([bin, "--help"]);
    }
    line(
      "start-up: agentcli --help",
      `${(helpMs / n).toFixed(1)} ms (node -e 0: ${(nodeMs / n).toFixed(1)} ms)`,
    );
  } else line("start-up", "skipped (run pnpm build first)");
  audit.close();
  await client.close();
} finally {
  await upstream.close();
  await rm(dir, { recursive: true, force: true });
}
