import fs from "node:fs";
import path from "node:path";
import type { Store } from "@bottlekit/budget-store";
import type { ControlApi, RegisterResult, SessionSpec } from "@bottlekit/egress-proxy";
import { BottleError } from "../errors.ts";

/** How `bottle run` reached the host controller for this session. */
export interface ControllerHandle {
  mode: "socket" | "in-process";
  api: ControlApi;
  registration: RegisterResult;
  /**
   * Resolves once the controller serves everything an agent may use (an embedded one loads its
   * approvals service after the session is registered, while the sandbox runs its probe); rejects
   * when it cannot. The agent must not start before.
   */
  ready(): Promise<void>;
  /**
   * The embedded controller's budget store, the one its gateway enforces budgets from (a gateway
   * config may name another than the home's): the run records its budgets and checks its cutoff
   * there, without opening the file a second time. The controller closes it in `close()`.
   * Undefined with a host controller.
   */
  store?: Store;
  /** Unregisters the session and closes what this run opened. */
  close(): Promise<void>;
}

export interface ControllerOptions {
  /** The host environment (provider keys for the embedded gateway, `BOTTLEKIT_STORE`, …). */
  env: NodeJS.ProcessEnv;
  /** Store URL of the home (`BOTTLEKIT_STORE`, else the embedded SQLite file). */
  store?: string;
  /**
   * Gateway config for the embedded controller (`bottle-gateway up --config` format); default:
   * `BOTTLEKIT_GATEWAY_CONFIG`, else zero-config (every provider whose key is set).
   */
  gatewayConfig?: string;
}

/**
 * Registers the session with the host controller over its control socket
 * (`<home>/state/egress-proxy.sock`, served by `bottle-gateway up`); when none runs, starts the
 * controller in this process for the run (the embedded default): the gateway with its proxy
 * door, so the agent's calls to its provider's API host are metered into the home's store
 * against the bottle's budgets, with the real key injected there.
 */
export async function openController(
  home: string,
  session: SessionSpec,
  options: ControllerOptions = { env: process.env },
): Promise<ControllerHandle> {
  const proxy = await import("@bottlekit/egress-proxy");
  const socketPath = proxy.defaultControlSocketPath(path.join(home, "state"));
  if (fs.existsSync(socketPath)) {
    let client: Awaited<ReturnType<typeof proxy.connectControl>> | undefined;
    try {
      client = await proxy.connectControl(socketPath);
    } catch {
      client = undefined; // a stale socket: no controller behind it
    }
    if (client) {
      const c = client;
      let registration: RegisterResult;
      try {
        registration = await c.register(session);
      } catch (error) {
        c.close(); // an open control connection would keep this process alive
        throw error;
      }
      return {
        mode: "socket",
        api: c,
        registration,
        ready: () => Promise.resolve(),
        async close() {
          try {
            await c.unregister(registration.sessionId);
          } finally {
            c.close();
          }
        },
      };
    }
    // Nothing answers there: the embedded controller replaces it with its own control socket.
  }
  const { startGateway } = await import("@bottlekit/gateway");
  const configFile =
    options.gatewayConfig ?? (options.env["BOTTLEKIT_GATEWAY_CONFIG"] || undefined);
  const gateway = await startGateway({
    proxyDoor: true,
    // This controller ends with the run: another run must not register with it.
    proxyControlSocket: false,
    // Its approvals service and HTTP client load after the session is registered (see `ready`).
    lazyStart: true,
    listen: "127.0.0.1:0",
    // The agent comes through the proxy door. The API door listens on loopback, where a gateway
    // without keys would take keyless calls with the host's provider keys: no other local process
    // (or user) may do that while the run lasts.
    keylessLoopback: false,
    env: { ...options.env, BOTTLEKIT_HOME: home },
    ...(options.store === undefined ? {} : { store: options.store }),
    ...(configFile === undefined ? {} : { configFile }),
  });
  const door = gateway.proxy;
  if (door === undefined) {
    await gateway.close(0);
    throw new BottleError("E_INTERNAL", "the embedded gateway started without its proxy door");
  }
  const host = door.host;
  let registration: RegisterResult;
  try {
    registration = await host.register(session);
  } catch (error) {
    await gateway.close(0);
    throw error;
  }
  return {
    mode: "in-process",
    api: host,
    registration,
    // the store this gateway enforces budgets from: $BOTTLEKIT_STORE, else its config's, else
    // the home's; the run records its budgets and checks its cutoff there
    store: gateway.store,
    ready: () => gateway.ready(),
    async close() {
      try {
        await host.unregister(registration.sessionId);
      } finally {
        // The run is over: nothing of this session is left in flight worth draining.
        await gateway.close(0);
      }
    },
  };
}
