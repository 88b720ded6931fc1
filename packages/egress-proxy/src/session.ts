import { randomBytes } from "node:crypto";
import { Agent as HttpAgent } from "node:http";
import type { Agent as HttpsAgent } from "node:https";
import type { Server, Socket } from "node:net";
import {
  createInjectionScanner,
  createPlaceholderResolver,
  createScanner,
  type InjectionScanner,
  type KnownSecret,
  matchRoute,
  normalizeHost,
  OUTBOUND_DETECTORS,
  type PlaceholderResolver,
  type Route,
  type Scanner,
  validateRoutes,
} from "@bottlekit/egress-dlp";
import type { BottleCa } from "./ca.ts";
import { EgressProxyError } from "./errors.ts";
import { https } from "./lazy-node.ts";
import type { CredentialSource, CredentialSpec, SessionSpec } from "./types.ts";

/**
 * One bottle session: its validated routes, placeholder resolver, scanners, live state (cutoff)
 * and every socket it owns, so a cutoff can close them all at once.
 */

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

export interface ClientConn {
  kind: "tunnel" | "intercept" | "http" | "websocket";
  host: string;
  port: number;
  method: string;
  path: string;
  route?: number;
  bytesIn: () => number;
  bytesOut: () => number;
}

export interface SessionCredentials {
  resolver: PlaceholderResolver;
  /** Credential values by name: stays in this process, never logged. */
  values: ReadonlyMap<string, string>;
  /** Hosts each credential is bound to (spec hosts; routes' auth.token_ref bind implicitly). */
  bindings: Readonly<Record<string, readonly string[]>>;
  env: Record<string, string>;
}

function hostMatches(pattern: string, host: string): boolean {
  if (pattern === host) return true;
  return (
    pattern.startsWith("*.") && host.endsWith(pattern.slice(1)) && host.length > pattern.length - 1
  );
}

export function validateSessionRoutes(input: unknown, where = "routes"): Route[] {
  const v = validateRoutes(input);
  if (!v.value) {
    throw new EgressProxyError(
      "E_INVALID_INPUT",
      v.errors.map((e) => `${where}${e.startsWith("[") ? "" : "."}${e}`).join("; "),
      {
        hint: "fix the routes (egress-dlp's route schema) and register again; nothing was changed",
      },
    );
  }
  return v.value;
}

/** Reads each credential from the controller's environment; fails closed on a missing one. */
export function loadCredentials(
  specs: readonly CredentialSpec[],
  routes: readonly Route[],
  source: CredentialSource,
): SessionCredentials {
  const all = [...specs];
  specs.forEach((c, i) => {
    if (!ENV_NAME.test(c.name)) {
      throw new EgressProxyError(
        "E_INVALID_INPUT",
        `credentials[${i}].name: ${JSON.stringify(c.name)} is not an env var name`,
        {
          hint: "use letters, digits and _ (not starting with a digit)",
        },
      );
    }
    if (c.hostEnv !== undefined && !ENV_NAME.test(c.hostEnv)) {
      throw new EgressProxyError(
        "E_INVALID_INPUT",
        `credentials[${i}].hostEnv: ${JSON.stringify(c.hostEnv)} is not an env var name`,
      );
    }
    for (const [j, h] of (c.hosts ?? []).entries()) {
      const bare = h.startsWith("*.") ? h.slice(2) : h;
      if (normalizeHost(bare) !== bare) {
        throw new EgressProxyError(
          "E_INVALID_INPUT",
          `credentials[${i}].hosts[${j}]: ${JSON.stringify(h)} is not a lower-case host name`,
          {
            hint: "use `api.example.com` or `*.example.com`",
          },
        );
      }
    }
  });
  for (const r of routes) {
    const ref = r.auth?.token_ref;
    if (ref && !all.some((c) => c.name === ref)) all.push({ name: ref });
  }
  const values = new Map<string, string>();
  const credentials: Record<string, string> = {};
  const bindings: Record<string, string[]> = {};
  for (const c of all) {
    const value = source(c);
    if (value === undefined || value.length === 0) {
      throw new EgressProxyError(
        "E_CREDENTIAL_MISSING",
        `credential ${c.name}: the controller's env var ${c.hostEnv ?? c.name} is not set`,
        { hint: `set ${c.hostEnv ?? c.name} in the environment of the process running the proxy` },
      );
    }
    values.set(c.name, value);
    credentials[c.name] = value;
    if (c.hosts && c.hosts.length > 0) bindings[c.name] = [...(bindings[c.name] ?? []), ...c.hosts];
  }
  const resolver = createPlaceholderResolver({ credentials, bindings });
  const env = resolver.agentEnv(all.filter((c) => c.shaped).map((c) => c.name));
  return { resolver, values, bindings, env };
}

