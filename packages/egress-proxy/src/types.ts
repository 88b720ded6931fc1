import type { IncomingMessage, ServerResponse } from "node:http";
import type { Route, RouteInput } from "@bottlekit/egress-dlp";

/**
 * Public types of @bottlekit/egress-proxy: what the gateway, `bottle run`, the dashboard and
 * approvals code against. Credential values never appear in any of these shapes except
 * `CredentialSource`'s return value, which stays inside the controller process.
 */

/** A credential the agent may use without holding it. */
export interface CredentialSpec {
  /** Env var name the agent sees (it holds a placeholder inside the sandbox), e.g. `GITHUB_TOKEN`. */
  name: string;
  /** Env var of the controller process holding the real value. Default: `name`. */
  hostEnv?: string;
  /**
   * Hosts the credential may be sent to (exact, or `*.example.com`). A route whose
   * `auth.token_ref` is `name` is bound as well. A placeholder toward any other host is refused.
   */
  hosts?: string[];
  /** Give the agent a format-preserving placeholder (same prefix, length, classes) instead of `bottlekit:resolve:env:NAME`. */
  shaped?: boolean;
}

/** Reads a credential's real value in the controller. Default: `process.env[spec.hostEnv ?? spec.name]`. */
export type CredentialSource = (spec: CredentialSpec) => string | undefined;

/** What `register` needs to open a bottle session. */
export interface SessionSpec {
  /** Bottle name (`[A-Za-z0-9._-]`, 1-64): selects the per-bottle CA. */
  bottle: string;
  agent?: string;
  /** Egress routes (egress-dlp's route schema). No route for a host means 403. */
  routes: RouteInput[];
  credentials?: CredentialSpec[];
  /**
   * Provider API hosts (from provider-registry) whose requests are intercepted and handed to the
   * host's `llmHandler`. Without a handler they are ordinary routes (a route is then required).
   */
  llmHosts?: string[];
  /** Opaque to the proxy: kept and listed for the controller (budgets are enforced by the gateway). */
  budgets?: unknown;
  /** Also listen on 127.0.0.1 (random port) guarded by a per-session `Proxy-Authorization` token. */
  tcp?: boolean;
}

/** Returned by `register`. */
export interface RegisterResult {
  sessionId: string;
  /** Unix socket the sandbox bridges to `127.0.0.1:PORT`; identity = this socket. */
  proxySocketPath: string;
  /** PEM of the bottle's CA (certificate only; the key stays 0600 under `$BOTTLEKIT_HOME/state/`). */
  caCertPath: string;
  /**
   * The bottle's CA followed by the system roots (PEM): what OpenSSL-based clients need, since
   * `SSL_CERT_FILE` and friends replace the default roots and plain tunnels still meet public
   * certificates.
   */
  caBundlePath: string;
  /**
   * Environment for the sandbox: each credential name mapped to its placeholder, and
   * NODE_EXTRA_CA_CERTS, SSL_CERT_FILE, REQUESTS_CA_BUNDLE, CURL_CA_BUNDLE, CODEX_CA_CERTIFICATE
   * set to `caBundlePath`. No proxy variables: the bridge port is chosen by the sandbox.
   */
  env: Record<string, string>;
  /** Present when `tcp: true`: proxy URL `http://bottlekit:<token>@127.0.0.1:<port>`. */
  tcp?: { host: "127.0.0.1"; port: number; token: string };
}

/** One row of `list`. */
export interface SessionSummary {
  sessionId: string;
  bottle: string;
  agent?: string;
  proxySocketPath: string;
  caCertPath: string;
  tcpPort?: number;
  cutoff: boolean;
  routes: number;
  /** Route hosts only (no credentials, no matches). */
  hosts: string[];
  credentials: string[];
  llmHosts: string[];
  budgets?: unknown;
  createdAt: string;
  openConnections: number;
}

/** Which session(s) a live-control command targets. */
export type SessionTarget = { sessionId: string } | { bottle: string };

/**
 * Context handed to the LLM handler for a request to a provider API host. The request is the
 * agent's decrypted HTTP/1.1 request (method, path with query, headers as sent by the agent,
 * body unread); the handler owns the response.
 */
export interface LlmContext {
  sessionId: string;
  bottle: string;
  agent?: string;
  /** The CONNECT host (= SNI = Host header), lower case. */
  host: string;
  port: number;
}

/**
 * The gateway's LLM pipeline: identity is `ctx` (the session), it injects the real key in place
 * of whatever placeholder the agent sent, reserves, forwards, taps usage and settles. It must
 * always answer `res` (or destroy it); a thrown error or rejected promise becomes a 502.
 */
export type LlmHandler = (
  req: IncomingMessage,
  res: ServerResponse,
  ctx: LlmContext,
) => void | Promise<void>;

