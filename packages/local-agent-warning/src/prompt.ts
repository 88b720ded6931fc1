import { createInterface } from "node:readline/promises";
import type { Readable, Writable } from "node:stream";
import type { Env } from "./env.ts";
import { isCi, shouldUseColor } from "./env.ts";
import {
  acknowledgePending,
  evaluateLocalAgentGate,
  type GateOptions,
  type GateResult,
} from "./gate.ts";
import { type RenderOptions, renderLocalAgentGate, renderLocalAgentWarning } from "./render.ts";

export interface PromptStreams {
  /** Where answers come from; must be a TTY, or the question is never asked. */
  input: Readable & { isTTY?: boolean };
  /** Where the panel and the question go (stderr in apps: stdout is data). */
  output: Writable & { isTTY?: boolean };
}

export interface AskOptions extends PromptStreams, Omit<RenderOptions, "color"> {
  color?: boolean;
  env?: Env;
  home?: string;
  now?: () => Date;
}

/** True for `y` / `yes` (any case); everything else, including an empty line, is no. */
export function isYes(answer: string): boolean {
  const a = answer.trim().toLowerCase();
  return a === "y" || a === "yes";
}

/**
 * Shows the warning panel for a `warn` result and asks once whether to acknowledge. Yes writes
 * the ack for the pending interfaces and returns true; anything else returns false. Never asks
 * when `input` is not a TTY or `CI` is set (returns false without reading).
 */
export async function askToAcknowledge(result: GateResult, options: AskOptions): Promise<boolean> {
  const env = options.env ?? process.env;
  if (result.pending.length === 0) return true;
  if (options.input.isTTY !== true || isCi(env)) return false;
  const color = options.color ?? shouldUseColor(options.output, env);
  options.output.write(renderLocalAgentWarning(result.pending, { ...options, color }));
  const rl = createInterface({ input: options.input, output: options.output, terminal: false });
  let answer = "";
  try {
    answer = await new Promise<string>((resolve) => {
      // End of input without an answer is a no. Deferred, so an answer read just before the
      // input ended still wins.
      rl.once("close", () => setImmediate(() => resolve("")));
      void rl.question("Acknowledge and continue? [y/N] ").then(resolve, () => resolve(""));
    });
  } finally {
    rl.close();
  }
  if (!isYes(answer)) return false;
  await acknowledgePending(result, {
    env,
    ...(options.home !== undefined ? { home: options.home } : {}),
    ...(options.now ? { now: options.now } : {}),
  });
  return true;
}

export interface RunGateOptions extends GateOptions, Omit<RenderOptions, "color"> {
  /** Answers come from here (default process.stdin). */
  stdin?: Readable & { isTTY?: boolean };
  /** Used only to decide whether the run is interactive (default process.stdout). */
  stdout?: { isTTY?: boolean };
  /** Human-readable text goes here (default process.stderr). */
  stderr?: Writable & { isTTY?: boolean };
  /** Colour the stderr text; default from `shouldUseColor(stderr, env)`. */
  color?: boolean;
}

export interface RunGateOutcome {
  /** Whether the app may go on starting the local-agent providers. */
  proceed: boolean;
  /** 0 to go on; 3 (policy violation) when refused or declined. */
  exitCode: 0 | 3;
  /** The decision, updated to `acknowledged` when the operator said yes. */
  result: GateResult;
  /** `declined` when asked and answered no. */
  outcome:
    | "none"
    | "acknowledged"
    | "already-acknowledged"
    | "answered-yes"
    | "declined"
    | "refused";
}

/**
 * The whole gate for an app's `up` / `run`: decide, render to stderr (only because the app asks
 * for it by calling this), ask once on an interactive terminal, and report whether to proceed.
 * Never exits the process: the app maps `exitCode` to its own exit. Under `--json` the app
 * prints `gateResultJson(outcome.result)` on stdout itself; this only ever writes to stderr.
 * Throws LocalAgentWarningError (E_ACK_WRITE, E_ACK_LOCKED) when an acknowledgement cannot be
 * recorded.
 */
export async function runLocalAgentGate(options: RunGateOptions): Promise<RunGateOutcome> {
  const env = options.env ?? process.env;
  const stdin = options.stdin ?? process.stdin;
  const stdout = options.stdout ?? process.stdout;
  const stderr = options.stderr ?? process.stderr;
  const result = await evaluateLocalAgentGate({ ...options, env, streams: { stdin, stdout } });
  const color = options.color ?? shouldUseColor(stderr, env);
  const render = { ...options, color };
  switch (result.action) {
    case "none":
      return { proceed: true, exitCode: 0, result, outcome: "none" };
    case "acknowledged":
    case "already-acknowledged":
      stderr.write(renderLocalAgentGate(result, render));
      return { proceed: true, exitCode: 0, result, outcome: result.action };
    case "refuse":
      stderr.write(renderLocalAgentGate(result, render));
      return { proceed: false, exitCode: 3, result, outcome: "refused" };
    case "warn": {
      const yes = await askToAcknowledge(result, {
        ...render,
        input: stdin,
        output: stderr,
        env,
        ...(options.home !== undefined ? { home: options.home } : {}),
        ...(options.now ? { now: options.now } : {}),
      });
      if (!yes) {
        stderr.write("Not acknowledged: local-agent providers were not started.\n");
        return { proceed: false, exitCode: 3, result, outcome: "declined" };
      }
      const acknowledged = result.pending.map((p) => p.interface);
      return {
        proceed: true,
        exitCode: 0,
        result: { ...result, action: "acknowledged", pending: [], acknowledged },
        outcome: "answered-yes",
      };
    }
  }
}
