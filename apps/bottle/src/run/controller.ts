import fs from "node:fs";
import path from "node:path";
import type { ControlApi, RegisterResult, SessionSpec } from "@bottlekit/egress-proxy";

/** How `bottle run` reached the host controller for this session. */
export interface ControllerHandle {
  mode: "socket" | "in-process";
  api: ControlApi;
  registration: RegisterResult;
  /** Unregisters the session and closes what this run opened. */
  close(): Promise<void>;
}

/**
 * Registers the session with the host controller over its control socket
 * (`<home>/state/egress-proxy.sock`); when none runs, starts a proxy host in this process for
 * the run (the embedded default).
 */
export async function openController(
  home: string,
  session: SessionSpec,
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
      const registration = await c.register(session);
      return {
        mode: "socket",
        api: c,
        registration,
        async close() {
          try {
            await c.unregister(registration.sessionId);
          } finally {
            c.close();
          }
        },
      };
    }
  }
  const host = proxy.createProxyHost({ home });
  const registration = await host.register(session);
  return {
    mode: "in-process",
    api: host,
    registration,
    async close() {
      try {
        await host.unregister(registration.sessionId);
      } finally {
        await host.close();
      }
    },
  };
}