export type AuditDecision =
  /** CONNECT answered with a plain tunnel (bytes counted at close). */
  | "tunnel"
  /** Intercepted or plain-HTTP request forwarded upstream unchanged apart from credentials. */
  | "allow"
  /** Forwarded with DLP redactions. */
  | "redact"
  /** Handed to the LLM handler. */
  | "llm"
  /** WebSocket upgrade forwarded. */
  | "websocket"
  | "deny_route"
  /**
   * A WebSocket (or other) upgrade toward a provider API host, answered 426 so the client falls
   * back to HTTP at once (LLM traffic is metered per HTTP request; a socket would bypass that).
   */
  | "deny_websocket"
  | "deny_cutoff"
  | "deny_placeholder"
  | "deny_dlp"
  | "deny_injection"
  | "deny_sni"
  | "deny_auth"
  | "deny_body_size"
  | "deny_bad_request"
  | "upstream_tls_error"
  | "upstream_error"
  /** A live tunnel or connection closed by `cutoff`. */
  | "closed_by_cutoff"
  /** A request to a reserved host answered by a proxy service (e.g. approvals); never forwarded. */
  | "service";

/**
 * One audit record per decision. Never bodies, query strings, header values or credentials:
 * `path` is the path without its query, with placeholders masked and any DLP finding replaced.
 */
export interface AuditEvent {
  time: string;
  sessionId: string;
  bottle: string;
  agent?: string;
  host: string;
  port: number;
  method: string;
  path: string;
  /** Index into the session's routes of the route used, when one matched. */
  route?: number;
  decision: AuditDecision;
  /** Short machine-readable reason (route matcher reason, placeholder failure, DLP rule ids). */
  reason?: string;
  status?: number;
  /** Bytes from the agent (request body or tunnel upload). */
  bytesIn: number;
  /** Bytes to the agent (response body or tunnel download). */
  bytesOut: number;
  /** DLP findings without values. */
  findings?: { detector: string; rule: string; surface: string; fingerprint: string }[];
  /** Credential names resolved on this request (names only). */
  credentials?: string[];
}

/** Counters for `/metrics`. */
export interface ProxyMetrics {
  sessions: number;
  openConnections: number;
  openTunnels: number;
  /** Plain tunnels handed to the native relay so far (see `ProxyHostOptions.nativeRelay`). */
  nativeRelayTunnels: number;
  decisions: Record<AuditDecision, number>;
  bytesIn: number;
  bytesOut: number;
  leavesMinted: number;
  leafCacheHits: number;
}

/** Options of `createProxyHost`. */
export interface ProxyHostOptions {
  /** `$BOTTLEKIT_HOME`; default `process.env.BOTTLEKIT_HOME` or `~/.bottlekit`. State goes in `<home>/state/`. */
  home?: string;
  /** Receives the LLM traffic of `llmHosts` (see `LlmHandler`). */
  llmHandler?: LlmHandler;
  /** Called for every decision. Must not throw (errors are swallowed). */
  onAudit?: (event: AuditEvent) => void;
  credentialSource?: CredentialSource;
  /** Test/enterprise only: where to connect for a host (TLS still verifies the original host name). */
  resolve?: (host: string, port: number) => { host: string; port: number };
  /** Test/enterprise only: extra CA certificates (PEM) trusted for upstreams, on top of the system roots. */
  upstreamCa?: string | string[];
  /** Largest request body buffered for placeholders and DLP. Default 8 MiB; larger bodies get 413. */
  maxBodyBytes?: number;
  /** Largest response buffered for the inbound injection scan. Default 8 MiB; larger ones are cut (502). */
  maxResponseScanBytes?: number;
  /**
   * How long a client may take to finish the TLS handshake on an intercepted CONNECT (default
   * 10 s); one that stalls (a ClientHello that never completes) is dropped and audited.
   */
  handshakeTimeoutMs?: number;
  /**
   * How long a client may take to send a request's headers, on the listener and inside
   * intercepted tunnels (default 60 s; slower ones get 408 and are closed).
   */
  headersTimeoutMs?: number;
  /**
   * Open client connections (and native-relay tunnels) one session may hold (default 1,024);
   * further connections are closed at once, so one bottle cannot exhaust the host's descriptors.
   */
  maxConnectionsPerSession?: number;
  /**
   * Requests one session may have in flight at once, pipelined ones included (default 256);
   * more get 503 with `retry-after`, so one connection cannot hold unbounded bodies and upstreams.
   */
  maxRequestsInFlight?: number;
  /**
   * Request body bytes one session's requests may buffer at once, all together (default 64 MiB,
   * or twice `maxBodyBytes` if that is more); a body that would go over gets 503 with `retry-after`.
   */
  maxBufferedBodyBytes?: number;
  /** Mode of each session's proxy socket. Default 0o600 (widen only for a sandbox user that must reach it). */
  proxySocketMode?: number;
  /**
   * Plain CONNECT tunnels start in a JS relay and are handed to the native relay (splice(2) in a
   * small process built from src/relay.c) once they have carried `afterBytes` (default 4 MiB).
   * `binary`: another relay executable (default: the one the package build puts in dist/).
   * `false`: JS only. Without a built relay, tunnels stay in JS (one process warning).
   */
  nativeRelay?: false | { binary?: string; afterBytes?: number };
  /** Services answering reserved hosts inside the proxy (see `ProxyService`); more with `addService`. */
  services?: ProxyService[];
  /**
   * Register a session without building its DLP scanners (default false: `register` builds
   * them, and fails when they cannot be built). They are built by `prepareSessions()` or by the
   * session's first request that needs them, whichever comes first; a request never goes out
   * unscanned, and one whose scanner cannot be built is refused. An embedded controller sets it
   * so that registering (which the sandbox waits for) skips tens of ms, and calls
   * `prepareSessions()` before its agent starts.
   */
  deferSessionScanners?: boolean;
}

