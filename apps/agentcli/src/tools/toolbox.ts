/**
 * The tools the model may call, and the one place each call is gated, run and recorded.
 * Built-ins: read_file, list_dir, search_files, write_file, apply_patch, shell. Plus the tools of
 * a tools.json. `shell` scripts and tools.json commands pass the exec policy first.
 */
import type { ToolCall, ToolSpec } from "../client.ts";
import type { GateVerdict, PolicyGate } from "../gate.ts";
import {
  applyPatchTool,
  listDirTool,
  readFileTool,
  searchFilesTool,
  ToolFailure,
  writeFileTool,
} from "./files.ts";
import type { ManifestTool } from "./manifest.ts";
import { PathRefused, resolveInWorkspace } from "./paths.ts";
import type { SpawnResult } from "./spawn.ts";
import { runProcess } from "./spawn.ts";

/** What the policy (or the tool kind) decided for one call. */
export type CallDecision =
  | "allow"
  | "approved"
  | "refused-unattended"
  | "denied"
  | "forbidden"
  | "builtin";

export interface ToolRecord {
  id: string;
  name: string;
  /** The command line (or `name path`), as recorded: redacted by the caller. */
  argv: string[];
  decision: CallDecision;
  /** The policy's reason line, when the policy was asked. */
  reason?: string;
  exit?: number;
  timedOut?: boolean;
  durationMs: number;
  stdoutBytes: number;
  stderrBytes: number;
  truncated: boolean;
  /** Names of the environment variables the process received (never values). */
  envKeys?: string[];
  /** Error code when the call failed. */
  error?: string;
}

export interface ToolOutcome {
  /** The tool message content for the model. */
  content: string;
  record: ToolRecord;
}

export interface ToolboxOptions {
  root: string;
  gate: PolicyGate;
  manifest: ManifestTool[];
  env: NodeJS.ProcessEnv;
  /** Extra variable names passed to `shell` (on top of the base set). */
  shellEnv: string[];
  toolTimeoutMs: number;
  capBytes: number;
  /** Asks the user on a TTY; undefined when unattended. Resolves true to run. */
  ask: ((question: string) => Promise<boolean>) | undefined;
}

export const BUILTIN_NAMES = [
  "read_file",
  "list_dir",
  "search_files",
  "write_file",
  "apply_patch",
  "shell",
];

/** Variables `shell` always gets (when set): enough to run programs, reach the proxy and trust its CA. */
const SHELL_BASE_ENV = [
  "PATH",
  "HOME",
  "USER",
  "LOGNAME",
  "LANG",
  "LC_ALL",
  "LC_CTYPE",
  "TZ",
  "TMPDIR",
  "TERM",
  "HTTPS_PROXY",
  "HTTP_PROXY",
  "NO_PROXY",
  "https_proxy",
  "http_proxy",
  "no_proxy",
  "NODE_EXTRA_CA_CERTS",
  "SSL_CERT_FILE",
  "REQUESTS_CA_BUNDLE",
  "CURL_CA_BUNDLE",
  "GIT_SSL_CAINFO",
];
const DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin";

function pickEnv(env: NodeJS.ProcessEnv, names: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const n of names) {
    const v = env[n];
    if (v !== undefined) out[n] = v;
  }
  out["PATH"] ??= DEFAULT_PATH;
  return out;
}

const obj = (props: Record<string, unknown>, required: string[]) => ({
  type: "object",
  properties: props,
  required,
  additionalProperties: false,
});
const s = (description: string) => ({ type: "string", description });

