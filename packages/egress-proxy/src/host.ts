import { chmodSync, mkdirSync, rmSync } from "node:fs";
import type { Server } from "node:http";
import { homedir } from "node:os";
import { join } from "node:path";
import type { RouteInput } from "@bottlekit/egress-dlp";
import { Auditor } from "./audit.ts";
import { assertBottleName, BottleCa } from "./ca.ts";
import { EgressProxyError } from "./errors.ts";
import { createInterceptServer, createListener } from "./listener.ts";
import { locateRelay, NATIVE_RELAY_AFTER_BYTES, type NativeRelayConfig } from "./native-relay.ts";
import {
  type PipelineConfig,
  type ServiceRegistry,
  type Target,
  upstreamCaContext,
} from "./pipeline.ts";
import { loadCredentials, Session, validateSessionRoutes } from "./session.ts";
import type {
  ControlApi,
  CredentialSpec,
  ProxyHostOptions,
  ProxyMetrics,
  ProxyService,
  RegisterResult,
  SessionDetails,
  SessionSpec,
  SessionSummary,
  SessionTarget,
} from "./types.ts";

/**
 * The proxy host: owns the bottle sessions, their listeners and CAs, the audit sink and the
 * counters. The control socket (`startControlServer`) and the gateway call the same methods.
 */
export interface ProxyHost extends ControlApi {
  /** `<home>/state`. */
  readonly stateDir: string;
  /** The bottle's CA (created on first use): certificate path and bundle path. */
  ca(bottle: string): Promise<{ certPath: string; bundlePath: string; certPem: string }>;
  /** Synchronous counters for `/metrics`. */
  metricsNow(): ProxyMetrics;
  /** Closes every session and listener. */
  close(): Promise<void>;
  /**
   * Adds a service answering reserved hosts (see `ProxyService`). A host or name already taken
   * is refused (`E_INVALID_INPUT`). Sessions already open are announced to it.
   */
  addService(service: ProxyService): void;
  /** A live session's routes and credential bindings (no values); undefined when unknown. */
  session(sessionId: string): SessionDetails | undefined;
  /**
   * Replaces a live session's credentials (each value read from the controller's environment as
   * at register). Fails closed and changes nothing when a value is missing or a spec is invalid.
   */
  setCredentials(sessionId: string, credentials: CredentialSpec[]): Promise<void>;
  /**
   * Builds the DLP scanners of every live session that has not built them yet (see
   * `ProxyHostOptions.deferSessionScanners`). Throws the first session's error when one cannot
   * be built; that session keeps refusing its requests.
   */
  prepareSessions(): void;
}

const SERVICE_NAME = /^[a-z][a-z0-9-]*$/;

const CA_ENV = [
  "NODE_EXTRA_CA_CERTS",
  "SSL_CERT_FILE",
  "REQUESTS_CA_BUNDLE",
  "CURL_CA_BUNDLE",
  "CODEX_CA_CERTIFICATE",
] as const;

/** Longest unix socket path that binds on Linux and macOS alike. */
const MAX_SOCKET_PATH = 103;

export function defaultHome(env: NodeJS.ProcessEnv = process.env): string {
  return env.BOTTLEKIT_HOME && env.BOTTLEKIT_HOME.length > 0
    ? env.BOTTLEKIT_HOME
    : join(homedir(), ".bottlekit");
}

const defaultSource = (spec: CredentialSpec): string | undefined =>
  process.env[spec.hostEnv ?? spec.name];

function listen(server: Server, where: string | { host: string; port: number }): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    const done = () => {
      server.off("error", reject);
      resolve();
    };
    if (typeof where === "string") server.listen(where, done);
    else server.listen(where.port, where.host, done);
  });
}

function closeServer(server: { close(cb: () => void): unknown } | undefined): Promise<void> {
  if (!server) return Promise.resolve();
  return new Promise((resolve) => server.close(() => resolve()));
}