/** Who is asking a proxy service: the proxy session the request came through (never a header). */
export interface ServiceContext {
  sessionId: string;
  bottle: string;
  agent?: string;
  /** The reserved host addressed (lower case) and port. */
  host: string;
  port: number;
}

/** A request held by a route whose DLP action is `supervise`, as a service sees it (no values). */
export interface SupervisedRequest {
  sessionId: string;
  bottle: string;
  agent?: string;
  host: string;
  port: number;
  method: string;
  /** The audited path: no query, placeholders masked, `[REDACTED]` when a secret is in it. */
  path: string;
  route: number;
  findings: { detector: string; rule: string; surface: string; fingerprint: string }[];
}

/** A session as a service sees it: routes and credential bindings, never a credential value. */
export interface SessionDetails {
  sessionId: string;
  bottle: string;
  agent?: string;
  /** The routes in force now (validated). */
  routes: Route[];
  /** Credentials loaded for the session: names and the hosts each is bound to. */
  credentials: CredentialSpec[];
  cutoff: boolean;
}

/**
 * A service living inside the proxy host, reachable by a bottled agent only through its own proxy
 * listener, at a reserved host name that is never forwarded upstream (identity = the session).
 */
export interface ProxyService {
  /** `[a-z][a-z0-9-]*`: control-socket calls are addressed to it by this name. */
  name: string;
  /** Reserved hosts (lower case) it answers, on any port, plain http:// or CONNECT (intercepted). */
  hosts: readonly string[];
  /** Answers a request to a reserved host. A throw becomes a 500. */
  handle(req: IncomingMessage, res: ServerResponse, ctx: ServiceContext): void | Promise<void>;
  /** Calls over the control socket (`{"op":"service","service":name,"call":…,"args":…}`). */
  control?(call: string, args: unknown): Promise<unknown>;
  /**
   * Decides a request held by a `supervise` DLP action: resolves true to forward it as sent,
   * false to refuse it. Must resolve within its own bounded wait (fail closed: false).
   */
  supervise?(request: SupervisedRequest): Promise<boolean>;
  /** One line appended to route refusals (403 `deny_route`) telling the agent how to ask for access. */
  refusalHint?: string;
  /** A session was registered (routes as registered) or unregistered. Must not throw. */
  sessionOpened?(session: SessionDetails): void;
  sessionClosed?(sessionId: string): void;
}

/**
 * Control socket protocol: JSON lines over a unix socket (`<home>/state/egress-proxy.sock`, 0600).
 * Each request line carries an `id` echoed in its one response line.
 */
export type ControlRequest =
  | { id: number; op: "register"; session: SessionSpec }
  | { id: number; op: "unregister"; sessionId: string }
  | { id: number; op: "list" }
  | { id: number; op: "cutoff"; target: SessionTarget }
  | { id: number; op: "restore"; target: SessionTarget }
  | { id: number; op: "replaceRoutes"; sessionId: string; routes: RouteInput[] }
  | { id: number; op: "metrics" }
  | { id: number; op: "service"; service: string; call: string; args?: unknown };

export type ControlResponse =
  | { id: number; ok: true; result: unknown }
  | { id: number; ok: false; error: { code: string; message: string; hint?: string } };

/** The control client (also what an in-process `ProxyHost` offers for the same operations). */
export interface ControlApi {
  register(session: SessionSpec): Promise<RegisterResult>;
  unregister(sessionId: string): Promise<boolean>;
  list(): Promise<SessionSummary[]>;
  /** Drops every route of the target at once; returns how many sessions were affected. */
  cutoff(target: SessionTarget): Promise<number>;
  restore(target: SessionTarget): Promise<number>;
  replaceRoutes(sessionId: string, routes: RouteInput[]): Promise<void>;
  metrics(): Promise<ProxyMetrics>;
  /** A call to a service of the host (e.g. approvals); `E_UNKNOWN_SERVICE` when none has that name. */
  service(name: string, call: string, args?: unknown): Promise<unknown>;
}
