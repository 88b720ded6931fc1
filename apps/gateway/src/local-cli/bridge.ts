// The local-agent bridge: an upstream on loopback that speaks the agent's own vendor API
// (Anthropic Messages for Claude Code, OpenAI Responses for Codex) and answers each request by
// running the operator's CLI once. The gateway routes `claude-cli/*` and `codex-cli/*` here like
// any provider, so its router, translation (any client API), metering and budgets
// apply unchanged. Every request checks, fail-closed: the gateway listens on loopback, the
// local-agent acknowledgement covers the whole configuration that would run (binary, permission
// mode, tools, working directory, HOME, run-as account: its fingerprint), the CLI would not run
// as root, and the caller holds the bridge's per-start secret. What runs is the configuration
// the acknowledgement was checked against, never a second reading of the environment.
import { randomBytes, timingSafeEqual } from "node:crypto";
import { chownSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  evaluateLocalAgentGate,
  type LocalAgentRuntime,
  type PendingInterface,
  type PendingReason,
} from "@bottlekit/local-agent-warning";
import type { IrEvent, IrResponse, IrUsage } from "../translate/ir.ts";
import { MessagesStreamWriter, writeMessagesResponse } from "../translate/messages.ts";
import { ResponsesStreamWriter, writeResponsesResponse } from "../translate/responses.ts";
import { type AgentTurn, ClaudeEventReader, claudeTurn, LocalCliRequestError } from "./claude.ts";
import { CodexEventReader, codexTurn } from "./codex.ts";
import {
  agentEnv,
  killTree,
  LocalCliRefusal,
  localCliConfig,
  spawnCli,
  type UidSource,
} from "./process.ts";

type Env = Readonly<Record<string, string | undefined>>;

/** The header carrying the bridge's secret (the gateway adds it as a provider header). */
export const BRIDGE_HEADER = "x-bottlekit-local-cli";

export interface BridgeLogEvent {
  level: "info" | "warn" | "error";
  event: string;
  [key: string]: unknown;
}

export interface LocalCliBridgeOptions {
  /** The gateway's environment: the CLI's configuration and its vendor's variables. */
  env: Env;
  /** `$BOTTLEKIT_HOME`, where the acknowledgement is kept. */
  home: string;
  /** Whether the gateway listens on loopback only; otherwise every request is refused. */
  loopback: boolean;
  log?: (e: BridgeLogEvent) => void;
  /** The caller's uid (default `process.getuid`). */
  uid?: UidSource;
  /** Largest request body accepted (bytes). */
  maxBodyBytes?: number;
}

export interface LocalCliBridge {
  /** `http://127.0.0.1:PORT` */
  url: string;
  /** The header value the gateway must send (never logged). */
  secret: string;
  /** Runs in progress (for tests and drain). */
  running(): number;
  close(): Promise<void>;
}

/** One agent CLI: the API its bridge speaks, how a request becomes a run, how events come back. */
interface AgentSpec {
  iface: string;
  stem: string;
  api: "anthropic-messages" | "openai-responses";
  path: string;
  /** Vendor variables the agent keeps (its login, base URL, home). */
  envPrefixes: readonly string[];
  turn(body: Record<string, unknown>): AgentTurn;
  args(permissionMode: string, tools: string, turn: AgentTurn, systemFile?: string): string[];
  reader(): { push(chunk: string): IrEvent[]; done: boolean; lastError: string | undefined };
  /** Writers of the bridge's API: a stream, or a whole answer. */
  streamWriter(): { write(e: IrEvent): string; end(): string };
  answer(ir: IrResponse): Record<string, unknown>;
}

const CLAUDE: AgentSpec = {
  iface: "claude-cli",
  stem: "CLAUDE_CLI",
  api: "anthropic-messages",
  path: "/v1/messages",
  envPrefixes: ["ANTHROPIC_", "CLAUDE_"],
  turn: claudeTurn,
  args(permissionMode, tools, turn, systemFile) {
    const out = [
      "-p",
      "--input-format",
      "stream-json",
      "--output-format",
      "stream-json",
      "--verbose",
      // Token deltas as they come (stream_event), not only whole messages.
      "--include-partial-messages",
      "--no-session-persistence",
      "--permission-mode",
      permissionMode,
      "--tools",
      ...(tools === "" ? [""] : tools.split(/[\s,]+/).filter(Boolean)),
    ];
    if (turn.model !== "" && turn.model !== "default") out.push("--model", turn.model);
    if (systemFile !== undefined) out.push("--append-system-prompt-file", systemFile);
    return out;
  },
  reader: () => new ClaudeEventReader(),
  streamWriter: () => new MessagesStreamWriter(),
  answer: writeMessagesResponse,
};