function validateSpec(spec: unknown): SessionSpec {
  if (typeof spec !== "object" || spec === null) {
    throw new EgressProxyError(
      "E_INVALID_INPUT",
      "session: expected an object { bottle, routes, ... }",
    );
  }
  const s = spec as Record<string, unknown>;
  const known = new Set(["bottle", "agent", "routes", "credentials", "llmHosts", "budgets", "tcp"]);
  for (const k of Object.keys(s)) {
    if (!known.has(k)) {
      throw new EgressProxyError("E_INVALID_INPUT", `session.${k}: unknown key`, {
        hint: `known keys: ${[...known].join(", ")}`,
      });
    }
  }
  if (typeof s.bottle !== "string")
    throw new EgressProxyError("E_INVALID_INPUT", "session.bottle: expected a string");
  assertBottleName(s.bottle);
  if (s.agent !== undefined && typeof s.agent !== "string") {
    throw new EgressProxyError("E_INVALID_INPUT", "session.agent: expected a string");
  }
  if (!Array.isArray(s.routes))
    throw new EgressProxyError("E_INVALID_INPUT", "session.routes: expected an array of routes");
  if (s.credentials !== undefined && !Array.isArray(s.credentials)) {
    throw new EgressProxyError("E_INVALID_INPUT", "session.credentials: expected an array");
  }
  (s.credentials as unknown[] | undefined)?.forEach((c, i) => {
    if (typeof c !== "object" || c === null || typeof (c as { name?: unknown }).name !== "string") {
      throw new EgressProxyError(
        "E_INVALID_INPUT",
        `session.credentials[${i}]: expected { name, hostEnv?, hosts?, shaped? }`,
      );
    }
    const hosts = (c as { hosts?: unknown }).hosts;
    if (
      hosts !== undefined &&
      (!Array.isArray(hosts) || hosts.some((h) => typeof h !== "string"))
    ) {
      throw new EgressProxyError(
        "E_INVALID_INPUT",
        `session.credentials[${i}].hosts: expected an array of host names`,
      );
    }
  });
  if (
    s.llmHosts !== undefined &&
    (!Array.isArray(s.llmHosts) || s.llmHosts.some((h) => typeof h !== "string"))
  ) {
    throw new EgressProxyError(
      "E_INVALID_INPUT",
      "session.llmHosts: expected an array of host names",
    );
  }
  if (s.tcp !== undefined && typeof s.tcp !== "boolean")
    throw new EgressProxyError("E_INVALID_INPUT", "session.tcp: expected a boolean");
  return s as unknown as SessionSpec;
}

function nativeRelayConfig(option: ProxyHostOptions["nativeRelay"]): NativeRelayConfig {
  if (option === false) return { binary: undefined, afterBytes: 0, handedOff: 0 };
  const afterBytes = option?.afterBytes ?? NATIVE_RELAY_AFTER_BYTES;
  if (!Number.isSafeInteger(afterBytes) || afterBytes < 0) {
    throw new EgressProxyError(
      "E_INVALID_INPUT",
      `nativeRelay.afterBytes: expected a whole number of bytes >= 0, got ${String(afterBytes)}`,
    );
  }
  return { binary: locateRelay(option?.binary), afterBytes, handedOff: 0 };
}