const BUILTIN_SPECS: ToolSpec[] = [
  [
    "read_file",
    "Read a text file of the workspace (first 256 KiB).",
    obj({ path: s("path relative to the workspace") }, ["path"]),
  ],
  ["list_dir", "List a directory of the workspace.", obj({ path: s("directory, default .") }, [])],
  [
    "search_files",
    "Find lines containing a literal string in workspace files (skips .git, node_modules, files over 1 MiB).",
    obj({ query: s("literal text"), path: s("directory to search, default .") }, ["query"]),
  ],
  [
    "write_file",
    "Create or replace a workspace file with the given content (parents are created).",
    obj({ path: s("path relative to the workspace"), content: s("the whole new content") }, [
      "path",
      "content",
    ]),
  ],
  [
    "apply_patch",
    "Apply a unified diff (--- a/x, +++ b/x, @@ hunks; /dev/null to create or delete) to workspace files; all or nothing.",
    obj({ patch: s("the unified diff") }, ["patch"]),
  ],
  [
    "shell",
    "Run a bash script in the workspace. Every command in it is checked against the exec policy first; forbidden commands do not run.",
    obj(
      {
        command: s("the script"),
        timeout_sec: {
          type: "number",
          description: "seconds, at most the configured tool timeout",
        },
      },
      ["command"],
    ),
  ],
].map(([name, description, parameters]) => ({
  type: "function" as const,
  function: {
    name: name as string,
    description: description as string,
    parameters: parameters as Record<string, unknown>,
  },
}));

export class Toolbox {
  readonly #o: ToolboxOptions;
  readonly #manifest: Map<string, ManifestTool>;
  #askChain: Promise<unknown> = Promise.resolve();

  constructor(options: ToolboxOptions) {
    this.#o = options;
    this.#manifest = new Map(options.manifest.map((t) => [t.name, t]));
  }