const CODEX: AgentSpec = {
  iface: "codex-cli",
  stem: "CODEX_CLI",
  api: "openai-responses",
  path: "/v1/responses",
  envPrefixes: ["OPENAI_", "CODEX_"],
  turn: codexTurn,
  // Codex's permission modes are its sandbox modes, and its tools are its own (no --tools).
  // The prompt is read from stdin.
  args(permissionMode, _tools, turn) {
    const out = ["exec", "--json", "--skip-git-repo-check", "--color", "never"];
    out.push("--sandbox", permissionMode);
    if (turn.model !== "" && turn.model !== "default") out.push("--model", turn.model);
    return out;
  },
  reader: () => new CodexEventReader(),
  streamWriter: () => new ResponsesStreamWriter(),
  answer: (ir) => writeResponsesResponse(ir),
};

const AGENTS = { "claude-cli": CLAUDE, "codex-cli": CODEX } as const;
export type BridgedInterface = keyof typeof AGENTS;

function sendError(
  res: ServerResponse,
  status: number,
  type: string,
  message: string,
  api: AgentSpec["api"],
): void {
  if (res.headersSent) return void res.end();
  const body = JSON.stringify(
    api === "anthropic-messages"
      ? { type: "error", error: { type, message } }
      : { error: { message, type, param: null, code: type } },
  );
  res.writeHead(status, {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(body),
  });
  res.end(body);
}

function readBody(req: IncomingMessage, max: number): Promise<Buffer | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (c: Buffer) => {
      size += c.length;
      if (size > max) {
        resolve(undefined);
        req.destroy();
      } else chunks.push(c);
    });
    req.on("end", () => resolve(Buffer.concat(chunks)));
    req.on("error", reject);
  });
}

/** What each reason says changed, and the variable that changes it. */
const CHANGED: Record<PendingReason, (stem: string) => string> = {
  new: () => "no acknowledgement on this host",
  "binary-changed": (stem) => `the binary changed (${stem}_BIN)`,
  "permission-mode-changed": (stem) => `the permission mode changed (${stem}_PERMISSION_MODE)`,
  "tools-changed": (stem) => `the tools changed (${stem}_TOOLS)`,
  "cwd-changed": (stem) => `the working directory changed (${stem}_CWD)`,
  "home-changed": (stem) => `HOME changed (${stem}_HOME)`,
  "run-as-changed": (stem) => `the run-as account changed (${stem}_RUN_AS)`,
  "configuration-changed": () => "the configuration changed",
};

/** The reasons of `pending`, in words: what changed since the acknowledgement. */
export function describePending(pending: PendingInterface | undefined, stem: string): string {
  if (pending === undefined) return CHANGED.new(stem);
  return pending.reasons.map((r) => CHANGED[r](stem)).join(", ");
}

const ACK_COMMAND =
  "bottle-gateway up --ack-local-agents (or BOTTLEKIT_ACK_LOCAL_AGENTS=1), after reading the local-agent warning it shows";

/**
 * Whether the operator's acknowledgement covers the whole configuration that would run now
 * (fails closed). Covered: the runtime to run with. Not: the refusal, naming what changed.
 */
async function acknowledged(
  IFACE: string,
  STEM: string,
  options: LocalCliBridgeOptions,
): Promise<
  { runtime: LocalAgentRuntime } | { refusal: LocalCliRefusal; pending?: PendingInterface }
> {
  try {
    const gate = await evaluateLocalAgentGate({
      config: { model_providers: [{ model: `${IFACE}/*` }] },
      env: options.env,
      home: options.home,
      interactive: false,
    });
    const runtime = gate.runtimes.find((r) => r.interface === IFACE);
    if (
      runtime !== undefined &&
      (gate.action === "acknowledged" || gate.action === "already-acknowledged")
    )
      return { runtime };
    const pending = gate.pending.find((p) => p.interface === IFACE);
    return {
      refusal: new LocalCliRefusal(
        "unacknowledged",
        `the local-agent provider ${IFACE} is not acknowledged for the configuration that would run (binary, permission mode, tools, working directory, HOME, run-as account): ${describePending(pending, STEM)}`,
        `acknowledge it again: ${ACK_COMMAND}`,
      ),
      ...(pending !== undefined ? { pending } : {}),
    };
  } catch (error) {
    return {
      refusal: new LocalCliRefusal(
        "unacknowledged",
        `the local-agent acknowledgement cannot be read: ${error instanceof Error ? error.message : String(error)}`,
        `check $BOTTLEKIT_HOME, then acknowledge again: ${ACK_COMMAND}`,
      ),
    };
  }
}

