/**
 * `agentcli [options] <prompt>`: reads the prompt, resolves the settings, loads tools and policy,
 * runs the loop, prints the answer (or one JSON document) and maps the outcome to an exit code.
 */
import { randomUUID } from "node:crypto";
import { readFile, realpath, stat } from "node:fs/promises";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { writeJson } from "@bottlekit/diagnostics";
import pkg from "../../package.json" with { type: "json" };
import { runAgent } from "../agent.ts";
import { AuditLog, defaultAuditPath } from "../audit.ts";
import type { CliIo, ParsedArgs } from "../cli.ts";
import { ChatClient, type ChatMessage } from "../client.ts";
import { applyDirect, describeSettings, type FlagValues, resolveSettings } from "../config.ts";
import { AgentCliError } from "../errors.ts";
import { PolicyGate } from "../gate.ts";
import { Redactor } from "../redact.ts";
import { loadToolsManifest } from "../tools/manifest.ts";
import { killAllGroups } from "../tools/spawn.ts";
import { BUILTIN_NAMES, Toolbox } from "../tools/toolbox.ts";

async function readStdin(io: CliIo): Promise<string> {
  if (io.stdin === undefined)
    throw new AgentCliError("E_USAGE", "no stdin to read the prompt from");
  if ((io.stdin as { isTTY?: boolean }).isTTY) {
    throw new AgentCliError("E_USAGE", "the prompt is - (stdin), but stdin is a terminal", {
      hint: "pipe the prompt in (echo 'task' | agentcli -) or pass it as an argument",
    });
  }
  const chunks: Buffer[] = [];
  for await (const c of io.stdin)
    chunks.push(typeof c === "string" ? Buffer.from(c) : (c as Buffer));
  return Buffer.concat(chunks).toString("utf8");
}

async function readText(file: string, what: string, io: CliIo): Promise<string> {
  if (file === "-") return readStdin(io);
  try {
    return await readFile(join(io.cwd ?? process.cwd(), file), "utf8");
  } catch (error) {
    throw new AgentCliError(
      "E_INVALID_INPUT",
      `${file}: cannot read the ${what} (${(error as NodeJS.ErrnoException).code ?? error})`,
    );
  }
}

function str(v: unknown): string | undefined {
  return typeof v === "string" ? v : undefined;
}
function strs(v: unknown): string[] | undefined {
  return Array.isArray(v) ? (v as string[]) : undefined;
}

async function buildMessages(a: ParsedArgs, io: CliIo, system: string): Promise<ChatMessage[]> {
  const o = a.opts;
  const promptFile = str(o["promptFile"]);
  if (a.prompt !== undefined && promptFile !== undefined) {
    throw new AgentCliError(
      "E_USAGE",
      "a prompt argument and --prompt-file are mutually exclusive",
      {
        hint: "give one of them",
      },
    );
  }
  if (a.prompt === undefined && promptFile === undefined) {
    throw new AgentCliError("E_USAGE", "a prompt is required", {
      hint: "agentcli 'fix the failing test', --prompt-file FILE, or - to read stdin",
    });
  }
  const prompt =
    promptFile !== undefined
      ? await readText(promptFile, "prompt", io)
      : a.prompt === "-"
        ? await readStdin(io)
        : (a.prompt as string);
  if (prompt.trim() === "") throw new AgentCliError("E_USAGE", "the prompt is empty");
  if (str(o["system"]) !== undefined && str(o["systemFile"]) !== undefined) {
    throw new AgentCliError("E_USAGE", "--system and --system-file are mutually exclusive");
  }
  const sys =
    str(o["systemFile"]) !== undefined
      ? await readText(str(o["systemFile"]) as string, "system message", io)
      : system;
  const messages: ChatMessage[] = [{ role: "system", content: sys }];
  for (const d of strs(o["developer"]) ?? []) messages.push({ role: "developer", content: d });
  for (const f of strs(o["developerFile"]) ?? []) {
    messages.push({ role: "developer", content: await readText(f, "developer message", io) });
  }
  messages.push({ role: "user", content: prompt });
  return messages;
}

