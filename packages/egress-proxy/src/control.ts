import { chmodSync, mkdirSync, rmSync } from "node:fs";
import { connect, createServer, type Server, type Socket } from "node:net";
import { dirname, join } from "node:path";
import type { RouteInput } from "@bottlekit/egress-dlp";
import { EgressProxyError, isEgressProxyError } from "./errors.ts";
import type { ProxyHost } from "./host.ts";
import type {
  ControlApi,
  ControlRequest,
  ControlResponse,
  ProxyMetrics,
  RegisterResult,
  SessionSpec,
  SessionSummary,
  SessionTarget,
} from "./types.ts";

/**
 * The control socket: JSON lines over a unix socket (mode 0600 in `<home>/state/`). One request
 * per line, one response per line with the same `id`. Lines are capped at 1 MiB; a malformed line
 * gets an `E_INVALID_INPUT` answer and nothing changes.
 */

const MAX_LINE = 1024 * 1024;

type WithoutId<T> = T extends unknown ? Omit<T, "id"> : never;

export function defaultControlSocketPath(stateDir: string): string {
  return join(stateDir, "egress-proxy.sock");
}

export interface ControlServer {
  readonly socketPath: string;
  close(): Promise<void>;
}

function targetOf(value: unknown): SessionTarget {
  if (typeof value === "object" && value !== null) {
    const v = value as Record<string, unknown>;
    if (typeof v.sessionId === "string") return { sessionId: v.sessionId };
    if (typeof v.bottle === "string") return { bottle: v.bottle };
  }
  throw new EgressProxyError("E_INVALID_INPUT", "target: expected { sessionId } or { bottle }");
}

async function dispatch(host: ProxyHost, req: Record<string, unknown>): Promise<unknown> {
  switch (req.op) {
    case "register":
      return host.register(req.session as SessionSpec);
    case "unregister":
      if (typeof req.sessionId !== "string")
        throw new EgressProxyError("E_INVALID_INPUT", "sessionId: expected a string");
      return host.unregister(req.sessionId);
    case "list":
      return host.list();
    case "cutoff":
      return host.cutoff(targetOf(req.target));
    case "restore":
      return host.restore(targetOf(req.target));
    case "replaceRoutes":
      if (typeof req.sessionId !== "string")
        throw new EgressProxyError("E_INVALID_INPUT", "sessionId: expected a string");
      if (!Array.isArray(req.routes))
        throw new EgressProxyError("E_INVALID_INPUT", "routes: expected an array");
      await host.replaceRoutes(req.sessionId, req.routes as RouteInput[]);
      return null;
    case "metrics":
      return host.metrics();
    case "service":
      if (typeof req.service !== "string" || typeof req.call !== "string")
        throw new EgressProxyError("E_INVALID_INPUT", "service, call: expected strings");
      return host.service(req.service, req.call, req.args);
    default:
      throw new EgressProxyError(
        "E_INVALID_INPUT",
        `op: unknown operation ${JSON.stringify(req.op)}`,
        {
          hint: "one of register, unregister, list, cutoff, restore, replaceRoutes, metrics, service",
        },
      );
  }
}

function errorShape(error: unknown): { code: string; message: string; hint?: string } {
  if (isEgressProxyError(error)) {
    return {
      code: error.code,
      message: error.message,
      ...(error.hint ? { hint: error.hint } : {}),
    };
  }
  const e = error as { code?: unknown; message?: unknown; hint?: unknown };
  if (typeof e?.code === "string" && typeof e.message === "string") {
    return {
      code: e.code,
      message: e.message,
      ...(typeof e.hint === "string" ? { hint: e.hint } : {}),
    };
  }
  return { code: "E_INTERNAL", message: "internal error in the proxy host" };
}