export interface SessionInit {
  spec: SessionSpec;
  routes: Route[];
  credentials: SessionCredentials;
  ca: BottleCa;
  /** Leave the scanners to `prepare()` or first use (default false: built here). */
  deferScanners?: boolean;
}

export class Session {
  readonly id = `s-${randomBytes(8).toString("hex")}`;
  readonly bottle: string;
  readonly agent: string | undefined;
  readonly spec: SessionSpec;
  readonly createdAt = new Date().toISOString();
  routes: Route[];
  credentials: SessionCredentials;
  /** Built by `prepare()` or on first use (see the constructor). */
  #scanner: Scanner | undefined;
  #injection: InjectionScanner | undefined;
  readonly llmHosts: ReadonlySet<string>;
  readonly ca: BottleCa;
  /** Keep-alive agents of the requests this session forwards, made by the first one (see `httpsAgent`). */
  #httpAgent: HttpAgent | undefined;
  #httpsAgent: HttpsAgent | undefined;
  /** The credential specs in force (names, host env names, bound hosts; no values). */
  credentialSpecs: CredentialSpec[];
  cutoff = false;
  /** Requests of this session being handled now (intercepted and plain HTTP), see maxRequestsInFlight. */
  inFlight = 0;
  /** Request body bytes this session's requests buffer now, see maxBufferedBodyBytes. */
  bufferedBytes = 0;
  closed = false;
  proxySocketPath = "";
  tcp: { server: Server; port: number; token: string } | undefined;
  unix: Server | undefined;
  /**
   * Client-side connections (tunnels, intercepted TLS, plain HTTP) with what they carry; a tunnel
   * handed to the native relay is keyed by its relay handle (destroy = close it).
   */
  readonly conns = new Map<Socket | { destroy(): void }, ClientConn>();
  /** Upstream sockets (tunnel targets, forwarded requests). */
  readonly upstream = new Set<Socket>();

  constructor(init: SessionInit) {
    this.spec = init.spec;
    this.bottle = init.spec.bottle;
    this.agent = init.spec.agent;
    this.routes = init.routes;
    this.credentials = init.credentials;
    this.credentialSpecs = [...(init.spec.credentials ?? [])];
    this.ca = init.ca;
    this.llmHosts = new Set((init.spec.llmHosts ?? []).map((h) => h.toLowerCase()));
    // `deferScanners`: the secret scanner (its known-secret index; egress-dlp builds the token
    // tables at the first scan) is built by `prepare()`, which the caller runs before the agent
    // may send anything, or by the first request that needs it, whichever comes first; none of
    // this session's traffic is handled without it.
    if (init.deferScanners !== true) {
      this.prepare();
      this.#injection = createInjectionScanner();
    }
  }

  /**
   * Builds the session's secret scanner if it is not built yet. Throws when it cannot be (a
   * credential too short to protect, say); every request needing it then fails too, as
   * `scanner` throws the same error: nothing passes unscanned. The injection scanner, built from
   * fixed phrases whatever the session, waits for the first response it reads (see `injection`).
   */
  prepare(): void {
    this.#scanner ??= Session.scannerFor(this.credentials);
  }

  /** The outbound secret scanner of the session's credentials (built on first use). */
  get scanner(): Scanner {
    this.#scanner ??= Session.scannerFor(this.credentials);
    return this.#scanner;
  }

  /**
   * The inbound prompt-injection scanner (with `deferScanners`, built by the first response it
   * reads: it takes no input from the session, so it cannot fail the way the secret scanner can,
   * and a short run that reads no response never pays for its automaton).
   */
  get injection(): InjectionScanner {
    this.#injection ??= createInjectionScanner();
    return this.#injection;
  }