function flagValues(o: Record<string, unknown>): FlagValues {
  const f: FlagValues = {};
  const map: [keyof FlagValues, string][] = [
    ["model", "model"],
    ["baseUrl", "baseUrl"],
    ["apiKeyEnv", "apiKeyEnv"],
    ["maxSteps", "maxSteps"],
    ["maxTokens", "maxTokens"],
    ["httpTimeout", "httpTimeout"],
    ["httpRetries", "httpRetries"],
    ["httpRetryBackoff", "httpRetryBackoff"],
    ["toolTimeout", "toolTimeout"],
    ["toolOutputCap", "toolOutputCap"],
    ["tools", "tools"],
    ["workspace", "workspace"],
    ["audit", "audit"],
    ["system", "system"],
  ];
  for (const [k, o2] of map) {
    const v = str(o[o2]);
    if (v !== undefined) (f as Record<string, unknown>)[k] = v;
  }
  const policy = [...(strs(o["policy"]) ?? []), ...(strs(o["rules"]) ?? [])];
  if (policy.length > 0) f.policy = policy;
  const shellEnv = strs(o["shellEnv"]);
  if (shellEnv) f.shellEnv = shellEnv;
  if (o["direct"] === true) f.direct = true;
  return f;
}

function makeAsk(io: CliIo): ((q: string) => Promise<boolean>) | undefined {
  const input = io.stdin as (NodeJS.ReadableStream & { isTTY?: boolean }) | undefined;
  const errTty = (io.stderr as { isTTY?: boolean }).isTTY === true;
  if (input === undefined || input.isTTY !== true || !errTty) return undefined;
  return (question) =>
    new Promise((resolve) => {
      const rl = createInterface({ input, output: io.stderr, terminal: false });
      rl.question(question, (answer) => {
        rl.close();
        resolve(/^y(es)?$/i.test(answer.trim()));
      });
    });
}