function refusalStatus(r: LocalCliRefusal): number {
  return r.code === "no-binary" || r.code === "bad-config" ? 503 : 403;
}

/** Starts the Claude Code bridge on 127.0.0.1 (a free port). */
export function startClaudeBridge(options: LocalCliBridgeOptions): Promise<LocalCliBridge> {
  return startBridge("claude-cli", options);
}

/** Starts the bridge of `iface` on 127.0.0.1 (a free port). */
export async function startBridge(
  iface: BridgedInterface,
  options: LocalCliBridgeOptions,
): Promise<LocalCliBridge> {
  const agent: AgentSpec = AGENTS[iface];
  const IFACE = agent.iface;
  const STEM = agent.stem;
  const fail = (res: ServerResponse, status: number, type: string, message: string) =>
    sendError(res, status, type, message, agent.api);
  const secret = randomBytes(24).toString("base64url");
  const expected = Buffer.from(secret);
  const uid: UidSource = options.uid ?? (() => process.getuid?.());
  const log = options.log ?? (() => {});
  const runs = new Set<() => void>();

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const given = Buffer.from(String(req.headers[BRIDGE_HEADER] ?? ""));
    if (given.length !== expected.length || !timingSafeEqual(given, expected))
      return fail(res, 403, "permission_error", "the local-agent bridge serves the gateway only");
    const path = (req.url ?? "").split("?")[0];
    if (req.method !== "POST" || path !== agent.path)
      return fail(
        res,
        404,
        "not_found_error",
        `${req.method} ${path} is not served by a local agent CLI`,
      );
    const raw = await readBody(req, options.maxBodyBytes ?? 32 * 1024 * 1024);
    if (raw === undefined) return fail(res, 413, "request_too_large", "the request is too large");
    const refuse = (r: LocalCliRefusal, pending?: PendingInterface) => {
      log({
        level: "warn",
        event: "local_cli.refused",
        interface: IFACE,
        code: r.code,
        // What changed, for the operator: the reasons and the settings now (never credentials).
        ...(pending !== undefined
          ? {
              reasons: pending.reasons,
              permissionMode: pending.permissionMode,
              settings: pending.settings,
            }
          : {}),
      });
      fail(res, refusalStatus(r), "permission_error", `${r.message}; ${r.hint}`);
    };
    if (!options.loopback)
      return refuse(
        new LocalCliRefusal(
          "not-loopback",
          `the local-agent provider ${IFACE} is served only by a gateway listening on loopback`,
          "listen on 127.0.0.1, or use a network provider",
        ),
      );
    const ack = await acknowledged(IFACE, STEM, options);
    if ("refusal" in ack) return refuse(ack.refusal, ack.pending);
    let body: unknown;
    try {
      body = JSON.parse(raw.toString("utf8"));
    } catch {
      return fail(res, 400, "invalid_request_error", "the body is not JSON");
    }
    if (typeof body !== "object" || body === null || Array.isArray(body))
      return fail(res, 400, "invalid_request_error", "the body must be a JSON object");
    let turn: AgentTurn;
    try {
      turn = agent.turn(body as Record<string, unknown>);
    } catch (error) {
      if (error instanceof LocalCliRequestError)
        return fail(res, 400, "invalid_request_error", error.message);
      throw error;
    }
    let config: ReturnType<typeof localCliConfig>;
    try {
      config = localCliConfig(IFACE, options.env, STEM, ack.runtime);
    } catch (error) {
      if (error instanceof LocalCliRefusal) return refuse(error);
      throw error;
    }
    const root = uid() === 0;
    if (root && (config.runAs === undefined || config.runAs.uid === 0)) {
      // Checked again by spawnCli; refused here before anything is written to disk.
      return refuse(
        new LocalCliRefusal(
          "as-root",
          `refusing to run ${IFACE} as root: the gateway runs as root and an agent never does`,
          `run the gateway as your own user, or set ${STEM}_RUN_AS to an unprivileged account such as nobody`,
        ),
      );
    }
    // A private directory per run: the system prompt file (never argv), and the default cwd/HOME.
    const dir = mkdtempSync(join(tmpdir(), "bottlekit-local-cli-"));
    const owner = root ? config.runAs : undefined;
    if (owner !== undefined) chownSync(dir, owner.uid, owner.gid);
    let systemFile: string | undefined;
    if (turn.system !== "") {
      systemFile = join(dir, "system-prompt.txt");
      writeFileSync(systemFile, turn.system, { mode: 0o600 });
      if (owner !== undefined) chownSync(systemFile, owner.uid, owner.gid);
    }
    const args = agent.args(config.permissionMode, config.tools, turn, systemFile);
    const home = config.home ?? (owner !== undefined ? dir : (options.env["HOME"] ?? dir));
    let child: ReturnType<typeof spawnCli>;
    try {
      child = spawnCli(config, args, {
        cwd: config.cwd ?? dir,
        env: agentEnv(options.env, agent.envPrefixes, STEM, home),
        uid,
      });
    } catch (error) {
      rmSync(dir, { recursive: true, force: true });
      if (error instanceof LocalCliRefusal) return refuse(error);
      throw error;
    }
    const pid = child.pid;
    log({
      level: "info",
      event: "local_cli.spawn",
      interface: IFACE,
      pid,
      permissionMode: config.permissionMode,
      ...(owner !== undefined ? { runAs: owner.name } : {}),
    });
    let finished = false;
    const stop = () => killTree(child);
    runs.add(stop);
    // The client (the gateway, for its client) went away before the answer ended: the whole
    // process tree goes with it.
    res.on("close", () => {
      if (!finished) {
        log({ level: "info", event: "local_cli.cancelled", interface: IFACE, pid });
        stop();
      }
    });
    // A CLI that cannot start (or fails to) ends the request like one that exits without an answer.
    child.on("error", () => end(null, null));
    // At exit, whatever it left running is killed, so no grandchild holds its pipes open.
    child.on("exit", () => stop());
    child.stdin?.on("error", () => undefined);
    child.stdin?.end(turn.stdin);
    let stderrBytes = 0;
    child.stderr?.on("data", (d: Buffer) => {
      stderrBytes += d.length;
    });
    const reader = agent.reader();
    const writer = turn.stream ? agent.streamWriter() : undefined;
    const events: IrEvent[] = [];
    if (writer !== undefined)
      res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
    child.stdout?.setEncoding("utf8");
    child.stdout?.on("data", (chunk: string) => {
      for (const e of reader.push(chunk)) {
        if (writer !== undefined) res.write(writer.write(e));
        else events.push(e);
      }
    });
    child.on("close", (code, signal) => end(code, signal));
    function end(code: number | null, signal: NodeJS.Signals | null): void {
      if (finished) return;
      finished = true;
      runs.delete(stop);
      stop(); // stragglers the CLI left behind
      rmSync(dir, { recursive: true, force: true });
      log({
        level: reader.done ? "info" : "warn",
        event: "local_cli.exit",
        interface: IFACE,
        pid,
        code,
        signal,
        stderrBytes,
      });
      if (res.destroyed) return;
      const failure = reader.done
        ? undefined
        : `the local agent CLI ended without an answer (exit ${code ?? signal})${reader.lastError !== undefined ? `: ${reader.lastError}` : ""}`;
      if (writer !== undefined) {
        if (failure !== undefined)
          res.write(writer.write({ type: "error", message: failure, errorType: "api_error" }));
        res.end(writer.end());
        return;
      }
      const error = events.find((e) => e.type === "error");
      if (failure !== undefined || error !== undefined) {
        fail(res, 502, "api_error", failure ?? (error as { message: string }).message);
        return;
      }
      const start = events.find((e) => e.type === "start");
      const usage: IrUsage = { input: 0, output: 0 };
      for (const e of events) if (e.type === "usage") Object.assign(usage, e.usage);
      const text = events.map((e) => (e.type === "text" ? e.delta : "")).join("");
      const answer = JSON.stringify(
        agent.answer({
          id: start?.type === "start" ? start.id : "msg_local",
          model: start?.type === "start" ? start.model : "",
          parts: text ? [{ type: "text", text }] : [],
          finish: "stop",
          usage,
        }),
      );
      res.writeHead(200, {
        "content-type": "application/json",
        "content-length": Buffer.byteLength(answer),
      });
      res.end(answer);
    }
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      log({
        level: "error",
        event: "local_cli.failed",
        message: error instanceof Error ? error.message : String(error),
      });
      sendError(res, 500, "api_error", "the local-agent bridge failed", agent.api);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  // Said once at start too, so an operator sees it before the first request is refused.
  if (uid() === 0) {
    let runAs: string | undefined;
    try {
      runAs = localCliConfig(IFACE, options.env, STEM).runAs?.name;
    } catch {
      runAs = undefined; // a bad run-as value is refused, named, with each request
    }
    if (runAs === undefined)
      log({
        level: "warn",
        event: "local_cli.as_root",
        interface: IFACE,
        message: `the gateway runs as root: ${IFACE} requests will be refused until ${STEM}_RUN_AS names an unprivileged account`,
      });
  }
  return {
    url: `http://127.0.0.1:${port}`,
    secret,
    running: () => runs.size,
    async close() {
      for (const stop of runs) stop();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