export function createProxyHost(options: ProxyHostOptions = {}): ProxyHost {
  const home = options.home ?? defaultHome();
  const stateDir = join(home, "state");
  const auditor = new Auditor(options.onAudit);
  const services: ServiceRegistry = { byHost: new Map(), byName: new Map() };
  const cfg: PipelineConfig = {
    auditor,
    services,
    llmHandler: options.llmHandler,
    resolve: options.resolve,
    upstreamCa: upstreamCaContext(options.upstreamCa),
    maxBodyBytes: options.maxBodyBytes ?? 8 * 1024 * 1024,
    maxResponseScanBytes: options.maxResponseScanBytes ?? 8 * 1024 * 1024,
    handshakeTimeoutMs: options.handshakeTimeoutMs ?? 10_000,
    headersTimeoutMs: options.headersTimeoutMs ?? 60_000,
    maxConnectionsPerSession: options.maxConnectionsPerSession ?? 1024,
    maxRequestsInFlight: options.maxRequestsInFlight ?? 256,
    maxBufferedBodyBytes:
      options.maxBufferedBodyBytes ??
      Math.max(64 * 1024 * 1024, 2 * (options.maxBodyBytes ?? 8 * 1024 * 1024)),
    nativeRelay: nativeRelayConfig(options.nativeRelay),
  };
  const source = options.credentialSource ?? defaultSource;
  const socketMode = options.proxySocketMode ?? 0o600;
  const sessions = new Map<string, Session>();
  // services given as options are added once the host's state exists (below)
  const cas = new Map<string, Promise<BottleCa>>();
  let closed = false;

  function details(s: Session): SessionDetails {
    return {
      sessionId: s.id,
      bottle: s.bottle,
      ...(s.agent === undefined ? {} : { agent: s.agent }),
      routes: structuredClone(s.routes),
      credentials: s.credentialSpecs.map((c) => ({
        name: c.name,
        ...(c.hostEnv === undefined ? {} : { hostEnv: c.hostEnv }),
        hosts: [...(c.hosts ?? [])],
        ...(c.shaped === undefined ? {} : { shaped: c.shaped }),
      })),
      cutoff: s.cutoff,
    };
  }

  function announce(fn: (service: ProxyService) => void): void {
    for (const service of services.byName.values()) {
      try {
        fn(service);
      } catch {
        // a service's hook must not break the proxy
      }
    }
  }

  function addService(service: ProxyService): void {
    if (!SERVICE_NAME.test(service.name) || services.byName.has(service.name)) {
      throw new EgressProxyError(
        "E_INVALID_INPUT",
        `service.name: ${JSON.stringify(service.name)} is taken or not [a-z][a-z0-9-]*`,
      );
    }
    const hosts = service.hosts.map((h) => h.toLowerCase());
    for (const h of hosts) {
      if (services.byHost.has(h)) {
        throw new EgressProxyError("E_INVALID_INPUT", `service.hosts: ${h} is already reserved`);
      }
    }
    services.byName.set(service.name, service);
    for (const h of hosts) services.byHost.set(h, service);
    for (const s of sessions.values()) {
      try {
        service.sessionOpened?.(details(s));
      } catch {
        // ignored, as above
      }
    }
  }

  function caFor(bottle: string): Promise<BottleCa> {
    assertBottleName(bottle);
    let p = cas.get(bottle);
    if (!p) {
      p = BottleCa.open(stateDir, bottle);
      p.catch(() => cas.delete(bottle));
      cas.set(bottle, p);
    }
    return p;
  }

  function targets(target: SessionTarget): Session[] {
    if ("sessionId" in target) {
      const s = sessions.get(target.sessionId);
      if (!s) {
        throw new EgressProxyError("E_UNKNOWN_SESSION", `no session ${target.sessionId}`, {
          hint: "list the sessions to see the live ones",
        });
      }
      return [s];
    }
    return [...sessions.values()].filter((s) => s.bottle === target.bottle);
  }

  function dropConnections(session: Session): void {
    for (const [socket, conn] of session.conns) {
      if (conn.host !== "") {
        auditor.emit({
          sessionId: session.id,
          bottle: session.bottle,
          ...(session.agent === undefined ? {} : { agent: session.agent }),
          host: conn.host,
          port: conn.port,
          method: conn.method,
          path: "",
          ...(conn.route === undefined ? {} : { route: conn.route }),
          decision: "closed_by_cutoff",
          bytesIn: 0,
          bytesOut: 0,
        });
      }
      socket.destroy();
    }
    for (const socket of session.upstream) socket.destroy();
  }

  async function register(input: SessionSpec): Promise<RegisterResult> {
    if (closed) throw new EgressProxyError("E_CLOSED", "the proxy host is closed");
    const spec = validateSpec(input);
    const routes = validateSessionRoutes(spec.routes, "session.routes");
    const credentials = loadCredentials(spec.credentials ?? [], routes, source);
    const ca = await caFor(spec.bottle);
    const session = new Session({
      spec,
      routes,
      credentials,
      ca,
      deferScanners: options.deferSessionScanners === true,
    });
    const dir = join(stateDir, "egress-proxy", "sessions");
    // traverse-only, so `proxySocketMode` decides who may connect (default: the owner only)
    mkdirSync(dir, { recursive: true, mode: 0o711 });
    chmodSync(dir, 0o711);
    const socketPath = join(dir, `${session.id}.sock`);
    if (Buffer.byteLength(socketPath) > MAX_SOCKET_PATH) {
      throw new EgressProxyError(
        "E_INVALID_INPUT",
        `${socketPath}: unix socket path longer than ${MAX_SOCKET_PATH} bytes`,
        {
          hint: "use a shorter BOTTLEKIT_HOME",
        },
      );
    }
    const targetsMap = new WeakMap<object, Target>();
    // made by the session's first intercepted connection (the probe's CONNECT is refused and the
    // rest may all be tunnels): one per session, shared by its listeners
    let interceptServer: Server | undefined;
    const intercepting = (): Server => {
      interceptServer ??= createInterceptServer(cfg, session, targetsMap);
      return interceptServer;
    };
    const unix = createListener(cfg, session, intercepting, targetsMap, undefined);
    // stops the intercept server's request deadline checks once the session's listener is gone
    unix.once("close", () => interceptServer?.close(() => undefined));
    rmSync(socketPath, { force: true });
    await listen(unix, socketPath);
    chmodSync(socketPath, socketMode);
    session.unix = unix;
    session.proxySocketPath = socketPath;
    let tcp: RegisterResult["tcp"];
    if (spec.tcp) {
      const token = Session.newToken();
      const server = createListener(cfg, session, intercepting, targetsMap, token);
      try {
        await listen(server, { host: "127.0.0.1", port: 0 });
      } catch (error) {
        await closeServer(unix);
        rmSync(socketPath, { force: true });
        throw new EgressProxyError("E_INTERNAL", "cannot listen on 127.0.0.1", { cause: error });
      }
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      session.tcp = { server, port, token };
      tcp = { host: "127.0.0.1", port, token };
    }
    sessions.set(session.id, session);
    announce((svc) => svc.sessionOpened?.(details(session)));
    const env: Record<string, string> = { ...credentials.env };
    for (const k of CA_ENV) env[k] = ca.bundlePath;
    return {
      sessionId: session.id,
      proxySocketPath: socketPath,
      caCertPath: ca.certPath,
      caBundlePath: ca.bundlePath,
      env,
      ...(tcp ? { tcp } : {}),
    };
  }

  async function unregister(sessionId: string): Promise<boolean> {
    const session = sessions.get(sessionId);
    if (!session) return false;
    sessions.delete(sessionId);
    announce((svc) => svc.sessionClosed?.(sessionId));
    session.closed = true;
    session.cutoff = true;
    const closing = [closeServer(session.unix), closeServer(session.tcp?.server)];
    for (const socket of session.conns.keys()) socket.destroy();
    for (const socket of session.upstream) socket.destroy();
    session.destroyAgents();
    await Promise.all(closing);
    rmSync(session.proxySocketPath, { force: true });
    return true;
  }

  function summary(s: Session): SessionSummary {
    return {
      sessionId: s.id,
      bottle: s.bottle,
      ...(s.agent === undefined ? {} : { agent: s.agent }),
      proxySocketPath: s.proxySocketPath,
      caCertPath: s.ca.certPath,
      ...(s.tcp ? { tcpPort: s.tcp.port } : {}),
      cutoff: s.cutoff,
      routes: s.routes.length,
      hosts: s.routes.map((r) => r.host),
      credentials: [...s.credentials.values.keys()],
      llmHosts: [...s.llmHosts],
      ...(s.spec.budgets === undefined ? {} : { budgets: s.spec.budgets }),
      createdAt: s.createdAt,
      openConnections: s.conns.size,
    };
  }

  function metricsNow(): ProxyMetrics {
    let openConnections = 0;
    let openTunnels = 0;
    for (const s of sessions.values()) {
      openConnections += s.conns.size;
      openTunnels += s.openTunnels();
    }
    let leavesMinted = 0;
    let leafCacheHits = 0;
    const seen = new Set<BottleCa>();
    for (const s of sessions.values()) {
      if (seen.has(s.ca)) continue;
      seen.add(s.ca);
      leavesMinted += s.ca.stats.minted;
      leafCacheHits += s.ca.stats.cacheHits;
    }
    return auditor.snapshot({
      sessions: sessions.size,
      openConnections,
      openTunnels,
      nativeRelayTunnels: cfg.nativeRelay.handedOff,
      leavesMinted,
      leafCacheHits,
    });
  }

  const host: ProxyHost = {
    stateDir,
    register,
    unregister,
    async list() {
      return [...sessions.values()].map(summary);
    },
    async cutoff(target) {
      const list = targets(target);
      for (const s of list) {
        s.cutoff = true;
        dropConnections(s);
      }
      return list.length;
    },
    async restore(target) {
      const list = targets(target);
      for (const s of list) s.cutoff = false;
      return list.length;
    },
    async replaceRoutes(sessionId: string, routes: RouteInput[]) {
      const [s] = targets({ sessionId });
      const valid = validateSessionRoutes(routes, "routes");
      // credentials referenced by new auth routes must already be loaded: fail closed, change nothing
      for (const [i, r] of valid.entries()) {
        const ref = r.auth?.token_ref;
        if (ref && !s?.credentials.values.has(ref)) {
          throw new EgressProxyError(
            "E_CREDENTIAL_MISSING",
            `routes[${i}].auth.token_ref: credential ${ref} was not registered with this session`,
            {
              hint: "register the session again with that credential",
            },
          );
        }
      }
      if (!s) return;
      s.routes = valid;
      // a tunnel opened under the old routes that the new ones would not open as a plain tunnel is closed
      for (const [socket, conn] of s.conns) {
        if (conn.kind !== "tunnel") continue;
        if (
          s.connectDecision(conn.host, conn.port, options.llmHandler !== undefined).kind !==
          "tunnel"
        )
          socket.destroy();
      }
    },
    async metrics() {
      return metricsNow();
    },
    async service(name: string, call: string, args?: unknown) {
      const svc = services.byName.get(name);
      if (!svc?.control) {
        throw new EgressProxyError(
          "E_UNKNOWN_SERVICE",
          `no service ${JSON.stringify(name)} in this proxy host`,
          {
            hint: "the controller runs without it; start it with the service enabled",
          },
        );
      }
      return svc.control(call, args);
    },
    addService,
    session(sessionId: string) {
      const s = sessions.get(sessionId);
      return s ? details(s) : undefined;
    },
    async setCredentials(sessionId: string, specs: CredentialSpec[]) {
      const [s] = targets({ sessionId });
      if (!s) return;
      validateSpec({ bottle: s.bottle, routes: [], credentials: specs });
      const loaded = loadCredentials(specs, s.routes, source);
      s.setCredentials(
        loaded,
        specs.map((c) => ({ ...c, ...(c.hosts ? { hosts: [...c.hosts] } : {}) })),
      );
    },
    metricsNow,
    prepareSessions() {
      for (const s of sessions.values()) s.prepare();
    },
    async ca(bottle: string) {
      const ca = await caFor(bottle);
      return { certPath: ca.certPath, bundlePath: ca.bundlePath, certPem: ca.certPem };
    },
    async close() {
      closed = true;
      await Promise.all([...sessions.keys()].map((id) => unregister(id)));
    },
  };
  for (const service of options.services ?? []) addService(service);
  return host;
}