export async function runCommand(a: ParsedArgs, io: CliIo): Promise<number> {
  const cwd = io.cwd ?? process.cwd();
  const env = io.env;
  const json = a.opts["json"] === true;
  const verbose = a.opts["verbose"] === true && a.opts["quiet"] !== true;
  const flags = flagValues(a.opts);
  const settings = await applyDirect(resolveSettings(flags, env, cwd), flags, env);
  const auditPath = settings.audit.value ?? defaultAuditPath(settings.home.value);

  if (a.opts["printConfig"] === true) {
    const described = describeSettings(settings, env, auditPath);
    if (json) writeJson(io.stdout, { settings: described });
    else {
      const width = Math.max(...Object.keys(described).map((k) => k.length));
      for (const [k, v] of Object.entries(described)) {
        const value = Array.isArray(v.value)
          ? v.value.join(", ") || "(none)"
          : v.value === null
            ? "(none)"
            : String(v.value);
        io.stdout.write(`${k.padEnd(width)}  ${value}  [${v.source}]\n`);
      }
    }
    return 0;
  }

  if (
    typeof process.getuid === "function" &&
    process.getuid() === 0 &&
    env["AGENTCLI_ALLOW_ROOT"] !== "1"
  ) {
    throw new AgentCliError("E_POLICY", "refusing to run an agent as root", {
      hint: "run as an unprivileged user (bottle run does), or set AGENTCLI_ALLOW_ROOT=1 inside a disposable container",
    });
  }

  const messages = await buildMessages(a, io, settings.system.value);
  let root: string;
  try {
    root = await realpath(settings.workspace.value);
    if (!(await stat(root)).isDirectory()) throw new Error("not a directory");
  } catch {
    throw new AgentCliError(
      "E_INVALID_INPUT",
      `${settings.workspace.value}: the workspace is not a directory`,
      {
        hint: "pass an existing directory with -C/--workspace",
      },
    );
  }
  const manifest = settings.tools.value
    ? await loadToolsManifest(settings.tools.value, BUILTIN_NAMES)
    : [];
  const gate = await PolicyGate.load(
    settings.policy.value.map((p) => ({ path: p, origin: settings.policy.source })),
    [{ path: join(settings.home.value, "rules", "default.rules"), origin: "user amendments" }],
  );
  const apiKey = env[settings.apiKeyEnv.value];
  const redactor = await Redactor.create(env, [settings.apiKeyEnv.value]);
  const audit = new AuditLog(auditPath);
  const runId = randomUUID();
  const progress = (line: string) => {
    if (verbose) io.stderr.write(`agentcli: ${line}\n`);
  };
  const client = new ChatClient({
    baseUrl: settings.baseUrl.value,
    apiKey,
    timeoutMs: settings.httpTimeoutSec.value * 1000,
    retries: settings.httpRetries.value,
    backoffMs: settings.httpRetryBackoffMs.value,
    env,
    userAgent: `agentcli/${pkg.version}`,
    onAttempt: (info) => {
      audit.write({
        event: "http.attempt",
        runId,
        ...info,
        ...(info.error ? { error: redactor.text(info.error) } : {}),
      });
      if (info.backoffMs !== undefined)
        progress(
          `model call attempt ${info.attempt} failed (${info.error}); retrying in ${info.backoffMs} ms`,
        );
    },
  });
  const toolbox = new Toolbox({
    root,
    gate,
    manifest,
    env,
    shellEnv: settings.shellEnv.value,
    toolTimeoutMs: settings.toolTimeoutSec.value * 1000,
    capBytes: settings.toolOutputCap.value,
    ask: makeAsk(io),
  });
  audit.write({
    event: "run.start",
    runId,
    version: pkg.version,
    model: settings.model.value,
    baseUrl: settings.baseUrl.value,
    viaGateway: settings.viaGateway,
    proxy: settings.proxy.value !== undefined,
    apiKeyEnv: settings.apiKeyEnv.value,
    apiKeySet: apiKey !== undefined && apiKey !== "",
    workspace: root,
    tools: toolbox.names(),
    policyFiles: gate.files.map((f) => f.path),
    maxSteps: settings.maxSteps.value,
    maxTokens: settings.maxTokens.value ?? null,
  });

  const stream = a.opts["stream"] === true;
  let streamed = false;
  const interrupted = () => {
    killAllGroups();
    audit.write({ event: "run.end", runId, status: "interrupted", exitCode: 130 });
    audit.close();
    process.exit(130);
  };
  process.once("SIGINT", interrupted);
  process.once("SIGTERM", interrupted);
  // Whatever ends the process (an EPIPE on stdout included), no tool process group outlives it.
  process.on("exit", killAllGroups);
  let summary: Awaited<ReturnType<typeof runAgent>>;
  try {
    summary = await runAgent({
      client,
      model: settings.model.value,
      messages,
      toolbox,
      maxSteps: settings.maxSteps.value,
      maxTokens: settings.maxTokens.value,
      stream,
      ...(stream && !json
        ? {
            onDelta: (t: string) => {
              streamed = true;
              io.stdout.write(t);
            },
            onStepText: () => {
              io.stdout.write("\n");
              streamed = false;
            },
          }
        : {}),
      audit,
      redactor,
      progress,
    });
  } finally {
    process.removeListener("SIGINT", interrupted);
    process.removeListener("SIGTERM", interrupted);
    process.removeListener("exit", killAllGroups);
    await client.close();
    audit.close();
  }

  if (json) writeJson(io.stdout, { ...summary, audit: auditPath });
  if (summary.status === "final") {
    if (json) return 0;
    if (stream) {
      if (streamed) io.stdout.write("\n");
    } else io.stdout.write(`${summary.answer ?? ""}\n`);
    return 0;
  }
  const u = summary.usage;
  const used = `${u.total} tokens (input ${u.input}, output ${u.output}) in ${u.modelCalls} model calls over ${summary.steps} steps, ${summary.toolCalls.length} tool calls`;
  if (streamed) io.stdout.write("\n");
  if (summary.status === "max_steps") {
    io.stderr.write(
      `agentcli: reached the step limit (${settings.maxSteps.value}) without a final answer; needs human review\nagentcli: used ${used}\n`,
    );
  } else {
    io.stderr.write(`agentcli: stopped: ${summary.error?.message ?? summary.status}\n`);
    if (summary.error?.hint) io.stderr.write(`hint: ${summary.error.hint}\n`);
    io.stderr.write(`agentcli: used ${used}\n`);
  }
  return summary.exitCode;
}