  specs(): ToolSpec[] {
    return [
      ...BUILTIN_SPECS,
      ...this.#o.manifest.map((t) => ({
        type: "function" as const,
        function: { name: t.name, description: t.description, parameters: t.schema },
      })),
    ];
  }

  names(): string[] {
    return [...BUILTIN_NAMES, ...this.#o.manifest.map((t) => t.name)];
  }

  /** Runs one call. Never throws for the tool's own failures: they become tool errors for the model. */
  async call(tc: ToolCall): Promise<ToolOutcome> {
    const started = performance.now();
    const name = tc.function.name;
    const base: ToolRecord = {
      id: tc.id,
      name,
      argv: [name],
      decision: "builtin",
      durationMs: 0,
      stdoutBytes: 0,
      stderrBytes: 0,
      truncated: false,
    };
    const finish = (content: unknown, record: Partial<ToolRecord>): ToolOutcome => {
      const text = typeof content === "string" ? content : JSON.stringify(content);
      return {
        content: text,
        record: { ...base, ...record, durationMs: performance.now() - started },
      };
    };
    const failure = (code: string, message: string, record: Partial<ToolRecord> = {}) =>
      finish({ error: { code, message } }, { ...record, error: code });

    let args: Record<string, unknown>;
    try {
      const parsed: unknown =
        tc.function.arguments.trim() === "" ? {} : JSON.parse(tc.function.arguments);
      if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed))
        throw new Error("not an object");
      args = parsed as Record<string, unknown>;
    } catch {
      return failure("BAD_ARGUMENTS", "arguments are not a JSON object");
    }
    const root = this.#o.root;
    try {
      switch (name) {
        case "read_file":
          return finish(await readFileTool(root, args), { argv: [name, String(args["path"])] });
        case "list_dir":
          return finish(await listDirTool(root, args), {
            argv: [name, String(args["path"] ?? ".")],
          });
        case "search_files":
          return finish(await searchFilesTool(root, args), {
            argv: [name, String(args["query"]), String(args["path"] ?? ".")],
          });
        case "write_file":
          return finish(await writeFileTool(root, args), { argv: [name, String(args["path"])] });
        case "apply_patch": {
          const r = await applyPatchTool(root, args);
          return finish(r, { argv: [name, ...r.files.map((f) => f.path)] });
        }
        case "shell":
          return await this.#shell(args, finish, failure);
        default: {
          const tool = this.#manifest.get(name);
          if (tool === undefined) {
            return failure(
              "UNKNOWN_TOOL",
              `unknown tool: ${name}; available: ${this.names().join(", ")}`,
            );
          }
          return await this.#external(tool, tc.function.arguments, finish, failure);
        }
      }
    } catch (error) {
      if (error instanceof ToolFailure)
        return failure(error.code, error.message, { argv: [name, String(args["path"] ?? "")] });
      const e = error as NodeJS.ErrnoException;
      return failure(e.code ?? "TOOL_ERROR", e.message ?? String(error));
    }
  }

  /** allow → run; forbidden → never run; prompt → ask on a TTY, refuse unattended. */
  async #gate(v: GateVerdict, what: string): Promise<CallDecision> {
    if (v.decision === "allow") return "allow";
    if (v.decision === "forbidden") return "forbidden";
    const ask = this.#o.ask;
    if (ask === undefined) return "refused-unattended";
    // One question at a time, even when calls run in parallel.
    const answer = this.#askChain.then(() => ask(`${what}\n  ${v.reason}\nRun it? [y/N] `));
    this.#askChain = answer.catch(() => false);
    return (await answer) ? "approved" : "denied";
  }

  #refusal(
    decision: CallDecision,
    v: GateVerdict,
  ): { code: string; message: string; justification?: string } {
    if (decision === "forbidden") {
      const r: { code: string; message: string; justification?: string } = {
        code: "FORBIDDEN_BY_POLICY",
        message: `not run: ${v.reason}`,
      };
      if (v.justification !== undefined) r.justification = v.justification;
      return r;
    }
    if (decision === "refused-unattended") {
      return {
        code: "APPROVAL_REQUIRED",
        message: `not run: ${v.reason}; the exec policy asks for approval and agentcli runs unattended (no TTY), so it was refused. Use another command, or ask the user to allow it in a policy file.`,
      };
    }
    return { code: "DENIED_BY_USER", message: `not run: the user declined (${v.reason})` };
  }

  async #shell(
    args: Record<string, unknown>,
    finish: (c: unknown, r: Partial<ToolRecord>) => ToolOutcome,
    failure: (code: string, message: string, r?: Partial<ToolRecord>) => ToolOutcome,
  ): Promise<ToolOutcome> {
    const script = args["command"];
    if (typeof script !== "string" || script.trim() === "") {
      return failure("BAD_ARGUMENTS", "command: expected a non-empty string");
    }
    const argv = ["bash", "-c", script];
    const v = await this.#o.gate.checkScript(script);
    const decision = await this.#gate(v, `agentcli: the model wants to run:\n  ${script}`);
    const rec = { argv, decision, reason: v.reason };
    if (decision !== "allow" && decision !== "approved") {
      const r = this.#refusal(decision, v);
      return finish({ error: r }, { ...rec, error: r.code });
    }
    // Redirects into protected paths (.bottlekit/, .git/hooks, .git/config) would let a script
    // widen the next run's policy or plant a hook: refused even when the commands are allowed.
    for (const w of v.writes) {
      try {
        await resolveInWorkspace(this.#o.root, w, "write");
      } catch (error) {
        if (error instanceof PathRefused && error.code === "PROTECTED") {
          return finish(
            {
              error: {
                code: "PROTECTED",
                message: `not run: the script writes ${w}; ${error.message}`,
              },
            },
            { ...rec, decision: "forbidden", error: "PROTECTED" },
          );
        }
      }
    }
    let timeoutMs = this.#o.toolTimeoutMs;
    const asked = args["timeout_sec"];
    if (typeof asked === "number" && asked > 0) timeoutMs = Math.min(timeoutMs, asked * 1000);
    const env = pickEnv(this.#o.env, [...SHELL_BASE_ENV, ...this.#o.shellEnv]);
    const r = await runProcess(argv, {
      cwd: this.#o.root,
      env,
      stdin: "",
      timeoutMs,
      capBytes: this.#o.capBytes,
    });
    return finish(this.#processResult(r), {
      ...rec,
      ...this.#processRecord(r),
      envKeys: Object.keys(env).sort(),
    });
  }

  async #external(
    tool: ManifestTool,
    rawArgs: string,
    finish: (c: unknown, r: Partial<ToolRecord>) => ToolOutcome,
    failure: (code: string, message: string, r?: Partial<ToolRecord>) => ToolOutcome,
  ): Promise<ToolOutcome> {
    const v = await this.#o.gate.checkArgv(tool.command);
    const decision = await this.#gate(
      v,
      `agentcli: the model wants to run tool ${tool.name}:\n  ${tool.command.join(" ")}`,
    );
    const rec = { argv: tool.command, decision, reason: v.reason };
    if (decision !== "allow" && decision !== "approved") {
      const r = this.#refusal(decision, v);
      return finish({ error: r }, { ...rec, error: r.code });
    }
    // The tool's own timeout may be shorter than the flag's, never longer (operators lower it).
    const timeoutMs = Math.min(
      this.#o.toolTimeoutMs,
      (tool.timeoutSec ?? Number.POSITIVE_INFINITY) * 1000,
    );
    const env = pickEnv(this.#o.env, ["PATH", "HOME", ...tool.envPassthrough]);
    const r = await runProcess(tool.resolved, {
      cwd: this.#o.root,
      env,
      stdin: rawArgs.trim() === "" ? "{}" : rawArgs,
      timeoutMs,
      capBytes: this.#o.capBytes,
    });
    const record = { ...rec, ...this.#processRecord(r), envKeys: Object.keys(env).sort() };
    if (r.spawnError !== undefined)
      return failure("SPAWN_FAILED", `${tool.name}: ${r.spawnError}`, record);
    if (r.timedOut)
      return failure(
        "TIMEOUT",
        `${tool.name}: timed out after ${timeoutMs} ms; its process group was killed`,
        record,
      );
    if (r.exit !== 0) {
      // Tools print {"error":…} on stderr: pass it on as JSON rather than nesting the text.
      const parsed = jsonOrUndefined(r.stderr.trim());
      const message = parsed ?? (r.stderr.trim().slice(0, 2000) || `exit ${r.exit}`);
      return finish(
        { error: { code: "TOOL_FAILED", exit: r.exit, message } },
        { ...record, error: "TOOL_FAILED" },
      );
    }
    if (r.stdoutBytes > this.#o.capBytes) {
      return finish(
        {
          truncated: true,
          totalBytes: r.stdoutBytes,
          output: r.stdout,
          marker: `[truncated: ${r.stdoutBytes - this.#o.capBytes} more bytes]`,
        },
        record,
      );
    }
    return finish(r.stdout.trim() === "" ? "{}" : r.stdout.trim(), record);
  }

  #processResult(r: SpawnResult): unknown {
    if (r.spawnError !== undefined)
      return { error: { code: "SPAWN_FAILED", message: r.spawnError } };
    const cut = (text: string, total: number) =>
      total > this.#o.capBytes
        ? `${text}\n[truncated: ${total - this.#o.capBytes} more bytes]`
        : text;
    return {
      exit_code: r.exit,
      timed_out: r.timedOut,
      stdout: cut(r.stdout, r.stdoutBytes),
      stderr: cut(r.stderr, r.stderrBytes),
      ...(r.timedOut ? { note: "timed out; the whole process group was killed" } : {}),
    };
  }

  #processRecord(r: SpawnResult): Partial<ToolRecord> {
    return {
      exit: r.exit,
      timedOut: r.timedOut,
      stdoutBytes: r.stdoutBytes,
      stderrBytes: r.stderrBytes,
      truncated: r.truncated,
    };
  }
}

function jsonOrUndefined(text: string): unknown {
  if (!text.startsWith("{")) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