/** Serves `host` on a unix socket (default `<state>/egress-proxy.sock`, mode 0600). */
export async function startControlServer(
  host: ProxyHost,
  socketPath = defaultControlSocketPath(host.stateDir),
): Promise<ControlServer> {
  mkdirSync(dirname(socketPath), { recursive: true, mode: 0o700 });
  rmSync(socketPath, { force: true });
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.on("error", () => socket.destroy());
    let buffer = "";
    socket.setEncoding("utf8");
    socket.on("data", (chunk: string) => {
      buffer += chunk;
      if (buffer.length > MAX_LINE && !buffer.includes("\n")) {
        socket.end(
          `${JSON.stringify({ id: 0, ok: false, error: { code: "E_INVALID_INPUT", message: "line longer than 1 MiB" } })}\n`,
        );
        return;
      }
      let nl = buffer.indexOf("\n");
      while (nl !== -1) {
        const line = buffer.slice(0, nl).trim();
        buffer = buffer.slice(nl + 1);
        nl = buffer.indexOf("\n");
        if (line.length === 0) continue;
        let req: Record<string, unknown>;
        try {
          const parsed = JSON.parse(line) as unknown;
          if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed))
            throw new Error("not an object");
          req = parsed as Record<string, unknown>;
        } catch {
          const res: ControlResponse = {
            id: 0,
            ok: false,
            error: {
              code: "E_INVALID_INPUT",
              message: "line 1: not a JSON object",
              hint: 'send {"id":1,"op":"list"}',
            },
          };
          socket.write(`${JSON.stringify(res)}\n`);
          continue;
        }
        const id = typeof req.id === "number" ? req.id : 0;
        dispatch(host, req).then(
          (result) => {
            const res: ControlResponse = { id, ok: true, result: result ?? null };
            if (!socket.destroyed) socket.write(`${JSON.stringify(res)}\n`);
          },
          (error: unknown) => {
            const res: ControlResponse = { id, ok: false, error: errorShape(error) };
            if (!socket.destroyed) socket.write(`${JSON.stringify(res)}\n`);
          },
        );
      }
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(socketPath, () => {
      server.off("error", reject);
      resolve();
    });
  });
  chmodSync(socketPath, 0o600);
  return {
    socketPath,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => {
          rmSync(socketPath, { force: true });
          resolve();
        });
      }),
  };
}

export interface ControlClient extends ControlApi {
  close(): void;
}

/** Connects to a control socket. Calls are pipelined on one connection. */
export function connectControl(socketPath: string): Promise<ControlClient> {
  return new Promise((resolve, reject) => {
    const socket = connect(socketPath);
    let nextId = 1;
    const waiting = new Map<
      number,
      { resolve: (v: unknown) => void; reject: (e: Error) => void }
    >();
    let buffer = "";
    socket.setEncoding("utf8");
    const failAll = (error: Error) => {
      for (const w of waiting.values()) w.reject(error);
      waiting.clear();
    };
    socket.on("data", (chunk: string) => {
      buffer += chunk;
      let nl = buffer.indexOf("\n");
      while (nl !== -1) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        nl = buffer.indexOf("\n");
        let res: ControlResponse;
        try {
          res = JSON.parse(line) as ControlResponse;
        } catch {
          failAll(new EgressProxyError("E_CONTROL", "the control socket sent a malformed line"));
          socket.destroy();
          return;
        }
        const w = waiting.get(res.id);
        if (!w) continue;
        waiting.delete(res.id);
        if (res.ok) w.resolve(res.result);
        else {
          const code = res.error.code as EgressProxyError["code"];
          w.reject(
            new EgressProxyError(
              code,
              res.error.message,
              res.error.hint ? { hint: res.error.hint } : {},
            ),
          );
        }
      }
    });
    socket.once("connect", () => {
      const call = <T>(body: WithoutId<ControlRequest>): Promise<T> =>
        new Promise<T>((res, rej) => {
          if (socket.destroyed) {
            rej(new EgressProxyError("E_CONTROL", "the control connection is closed"));
            return;
          }
          const id = nextId++;
          waiting.set(id, { resolve: res as (v: unknown) => void, reject: rej });
          socket.write(`${JSON.stringify({ id, ...body })}\n`);
        });
      resolve({
        register: (session) => call<RegisterResult>({ op: "register", session }),
        unregister: (sessionId) => call<boolean>({ op: "unregister", sessionId }),
        list: () => call<SessionSummary[]>({ op: "list" }),
        cutoff: (target) => call<number>({ op: "cutoff", target }),
        restore: (target) => call<number>({ op: "restore", target }),
        replaceRoutes: async (sessionId, routes) => {
          await call<null>({ op: "replaceRoutes", sessionId, routes });
        },
        metrics: () => call<ProxyMetrics>({ op: "metrics" }),
        service: (service, name, args) =>
          call<unknown>({
            op: "service",
            service,
            call: name,
            ...(args === undefined ? {} : { args }),
          }),
        close: () => socket.end(),
      });
    });
    socket.once("error", (error) => {
      const e = new EgressProxyError("E_CONTROL", `cannot reach the control socket ${socketPath}`, {
        cause: error,
        hint: "is the controller (bottle-gateway up) running?",
      });
      failAll(e);
      reject(e);
    });
    socket.on("close", () =>
      failAll(new EgressProxyError("E_CONTROL", "the control connection closed")),
    );
  });
}