  private static scannerFor(credentials: SessionCredentials): Scanner {
    const known: KnownSecret[] = [...credentials.values].map(([name, value]) => ({
      name: `credential:${name}`,
      value,
    }));
    known.push(...credentials.resolver.canaries());
    return createScanner({ detectors: OUTBOUND_DETECTORS, knownSecrets: known });
  }

  /** Replaces the session's credentials live (placeholder resolver, bindings and secret scanner). */
  setCredentials(credentials: SessionCredentials, specs: CredentialSpec[]): void {
    // Built first: one that cannot be built leaves the session as it was.
    this.#scanner = Session.scannerFor(credentials);
    this.credentials = credentials;
    this.credentialSpecs = specs;
  }

  /** The keep-alive agent of this session's plain HTTP requests upstream. */
  httpAgent(): HttpAgent {
    this.#httpAgent ??= new HttpAgent({ keepAlive: true });
    return this.#httpAgent;
  }

  /**
   * The keep-alive agent of this session's HTTPS requests upstream, made by the first one: it
   * needs node:https, which a session that forwards nothing over HTTPS never loads.
   */
  httpsAgent(): HttpsAgent {
    this.#httpsAgent ??= new (https().Agent)({ keepAlive: true });
    return this.#httpsAgent;
  }

  /** Closes the agents' idle sockets (the session is gone). */
  destroyAgents(): void {
    this.#httpAgent?.destroy();
    this.#httpsAgent?.destroy();
  }

  static newToken(): string {
    return randomBytes(24).toString("base64url");
  }

  /** Routes for a host and port, whatever their L7 matches (index kept). */
  hostRoutes(host: string, port: number): { route: Route; index: number }[] {
    const out: { route: Route; index: number }[] = [];
    this.routes.forEach((route, index) => {
      const bare = { ...route, matches: undefined };
      if (matchRoute([bare], { host, port, method: "GET", path: "/" }).ok)
        out.push({ route, index });
    });
    return out;
  }

  /**
   * What a CONNECT to host:port gets: `deny` (no route), `tunnel` (the host's routes need nothing
   * at L7), or `intercept` (L7 matches, auth, DLP settings, body placeholders, a credential bound
   * to the host, or a provider API host handed to the LLM handler).
   */
  connectDecision(
    host: string,
    port: number,
    llmHandler: boolean,
  ): { kind: "deny" | "tunnel" | "intercept"; route?: number } {
    const llm = llmHandler && this.isLlmHost(host);
    const routes = this.hostRoutes(host, port);
    if (!llm && routes.length === 0) return { kind: "deny" };
    const needsL7 =
      llm ||
      this.hasCredentialFor(host) ||
      routes.some(
        ({ route }) =>
          (route.matches !== undefined && route.matches.length > 0) ||
          route.auth !== undefined ||
          route.dlp !== undefined ||
          route.body_placeholders === true,
      );
    if (needsL7) return { kind: "intercept" };
    const first = routes[0];
    return first ? { kind: "tunnel", route: first.index } : { kind: "tunnel" };
  }

  /**
   * True when a route names `host` exactly (no wildcard) or it is a provider API host: the
   * operator chose it, so it may resolve to a private address (see upstream-address.ts).
   */
  namesExactly(host: string): boolean {
    return this.llmHosts.has(host) || this.routes.some((r) => r.host === host);
  }

  /** True when some credential is bound to `host` (through `hosts`). */
  hasCredentialFor(host: string): boolean {
    for (const hosts of Object.values(this.credentials.bindings)) {
      if (hosts.some((h) => hostMatches(h, host))) return true;
    }
    return false;
  }

  isLlmHost(host: string): boolean {
    return this.llmHosts.has(host);
  }

  /** Tracks a client connection until it closes. */
  trackConn(socket: Socket, conn: ClientConn): void {
    this.conns.set(socket, conn);
    socket.once("close", () => this.conns.delete(socket));
  }

  trackUpstream(socket: Socket): void {
    if (this.upstream.has(socket)) return;
    this.upstream.add(socket);
    socket.once("close", () => this.upstream.delete(socket));
  }

  openTunnels(): number {
    let n = 0;
    for (const c of this.conns.values()) if (c.kind === "tunnel") n++;
    return n;
  }
}
