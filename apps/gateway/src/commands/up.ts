import { bottlekitHome } from "@bottlekit/budget-store";
import {
  acknowledgePending,
  evaluateLocalAgentGate,
  gateResultJson,
  isYes,
  renderLocalAgentGate,
  revokeAck,
  shouldUseColor,
  type TtyLike,
} from "@bottlekit/local-agent-warning";
import { type CliIo, EXIT, exitCodeOf } from "../cli.ts";
import { resolveConfig, startGateway } from "../compose.ts";
import { isGatewayError } from "../errors.ts";
import type { GatewayLogEvent } from "../server.ts";

export interface UpOptions {
  config?: string;
  listen?: string;
  store?: string;
  ackLocalAgents?: boolean;
  /** Forget every local-agent acknowledgement first, so the gate asks (or refuses) again. */
  revokeLocalAgents?: boolean;
  jsonLogs?: boolean;
  /** The proxy door (egress-proxy host + control socket); default on, `--no-proxy-door` turns it off. */
  proxyDoor?: boolean;
}

/** The commands the local-agent panel names: both are flags of `up`. */
const PANEL = {
  ackCommand: "bottle-gateway up --ack-local-agents",
  revokeCommand: "bottle-gateway up --revoke-local-agents",
};

/** Asks one yes/no question on the terminal; only "y"/"yes" is yes. */
async function askYesNo(question: string, io: CliIo): Promise<boolean> {
  if (io.ask) return io.ask(question);
  const { createInterface } = await import("node:readline/promises");
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    return isYes(await rl.question(question));
  } finally {
    rl.close();
  }
}

/** Formats one log event for stderr: JSON lines with --json-logs, else `level event k=v …`. */
export function formatLog(e: GatewayLogEvent, json: boolean): string {
  const record = { time: new Date().toISOString(), ...e };
  if (json) return `${JSON.stringify(record)}\n`;
  const { level, event, ...rest } = e;
  const fields = Object.entries(rest)
    .map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`)
    .join(" ");
  return `${level} ${event}${fields ? ` ${fields}` : ""}\n`;
}

/**
 * `up`: validate the config, pass the local-agent gate, open the store, listen, and serve until
 * SIGTERM/SIGINT, then drain in-flight calls (streams included) and exit 0.
 */
export async function up(opts: UpOptions, io: CliIo): Promise<number> {
  const json = opts.jsonLogs === true;
  const log = (e: GatewayLogEvent) => io.stderr.write(formatLog(e, json));
  const v = await resolveConfig({
    ...(opts.config !== undefined ? { configFile: opts.config } : {}),
    env: io.env,
  });
  if (v.value === undefined) {
    if (json) log({ level: "error", event: "config.invalid", errors: v.errors });
    else for (const e of v.errors) io.stderr.write(`error: ${e}\n`);
    return EXIT.usage;
  }
  for (const w of v.warnings) log({ level: "warn", event: "config.warning", message: w });

  if (opts.revokeLocalAgents) {
    const revoked = await revokeAck(undefined, { env: io.env, home: bottlekitHome(io.env) });
    io.stderr.write(
      revoked.length
        ? `revoked the local-agent acknowledgement of ${revoked.join(", ")}\n`
        : "no local-agent acknowledgement to revoke\n",
    );
  }
  const gate = await evaluateLocalAgentGate({
    config: v.registryInput,
    ackFlag: opts.ackLocalAgents === true,
    env: io.env,
    home: bottlekitHome(io.env),
    interactive: io.interactive === true,
  });
  if (gate.action === "refuse") {
    if (json) log({ level: "error", event: "local_agent.refused", ...gateResultJson(gate) });
    else {
      io.stderr.write(
        renderLocalAgentGate(gate, {
          color: shouldUseColor(io.stderr as TtyLike, io.env),
          ...PANEL,
        }),
      );
      io.stderr.write("\n");
    }
    return EXIT.policy;
  }
  if (gate.action !== "none") {
    if (json)
      log({
        level: gate.action === "warn" ? "warn" : "info",
        event: `local_agent.${gate.action}`,
        ...gateResultJson(gate),
      });
    else
      io.stderr.write(
        `${renderLocalAgentGate(gate, { color: shouldUseColor(io.stderr as TtyLike, io.env), ...PANEL })}\n`,
      );
    // An attended run asks once, as documented: yes records the acknowledgement, anything else
    // stops the run with the policy exit code.
    if (gate.action === "warn") {
      const yes = await askYesNo("Acknowledge these local agents and start? [y/N] ", io);
      if (!yes) {
        io.stderr.write("not acknowledged; the gateway did not start\n");
        return EXIT.policy;
      }
      await acknowledgePending(gate, { env: io.env, home: bottlekitHome(io.env) });
      io.stderr.write("acknowledged; later runs stay quiet until the configuration changes\n");
    }
  }

  let running: Awaited<ReturnType<typeof startGateway>>;
  try {
    running = await startGateway({
      ...(opts.config !== undefined ? { configFile: opts.config } : {}),
      ...(opts.listen !== undefined ? { listen: opts.listen } : {}),
      ...(opts.store !== undefined ? { store: opts.store } : {}),
      env: io.env,
      log,
      proxyDoor: opts.proxyDoor !== false,
    });
  } catch (error) {
    if (isGatewayError(error)) {
      if (json)
        log({
          level: "error",
          event: "start.refused",
          code: error.code,
          message: error.message,
          hint: error.hint,
        });
      else
        io.stderr.write(
          `bottle-gateway: ${error.message}\n${error.hint ? `hint: ${error.hint}\n` : ""}`,
        );
      return exitCodeOf(error.code);
    }
    throw error;
  }
  log({
    level: "info",
    event: "listening",
    url: running.url,
    providers: [...new Set(running.providers)],
    store: running.store.backend,
    ...(running.proxy?.controlSocketPath !== undefined
      ? { controlSocket: running.proxy.controlSocketPath }
      : {}),
  });
  const signal = await (io.stopSignal ?? new Promise<string>(() => {}));
  log({ level: "info", event: "draining", signal, inFlight: running.gateway.inFlight() });
  await running.close();
  log({ level: "info", event: "stopped" });
  return signal === "SIGINT" ? EXIT.interrupted : EXIT.ok;
}
