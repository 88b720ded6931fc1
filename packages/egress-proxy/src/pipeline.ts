import type {
  IncomingHttpHeaders,
  IncomingMessage,
  OutgoingHttpHeaders,
  ServerResponse,
} from "node:http";
import { request as httpRequest, STATUS_CODES } from "node:http";
import { isIP, type Socket } from "node:net";
import type { PeerCertificate, SecureContext } from "node:tls";
import {
  createStreamScanner,
  type Finding,
  matchRoute,
  type OutboundRequest,
  PLACEHOLDER_PATTERN,
  type PlaceholderRequest,
  type Route,
  redactRequest,
  routeDetectors,
  scanRequest,
} from "@bottlekit/egress-dlp";
import type { Auditor } from "./audit.ts";
import { https, tls } from "./lazy-node.ts";
import type { NativeRelayConfig } from "./native-relay.ts";
import type { Session } from "./session.ts";
import type { AuditDecision, AuditEvent, LlmHandler, ProxyService } from "./types.ts";
import { literalRefusal, PRIVATE_UPSTREAM, publicOnlyLookup } from "./upstream-address.ts";
import {
  closeFrame,
  encodeFrame,
  OP_TEXT,
  type WsCloseCode,
  type WsFrame,
  WsFrameParser,
  WsMessageAssembler,
  WsProtocolError,
} from "./websocket.ts";

/**
 * The request path of one intercepted (or plain-HTTP) request, as named stages composed in
 * `handleRequest`: cutoff → host check → LLM hook → route → body → placeholders → DLP → forward
 * → response (inbound injection scan) → audit. Each stage either passes a richer request on or
 * answers the agent itself (a refusal) and audits why. Nothing reaches the upstream before every
 * check has passed.
 */

export interface Target {
  scheme: "http" | "https";
  host: string;
  port: number;
}

/** The host's services: by reserved host, by name, and the one that supervises DLP holds. */
export interface ServiceRegistry {
  byHost: Map<string, ProxyService>;
  byName: Map<string, ProxyService>;
}

export interface PipelineConfig {
  auditor: Auditor;
  services: ServiceRegistry;
  llmHandler: LlmHandler | undefined;
  resolve: ((host: string, port: number) => { host: string; port: number }) | undefined;
  /** Trusted roots for upstreams when an extra CA was given (built once); undefined = Node's default roots. */
  upstreamCa: SecureContext | undefined;
  maxBodyBytes: number;
  maxResponseScanBytes: number;
  /** How long an intercepted client may take to finish its TLS handshake. */
  handshakeTimeoutMs: number;
  /** How long a client may take to send a request's headers (listener and intercepted requests). */
  headersTimeoutMs: number;
  /** Open client connections (and tunnels handed to the native relay) one session may hold. */
  maxConnectionsPerSession: number;
  /** Requests one session may have in flight at once (pipelined ones included). */
  maxRequestsInFlight: number;
  /** Request body bytes one session's requests may buffer at once, all together. */
  maxBufferedBodyBytes: number;
  /** Plain tunnels: when to hand them to the native relay (binary undefined = never). */
  nativeRelay: NativeRelayConfig;
}

const HOP_BY_HOP = new Set([
  "connection",
  // the whole body is read before forwarding; the proxy answered any 100-continue itself
  "expect",
  "keep-alive",
  "proxy-authorization",
  "proxy-authenticate",
  "proxy-connection",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
]);

const RETRYABLE = new Set(["ECONNRESET", "EPIPE", "ECONNABORTED"]);

const TLS_ERRORS = new Set([
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "UNABLE_TO_GET_ISSUER_CERT",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "CERT_HAS_EXPIRED",
  "CERT_NOT_YET_VALID",
  "CERT_UNTRUSTED",
  "CERT_REVOKED",
  "CERT_SIGNATURE_FAILURE",
  "ERR_TLS_CERT_ALTNAME_INVALID",
  "HOSTNAME_MISMATCH",
  "ERR_SSL_WRONG_VERSION_NUMBER",
]);

/** System roots plus the extra CA, as one SecureContext built once (not a CA list per request). */
export function upstreamCaContext(extra: string | string[] | undefined): SecureContext | undefined {
  if (extra === undefined) return undefined;
  const { createSecureContext, rootCertificates } = tls();
  return createSecureContext({
    ca: [...rootCertificates, ...(Array.isArray(extra) ? extra : [extra])],
  });
}

// ---------------------------------------------------------------------------------------------
// Audit helpers

const MASK = "[CREDENTIAL]";

/** The path as audited: no query, placeholders masked, replaced whole if a secret is seen in it. */
export function auditPath(session: Session, rawPath: string): string {
  const q = rawPath.search(/[?#]/);
  let path = q === -1 ? rawPath : rawPath.slice(0, q);
  if (path.length > 2048) path = `${path.slice(0, 2048)}…`;
  path = path.replace(new RegExp(PLACEHOLDER_PATTERN.source, "g"), MASK);
  // A CONNECT has no path: nothing to scan, and no reason to build the session's scanner for it
  // (the sandbox's probe is a CONNECT, answered while the scanner is still deferred).
  if (path === "") return path;
  let blocked: boolean;
  try {
    blocked = session.scanner.scan(path, "path").blocked;
  } catch {
    // A session whose scanner cannot be built (see Session.prepare) refuses its requests; their
    // audit lines show no path rather than one nothing has checked.
    blocked = true;
  }
  return blocked ? "[REDACTED]" : path;
}

function findingsView(findings: readonly Finding[]): AuditEvent["findings"] {
  return findings
    .filter((f) => f.severity === "block")
    .map(({ detector, rule, surface, fingerprint }) => ({ detector, rule, surface, fingerprint }));
}

export interface RequestInfo {
  session: Session;
  target: Target;
  method: string;
  path: string;
  route?: number;
  credentials?: string[];
}

export function audit(
  cfg: PipelineConfig,
  info: RequestInfo,
  decision: AuditDecision,
  extra: Partial<Omit<AuditEvent, "time" | "decision">> = {},
): void {
  const s = info.session;
  cfg.auditor.emit({
    sessionId: s.id,
    bottle: s.bottle,
    ...(s.agent === undefined ? {} : { agent: s.agent }),
    host: info.target.host,
    port: info.target.port,
    method: info.method,
    path: auditPath(s, info.path),
    ...(info.route === undefined ? {} : { route: info.route }),
    ...(info.credentials && info.credentials.length > 0 ? { credentials: info.credentials } : {}),
    decision,
    bytesIn: 0,
    bytesOut: 0,
    ...extra,
  });
}

/** The refusal body: names the host and says how to ask for access. Never echoes headers or bodies. */
export function refusalText(host: string, port: number, why: string, hint?: string): string {
  return (
    `bottlekit egress-proxy refused this request to ${host}:${port}: ${why}\n` +
    `To request access, add an egress route for ${host} to the bottle manifest ` +
    "(egress.routes) or ask the operator for an approval.\n" +
    (hint ? `${hint}\n` : "")
  );
}

/** How a bottled agent can ask for a missing route, from the first service that says so. */
export function askHint(cfg: PipelineConfig): string | undefined {
  for (const s of cfg.services.byName.values()) if (s.refusalHint) return s.refusalHint;
  return undefined;
}

function refuse(
  cfg: PipelineConfig,
  info: RequestInfo,
  res: ServerResponse,
  status: number,
  decision: AuditDecision,
  why: string,
  extra: Partial<Omit<AuditEvent, "time" | "decision">> = {},
): void {
  audit(cfg, info, decision, { status, ...extra });
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = refusalText(
    info.target.host,
    info.target.port,
    why,
    decision === "deny_route" ? askHint(cfg) : undefined,
  );
  res.writeHead(status, {
    "content-type": "text/plain; charset=utf-8",
    "content-length": Buffer.byteLength(body),
    "x-bottlekit-decision": decision,
  });
  res.end(body);
}

// ---------------------------------------------------------------------------------------------
// Stages

/** Stage: cutoff. */
function cutoffStage(cfg: PipelineConfig, info: RequestInfo, res: ServerResponse): boolean {
  if (!info.session.cutoff) return true;
  refuse(cfg, info, res, 403, "deny_cutoff", "the bottle's egress is cut off");
  return false;
}

/** Stage: the Host header of an intercepted request must name the CONNECT host. */
function hostStage(
  cfg: PipelineConfig,
  info: RequestInfo,
  req: IncomingMessage,
  res: ServerResponse,
): boolean {
  if (info.target.scheme === "http") return true;
  // the host, then an optional decimal port; whatever port the client wrote (clients write `:80`
  // or nothing inside a TLS tunnel), the upstream is told the authority the route was checked
  // for, so it cannot pick another virtual host by a port the route never saw
  const m = /^(\[[0-9a-f:.]+\]|[^:[\]@]+)(?::(\d{1,5}))?$/.exec(
    (req.headers.host ?? "").toLowerCase(),
  );
  if (m && m[1] === info.target.host) {
    const { host, port } = info.target;
    req.headers.host = port === 443 ? host : `${host}:${port}`;
    return true;
  }
  refuse(
    cfg,
    info,
    res,
    421,
    "deny_bad_request",
    "the Host header does not name the tunnel's host",
    {
      reason: "host_mismatch",
    },
  );
  return false;
}

/**
 * Stage: the upstream address. A private IP literal allowed only through a wildcard route is
 * refused before anything is sent (names are checked at connect time, see `openUpstream`).
 */
function addressStage(cfg: PipelineConfig, info: RequestInfo, res: ServerResponse): boolean {
  const { refusal } = upstreamAddressPolicy(cfg, info.session, info.target.host);
  if (!refusal) return true;
  refuse(cfg, info, res, 403, "deny_route", "the upstream address is not public", {
    reason: "private_upstream_address",
  });
  return false;
}

/**
 * Why a request-target cannot be route-checked safely, if it cannot. Routes match the path as
 * sent, and the upstream must not read it as another one: a fragment (never valid in a request,
 * some servers cut or route on it), a segment that some server stacks read as a dot segment once
 * decoded or stripped of `;` parameters (`..;`, `%2e%2e;x`, `.%2e`), an encoded slash or
 * backslash, a NUL or a malformed escape. Fail closed: such a request is refused, not cleaned.
 */
export function pathProblem(target: string): string | undefined {
  if (target.includes("#")) return "fragment_in_request_target";
  const q = target.indexOf("?");
  const path = q === -1 ? target : target.slice(0, q);
  for (const segment of path.split("/")) {
    // byte-wise (not UTF-8): `%ff` is a byte some server reads, not an error
    if (/%(?![0-9a-f]{2})/i.test(segment)) return "malformed_percent_escape";
    const decoded = segment.replace(/%([0-9a-f]{2})/gi, (_m, hex: string) =>
      String.fromCharCode(Number.parseInt(hex, 16)),
    );
    if (decoded.includes("/") || decoded.includes("\\") || decoded.includes("\u0000"))
      return "encoded_separator_in_path";
    const bare = decoded.split(";")[0] as string;
    if (bare === "." || bare === "..") return "dot_segment_in_path";
  }
  return undefined;
}

/** Stage: route. */
function routeStage(
  cfg: PipelineConfig,
  info: RequestInfo,
  req: IncomingMessage,
  res: ServerResponse,
): Route | undefined {
  const problem = pathProblem(info.path);
  if (problem !== undefined) {
    refuse(cfg, info, res, 403, "deny_route", "the request path is not canonical", {
      reason: `path_not_canonical:${problem}`,
    });
    return undefined;
  }
  const m = matchRoute(info.session.routes, {
    host: info.target.host,
    port: info.target.port,
    method: info.method,
    path: info.path,
    headers: req.headers,
  });
  if (m.ok) {
    info.route = m.index;
    return m.route;
  }
  refuse(cfg, info, res, 403, "deny_route", m.message, { reason: m.reason });
  return undefined;
}

type BodyResult = { ok: true; body: Buffer | undefined } | { ok: false };

/** Stage: body, buffered up to the limit (placeholders and DLP need all of it). */
function bodyStage(
  cfg: PipelineConfig,
  info: RequestInfo,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<BodyResult> {
  const declared = req.headers["content-length"];
  const hasBody =
    (declared !== undefined && declared !== "0") || req.headers["transfer-encoding"] !== undefined;
  if (!hasBody)
    return Promise.resolve({ ok: true, body: declared === "0" ? Buffer.alloc(0) : undefined });
  const max = cfg.maxBodyBytes;
  if (declared !== undefined && Number(declared) > max) {
    res.setHeader("connection", "close");
    refuse(
      cfg,
      info,
      res,
      413,
      "deny_body_size",
      `request body over ${max} bytes cannot be scanned`,
    );
    req.resume();
    return Promise.resolve({ ok: false });
  }
  const session = info.session;
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    // bytes of this body counted in the session's budget, given back when the exchange ends
    let held = 0;
    res.once("close", () => {
      session.bufferedBytes -= held;
      held = 0;
    });
    req.on("data", (chunk: Buffer) => {
      if (done) return;
      size += chunk.length;
      if (size <= max && session.bufferedBytes + chunk.length > cfg.maxBufferedBodyBytes) {
        // the session's bodies held at once are bounded too (each request's alone is not enough:
        // many concurrent requests could each buffer up to maxBodyBytes)
        done = true;
        res.setHeader("connection", "close");
        res.setHeader("retry-after", "1");
        refuse(
          cfg,
          info,
          res,
          503,
          "deny_body_size",
          "the bottle's requests buffer too many body bytes at once",
          { reason: "session_body_budget", bytesIn: size },
        );
        req.resume();
        resolve({ ok: false });
        return;
      }
      if (size > max) {
        done = true;
        res.setHeader("connection", "close");
        refuse(
          cfg,
          info,
          res,
          413,
          "deny_body_size",
          `request body over ${max} bytes cannot be scanned`,
          {
            bytesIn: size,
          },
        );
        req.resume();
        resolve({ ok: false });
        return;
      }
      session.bufferedBytes += chunk.length;
      held += chunk.length;
      chunks.push(chunk);
    });
    req.on("end", () => {
      if (done) return;
      done = true;
      resolve({ ok: true, body: Buffer.concat(chunks, size) });
    });
    req.on("error", () => {
      if (done) return;
      done = true;
      resolve({ ok: false });
    });
  });
}

function isUtf8(buf: Buffer): boolean {
  try {
    new TextDecoder("utf-8", { fatal: true }).decode(buf);
    return true;
  } catch {
    return false;
  }
}

export function forwardHeaders(
  headers: IncomingHttpHeaders,
  keepUpgrade = false,
): PlaceholderRequest["headers"] {
  const drop = new Set(HOP_BY_HOP);
  if (keepUpgrade) {
    drop.delete("connection");
    drop.delete("upgrade");
  }
  const listed = headers.connection;
  if (listed && !keepUpgrade) for (const t of listed.split(",")) drop.add(t.trim().toLowerCase());
  const out: PlaceholderRequest["headers"] = {};
  for (const [k, v] of Object.entries(headers)) {
    if (v === undefined || drop.has(k)) continue;
    out[k] = v;
  }
  return out;
}

export interface Prepared {
  route: Route;
  /** What goes upstream (real credentials). Never log. */
  method: string;
  path: string;
  headers: PlaceholderRequest["headers"];
  body: Buffer | undefined;
  decision: "allow" | "redact";
  findings: Finding[];
  /** Set when the route's DLP action is `supervise` and a supervisor exists: the request is held. */
  hold?: Finding[];
  /** Audit reason of the forwarded request (e.g. `supervise_approved`). */
  reason?: string;
}

/** Stage: placeholders (resolved for the bound host only) then DLP on the masked view. */
function credentialAndDlpStage(
  cfg: PipelineConfig,
  info: RequestInfo,
  route: Route,
  req: IncomingMessage,
  res: ServerResponse,
  body: Buffer | undefined,
  keepUpgrade: boolean,
): Prepared | undefined {
  const session = info.session;
  const utf8 = body === undefined || isUtf8(body);
  const bodyText = body === undefined ? undefined : body.toString(utf8 ? "utf8" : "latin1");
  const phReq: PlaceholderRequest = {
    method: info.method,
    host: info.target.host,
    port: info.target.port,
    path: info.path,
    headers: forwardHeaders(req.headers, keepUpgrade),
    ...(bodyText === undefined ? {} : { body: bodyText }),
  };
  const resolved = session.credentials.resolver.resolve(phReq, route);
  if (!resolved.ok) {
    refuse(cfg, info, res, 403, "deny_placeholder", resolved.message, {
      reason: `${resolved.reason}:${resolved.surface}`,
      bytesIn: body?.length ?? 0,
    });
    return undefined;
  }
  info.credentials = [...new Set(resolved.used.map((u) => u.name))];
  if (info.target.scheme === "http" && (resolved.used.length > 0 || route.auth !== undefined)) {
    refuse(
      cfg,
      info,
      res,
      403,
      "deny_placeholder",
      "credentials are only sent over TLS; use https://",
      {
        reason: "credential_over_plain_http",
        bytesIn: body?.length ?? 0,
      },
    );
    return undefined;
  }
  const view = resolved.scanView;
  const toScan: OutboundRequest = {
    method: view.method,
    host: view.host,
    port: info.target.port,
    path: view.path,
    headers: view.headers,
    ...(view.body === undefined
      ? {}
      : { body: utf8 ? view.body : Buffer.from(view.body, "latin1") }),
  };
  const detectors = routeDetectors(route);
  let out = resolved.request;
  let decision: "allow" | "redact" = "allow";
  let findings: Finding[] = [];
  if (detectors.length > 0) {
    const limits = { detectors, maxBodyBytes: cfg.maxBodyBytes };
    const scan = scanRequest(session.scanner, toScan, limits);
    findings = scan.findings;
    if (scan.blocked) {
      const blocking = scan.findings.filter((f) => f.severity === "block");
      const mode = route.dlp?.outbound_on_match ?? "supervise";
      const unredactable = blocking.some(
        (f) => f.detector === "budget" || f.surface === "host" || f.surface === "header-names",
      );
      let merged: PlaceholderRequest | undefined;
      if (mode === "redact" && !unredactable) {
        const redacted = redactRequest(toScan, scan);
        const again = scanRequest(session.scanner, redacted, limits);
        if (!again.blocked)
          merged = mergeRedacted(redacted, view, resolved.request, session, resolved.used);
      }
      if (!merged && mode === "supervise" && supervisorOf(cfg) !== undefined && !keepUpgrade) {
        // held: the operator decides; on approval the request goes out as the agent sent it
        return withAuth(
          cfg,
          info,
          route,
          res,
          {
            route,
            method: out.method,
            path: out.path,
            headers: out.headers,
            body: undefined,
            decision: "allow",
            findings: scan.findings,
            hold: blocking,
          },
          out.body,
          utf8,
        );
      }
      if (!merged) {
        const why =
          mode === "supervise"
            ? "secret in the outbound request (the route asks for supervision; no supervisor answers here)"
            : "secret in the outbound request";
        refuse(cfg, info, res, 403, "deny_dlp", why, {
          reason: [...new Set(blocking.map((f) => f.rule))].join(","),
          findings: findingsView(scan.findings),
          bytesIn: body?.length ?? 0,
        });
        return undefined;
      }
      out = merged;
      decision = "redact";
    }
  }
  return withAuth(
    cfg,
    info,
    route,
    res,
    {
      route,
      method: out.method,
      path: out.path,
      headers: out.headers,
      body: undefined,
      decision,
      findings,
    },
    out.body,
    utf8,
  );
}

/** The first service that supervises DLP holds, if any. */
function supervisorOf(cfg: PipelineConfig): ProxyService | undefined {
  for (const s of cfg.services.byName.values()) if (s.supervise) return s;
  return undefined;
}

/** Last part of the credential stage: `route.auth` injected, the body encoded back. */
function withAuth(
  cfg: PipelineConfig,
  info: RequestInfo,
  route: Route,
  res: ServerResponse,
  prepared: Prepared,
  bodyText: string | undefined,
  utf8: boolean,
): Prepared | undefined {
  // route.auth: the real credential replaces whatever the agent sent in that header
  const headers = { ...prepared.headers };
  if (route.auth) {
    const value = info.session.credentials.values.get(route.auth.token_ref);
    if (value === undefined) {
      refuse(
        cfg,
        info,
        res,
        403,
        "deny_placeholder",
        `credential ${route.auth.token_ref} is not loaded`,
      );
      return undefined;
    }
    const scheme = route.auth.scheme;
    const lower = scheme.toLowerCase();
    if (lower === "bearer" || lower === "token") {
      headers.authorization = `${scheme} ${value}`;
    } else {
      headers[lower] = value;
    }
    info.credentials ??= [];
    if (!info.credentials.includes(route.auth.token_ref))
      info.credentials.push(route.auth.token_ref);
  }
  let outBody: Buffer | undefined;
  if (bodyText !== undefined) {
    const wide = /[^\u0000-\u00ff]/.test(bodyText);
    outBody = Buffer.from(bodyText, utf8 || wide ? "utf8" : "latin1");
  }
  return { ...prepared, headers, body: outBody };
}

/**
 * After a redaction of the masked view, puts the real credentials back where the view has
 * `[CREDENTIAL]`. A surface the redaction did not touch is taken from the resolved request as is;
 * a touched one is rebuilt segment by segment. Anything that cannot be aligned fails closed.
 */
function mergeRedacted(
  redacted: OutboundRequest,
  view: PlaceholderRequest,
  resolved: PlaceholderRequest,
  session: Session,
  used: readonly { name: string }[],
): PlaceholderRequest | undefined {
  const candidates: string[] = [];
  for (const { name } of used) {
    const v = session.credentials.values.get(name);
    if (v !== undefined) candidates.push(v, encodeURIComponent(v));
  }
  candidates.sort((a, b) => b.length - a.length);
  const path = reinsert(redacted.path, view.path, resolved.path, candidates);
  if (path === undefined) return undefined;
  const headers: PlaceholderRequest["headers"] = {};
  for (const [name, value] of Object.entries(redacted.headers)) {
    if (value === undefined) continue;
    const v = view.headers[name];
    const r = resolved.headers[name];
    if (typeof value === "string") {
      if (typeof v !== "string" || typeof r !== "string") return undefined;
      const merged = reinsert(value, v, r, candidates);
      if (merged === undefined) return undefined;
      headers[name] = merged;
    } else {
      if (!Array.isArray(v) || !Array.isArray(r) || v.length !== value.length) return undefined;
      const list: string[] = [];
      for (let i = 0; i < value.length; i++) {
        const merged = reinsert(value[i] as string, v[i] as string, r[i] as string, candidates);
        if (merged === undefined) return undefined;
        list.push(merged);
      }
      headers[name] = list;
    }
  }
  const out: PlaceholderRequest = { ...resolved, path, headers };
  if (redacted.body !== undefined && view.body !== undefined && resolved.body !== undefined) {
    const rb = typeof redacted.body === "string" ? redacted.body : undefined;
    if (rb === undefined) {
      out.body = resolved.body; // untouched bytes
    } else {
      const merged = reinsert(rb, view.body, resolved.body, candidates);
      if (merged === undefined) return undefined;
      out.body = merged;
    }
  }
  return out;
}

export function reinsert(
  redacted: string,
  masked: string,
  resolved: string,
  candidates: readonly string[],
): string | undefined {
  if (redacted === masked) return resolved;
  const m = masked.split(MASK);
  const r = redacted.split(MASK);
  if (m.length !== r.length) return undefined;
  if (m.length === 1) return redacted;
  const first = m[0] as string;
  if (!resolved.startsWith(first)) return undefined;
  let at = first.length;
  let out = r[0] as string;
  for (let i = 1; i < m.length; i++) {
    const next = m[i] as string;
    const last = i === m.length - 1;
    const value = candidates.find(
      (c) =>
        resolved.startsWith(c, at) &&
        (last
          ? resolved.length === at + c.length + next.length && resolved.endsWith(next)
          : resolved.startsWith(next, at + c.length)),
    );
    if (value === undefined) return undefined;
    out += value + (r[i] as string);
    at += value.length + next.length;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Forward

export interface UpstreamOptions {
  target: Target;
  method: string;
  path: string;
  headers: OutgoingHttpHeaders;
}

/**
 * How the upstream for `host` may be reached. With the operator's `resolve`, wherever it says.
 * Otherwise a host that a route names exactly resolves freely, and any other (allowed through a
 * wildcard) must resolve to public addresses only: `refusal` for a private IP literal, `lookup`
 * (checks every DNS answer) for a name.
 */
export function upstreamAddressPolicy(
  cfg: PipelineConfig,
  session: Session,
  host: string,
): { refusal?: NodeJS.ErrnoException; lookup?: typeof publicOnlyLookup } {
  if (cfg.resolve || session.namesExactly(host)) return {};
  const refusal = literalRefusal(host);
  return refusal ? { refusal } : { lookup: publicOnlyLookup };
}

/** Opens the upstream request: verified TLS against the original host name, always. */
export function openUpstream(cfg: PipelineConfig, session: Session, o: UpstreamOptions) {
  const policy = upstreamAddressPolicy(cfg, session, o.target.host);
  const dest = cfg.resolve
    ? cfg.resolve(o.target.host, o.target.port)
    : { host: o.target.host, port: o.target.port };
  const common = {
    host: dest.host,
    port: dest.port,
    method: o.method,
    path: o.path,
    headers: o.headers,
    ...(policy.lookup ? { lookup: policy.lookup } : {}),
  };
  const up =
    o.target.scheme === "https"
      ? https().request({
          ...common,
          agent: session.httpsAgent(),
          ...(isIP(o.target.host) ? {} : { servername: o.target.host }),
          ...(cfg.upstreamCa ? { secureContext: cfg.upstreamCa } : {}),
          rejectUnauthorized: true,
          checkServerIdentity: (_name: string, cert: PeerCertificate) =>
            tls().checkServerIdentity(o.target.host, cert),
        })
      : httpRequest({ ...common, agent: session.httpAgent() });
  up.on("socket", (s: Socket) => session.trackUpstream(s));
  return up;
}

export function upstreamFailure(error: NodeJS.ErrnoException): {
  decision: AuditDecision;
  reason: string;
} {
  const code = error.code ?? "";
  if (code === PRIVATE_UPSTREAM)
    return { decision: "deny_route", reason: "private_upstream_address" };
  if (TLS_ERRORS.has(code) || /certificate|cert|ssl|tls/i.test(code)) {
    return { decision: "upstream_tls_error", reason: code || "tls" };
  }
  return { decision: "upstream_error", reason: code || "error" };
}

function upstreamWhy(f: { decision: AuditDecision }): string {
  return f.decision === "deny_route"
    ? "the host resolves to a non-public address and no route names it exactly"
    : "the upstream could not be reached securely";
}

function responseHeaders(headers: IncomingHttpHeaders): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  const listed = new Set(
    (typeof headers.connection === "string" ? headers.connection : "")
      .split(",")
      .map((t) => t.trim().toLowerCase()),
  );
  for (const [k, v] of Object.entries(headers)) {
    if (v === undefined || HOP_BY_HOP.has(k) || listed.has(k)) continue;
    out[k] = v;
  }
  return out;
}

function inboundScanWanted(route: Route): boolean {
  const d = route.dlp?.inbound_detectors;
  if (d === false) return false;
  return d === undefined || d.includes("naive_injection_detection");
}

const TEXTY =
  /^(?:text\/|application\/(?:json|xml|javascript|x-ndjson|x-www-form-urlencoded)|[^;]*\+(?:json|xml))/i;

// ---------------------------------------------------------------------------------------------
// Composition

/** Handles one request on an intercepted connection (`https`) or an absolute-URI request (`http`). */
export async function handleRequest(
  cfg: PipelineConfig,
  session: Session,
  req: IncomingMessage,
  res: ServerResponse,
  target: Target,
  path: string,
): Promise<void> {
  const info: RequestInfo = { session, target, method: (req.method ?? "GET").toUpperCase(), path };
  if (!cutoffStage(cfg, info, res)) return void req.resume();
  // bounded per session: pipelined requests are handled concurrently, each may buffer a body and
  // hold an upstream connection, so one connection could otherwise hold any number of them
  if (session.inFlight >= cfg.maxRequestsInFlight) {
    res.setHeader("connection", "close");
    res.setHeader("retry-after", "1");
    refuse(cfg, info, res, 503, "deny_bad_request", "too many requests in flight for this bottle", {
      reason: "too_many_requests_in_flight",
    });
    return void req.resume();
  }
  session.inFlight++;
  res.once("close", () => {
    session.inFlight--;
  });
  if (!hostStage(cfg, info, req, res)) return void req.resume();
  const service = cfg.services.byHost.get(target.host);
  if (service) return serviceStage(cfg, info, service, req, res);
  if (cfg.llmHandler && target.scheme === "https" && session.isLlmHost(target.host)) {
    audit(cfg, info, "llm");
    try {
      await cfg.llmHandler(req, res, {
        sessionId: session.id,
        bottle: session.bottle,
        ...(session.agent === undefined ? {} : { agent: session.agent }),
        host: target.host,
        port: target.port,
      });
    } catch {
      if (!res.headersSent)
        refuse(cfg, info, res, 502, "upstream_error", "the LLM pipeline failed", {
          reason: "llm_handler",
        });
      else res.destroy();
    }
    return;
  }
  const route = routeStage(cfg, info, req, res);
  if (!route) return void req.resume();
  if (!addressStage(cfg, info, res)) return void req.resume();
  const body = await bodyStage(cfg, info, req, res);
  if (!body.ok) return;
  if (!cutoffStage(cfg, info, res)) return;
  const prepared = credentialAndDlpStage(cfg, info, route, req, res, body.body, false);
  if (!prepared) return;
  if (prepared.hold && !(await superviseStage(cfg, info, prepared, res, body.body?.length ?? 0)))
    return;
  // the agent went away while its request was held: a released request is not sent for nobody
  if (prepared.hold && req.socket.destroyed) return;
  if (!cutoffStage(cfg, info, res)) return;
  forwardStage(cfg, info, prepared, res, body.body?.length ?? 0);
}

/**
 * Stage: a reserved host answered by a proxy service inside this process (never forwarded). The
 * service learns who asks from the session the request came through, not from anything it sent.
 */
async function serviceStage(
  cfg: PipelineConfig,
  info: RequestInfo,
  service: ProxyService,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  const s = info.session;
  try {
    await service.handle(req, res, {
      sessionId: s.id,
      bottle: s.bottle,
      ...(s.agent === undefined ? {} : { agent: s.agent }),
      host: info.target.host,
      port: info.target.port,
    });
    audit(cfg, info, "service", { status: res.statusCode, reason: service.name });
  } catch {
    if (!res.headersSent) {
      refuse(cfg, info, res, 500, "service", `the ${service.name} service failed`, {
        reason: `${service.name}:error`,
      });
    } else res.destroy();
  }
}

/**
 * Stage: supervise. The route's DLP action is `supervise` and a supervisor exists: the request is
 * held (nothing forwarded) until the supervisor decides within its own bounded wait; anything but
 * an approval (denial, timeout, error) refuses it.
 */
async function superviseStage(
  cfg: PipelineConfig,
  info: RequestInfo,
  p: Prepared,
  res: ServerResponse,
  bytesIn: number,
): Promise<boolean> {
  const supervisor = supervisorOf(cfg);
  const s = info.session;
  let approved = false;
  if (supervisor?.supervise) {
    try {
      approved = await supervisor.supervise({
        sessionId: s.id,
        bottle: s.bottle,
        ...(s.agent === undefined ? {} : { agent: s.agent }),
        host: info.target.host,
        port: info.target.port,
        method: info.method,
        path: auditPath(s, info.path),
        route: info.route ?? -1,
        findings: findingsView(p.hold ?? []) ?? [],
      });
    } catch {
      approved = false;
    }
  }
  if (approved === true) {
    p.reason = "supervise_approved";
    return true;
  }
  refuse(
    cfg,
    info,
    res,
    403,
    "deny_dlp",
    "secret in the outbound request; the operator did not approve it",
    {
      reason: "supervise_denied",
      findings: findingsView(p.hold ?? []),
      bytesIn,
    },
  );
  return false;
}

/** Stage: forward, then stream the response back (with the inbound scan where the route asks). */
function forwardStage(
  cfg: PipelineConfig,
  info: RequestInfo,
  p: Prepared,
  res: ServerResponse,
  bytesIn: number,
  attempt = 0,
): void {
  const session = info.session;
  const headers = { ...p.headers } as OutgoingHttpHeaders;
  const scanIn = inboundScanWanted(p.route);
  if (scanIn) headers["accept-encoding"] = "identity";
  if (p.body !== undefined) {
    headers["content-length"] = p.body.length;
    delete headers["transfer-encoding"];
  }
  const up = openUpstream(cfg, session, {
    target: info.target,
    method: p.method,
    path: p.path,
    headers,
  });
  const extra = {
    findings: p.decision === "redact" ? findingsView(p.findings) : undefined,
    ...(p.reason === undefined ? {} : { reason: p.reason }),
  };
  let finished = false;
  let responded = false;
  const fail = (error: NodeJS.ErrnoException) => {
    if (finished) return;
    finished = true;
    // A pooled keep-alive connection the upstream closed while idle: the request never reached
    // it, so it is sent once more on a fresh connection (the body is buffered).
    if (attempt === 0 && !responded && up.reusedSocket && RETRYABLE.has(error.code ?? "")) {
      forwardStage(cfg, info, p, res, bytesIn, 1);
      return;
    }
    const f = upstreamFailure(error);
    refuse(cfg, info, res, f.decision === "deny_route" ? 403 : 502, f.decision, upstreamWhy(f), {
      reason: f.reason,
      bytesIn,
    });
  };
  up.on("error", fail);
  res.on("close", () => {
    if (!finished) up.destroy();
  });
  up.on("response", (upRes) => {
    responded = true;
    const outHeaders = responseHeaders(upRes.headers);
    const ct = String(upRes.headers["content-type"] ?? "");
    let bytesOut = 0;
    const done = (decision: AuditDecision, more: Partial<AuditEvent> = {}) => {
      if (finished) return;
      finished = true;
      audit(cfg, info, decision, {
        status: upRes.statusCode ?? 0,
        bytesIn,
        bytesOut,
        ...extra,
        ...more,
      });
    };
    if (!scanIn || !TEXTY.test(ct) || info.method === "HEAD") {
      res.writeHead(upRes.statusCode ?? 502, outHeaders);
      upRes.on("data", (c: Buffer) => {
        bytesOut += c.length;
      });
      upRes.pipe(res);
      upRes.on("end", () => done(p.decision));
      upRes.on("error", () => res.destroy());
      return;
    }
    const encoding = String(upRes.headers["content-encoding"] ?? "identity").toLowerCase();
    if (encoding !== "identity") {
      upRes.destroy();
      finished = false;
      fail(
        Object.assign(new Error("encoded response"), { code: "encoded_response_not_scannable" }),
      );
      return;
    }
    if (/^text\/event-stream/i.test(ct)) {
      const stream = createStreamScanner(session.injection, { surface: "response" });
      res.writeHead(upRes.statusCode ?? 502, outHeaders);
      upRes.on("data", (c: Buffer) => {
        if (finished) return;
        stream.write(c);
        if (stream.blocked) {
          done("deny_injection", { reason: "naive_injection_detection" });
          upRes.destroy();
          res.destroy();
          return;
        }
        bytesOut += c.length;
        res.write(c);
      });
      upRes.on("end", () => {
        stream.end();
        if (stream.blocked) {
          done("deny_injection", { reason: "naive_injection_detection" });
          res.destroy();
          return;
        }
        res.end();
        done(p.decision);
      });
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    upRes.on("data", (c: Buffer) => {
      if (finished) return;
      size += c.length;
      if (size > cfg.maxResponseScanBytes) {
        finished = true;
        upRes.destroy();
        refuse(
          cfg,
          info,
          res,
          502,
          "deny_injection",
          "the response is too large for the inbound scan",
          {
            reason: "response_over_scan_limit",
            bytesIn,
          },
        );
        return;
      }
      chunks.push(c);
    });
    upRes.on("end", () => {
      if (finished) return;
      const buf = Buffer.concat(chunks, size);
      const scan = session.injection.scan(buf.toString("utf8"), "response");
      if (scan.blocked) {
        finished = true;
        refuse(cfg, info, res, 502, "deny_injection", "the response carries a prompt injection", {
          reason: "naive_injection_detection",
          status: upRes.statusCode ?? 0,
          bytesIn,
        });
        return;
      }
      outHeaders["content-length"] = buf.length;
      delete outHeaders["transfer-encoding"];
      res.writeHead(upRes.statusCode ?? 502, outHeaders);
      bytesOut = buf.length;
      res.end(buf);
      done(p.decision);
    });
  });
  up.end(p.body);
}

/**
 * WebSocket upgrade on an allowed route: same checks on the upgrade request, then the agent's
 * frames are parsed and each text/binary message is scanned with the route's DLP before it goes
 * upstream (see `inspectClientFrames`); the upstream's frames are relayed as they come.
 */
export async function handleUpgrade(
  cfg: PipelineConfig,
  session: Session,
  req: IncomingMessage,
  socket: Socket,
  head: Buffer,
  target: Target,
  path: string,
): Promise<void> {
  const info: RequestInfo = { session, target, method: (req.method ?? "GET").toUpperCase(), path };
  // a throwaway ServerResponse-like writer for refusals on a raw socket
  const res = rawResponder(socket);
  if (!cutoffStage(cfg, info, res)) return;
  if (!hostStage(cfg, info, req, res)) return;
  if (!llmUpgradeStage(cfg, info, socket)) return;
  if ((req.headers.upgrade ?? "").trim().toLowerCase() !== "websocket") {
    // only WebSocket frames can be inspected: any other protocol switch would be a blind pipe
    refuse(cfg, info, res, 400, "deny_bad_request", "only WebSocket upgrades are relayed", {
      reason: "upgrade_not_websocket",
    });
    return;
  }
  const route = routeStage(cfg, info, req, res);
  if (!route) return;
  if (!addressStage(cfg, info, res)) return;
  const prepared = credentialAndDlpStage(cfg, info, route, req, res, undefined, true);
  if (!prepared) return;
  // no extension is negotiated (permessage-deflate would hide the messages from the scan)
  delete (prepared.headers as Record<string, unknown>)["sec-websocket-extensions"];
  const up = openUpstream(cfg, session, {
    target,
    method: prepared.method,
    path: prepared.path,
    headers: prepared.headers as OutgoingHttpHeaders,
  });
  let settled = false;
  up.on("error", (error: NodeJS.ErrnoException) => {
    if (settled) return;
    settled = true;
    const f = upstreamFailure(error);
    refuse(cfg, info, res, f.decision === "deny_route" ? 403 : 502, f.decision, upstreamWhy(f), {
      reason: f.reason,
    });
  });
  up.on("response", (upRes) => {
    settled = true;
    // no upgrade: relay the answer and close
    const lines = [`HTTP/1.1 ${upRes.statusCode} ${upRes.statusMessage ?? ""}`];
    for (let i = 0; i < upRes.rawHeaders.length; i += 2)
      lines.push(`${upRes.rawHeaders[i]}: ${upRes.rawHeaders[i + 1]}`);
    socket.write(`${lines.join("\r\n")}\r\n\r\n`);
    upRes.pipe(socket);
    audit(cfg, info, "allow", {
      status: upRes.statusCode ?? 0,
      reason: "upgrade_refused_by_upstream",
    });
  });
  up.on("upgrade", (upRes, upSocket: Socket, upHead: Buffer) => {
    settled = true;
    session.trackUpstream(upSocket);
    const lines = [`HTTP/1.1 ${upRes.statusCode} ${upRes.statusMessage ?? "Switching Protocols"}`];
    for (let i = 0; i < upRes.rawHeaders.length; i += 2)
      lines.push(`${upRes.rawHeaders[i]}: ${upRes.rawHeaders[i + 1]}`);
    socket.write(`${lines.join("\r\n")}\r\n\r\n`);
    if (upHead.length > 0) socket.write(upHead);
    let bytesOut = upHead.length;
    upSocket.on("data", (c: Buffer) => {
      bytesOut += c.length;
    });
    const conn = session.conns.get(socket);
    if (conn) {
      conn.kind = "websocket";
      conn.method = info.method;
      conn.path = info.path;
      if (info.route !== undefined) conn.route = info.route;
    }
    // agent → upstream: frame by frame, each message scanned before any of it is forwarded
    const inspector = inspectClientFrames(cfg, info, route, socket, upSocket);
    if (head.length > 0) inspector.feed(head);
    upSocket.pipe(socket);
    let closed = false;
    const close = () => {
      if (closed) return;
      closed = true;
      socket.destroy();
      upSocket.destroy();
      audit(cfg, info, "websocket", { status: 101, bytesIn: inspector.bytesIn(), bytesOut });
    };
    socket.on("close", close);
    upSocket.on("close", close);
    // WebSocket has its own close handshake and no use for TCP half-close: once a side has
    // ended, its own write side is ended too (after what is queued is flushed; pipe ends the other)
    socket.on("end", () => {
      socket.end();
      upSocket.end();
    });
    upSocket.on("end", () => upSocket.end());
    socket.on("error", close);
    upSocket.on("error", close);
  });
  up.end();
}

/**
 * Stage (upgrades only): a provider API host never gets a WebSocket. LLM traffic is metered per
 * HTTP request by the LLM pipeline, so an upgrade is answered 426 (Upgrade Required) before any
 * handshake or route lookup, as the gateway's API door does: Codex then falls back to HTTPS
 * streaming at once instead of waiting on a refused socket. Nothing is forwarded.
 */
function llmUpgradeStage(cfg: PipelineConfig, info: RequestInfo, socket: Socket): boolean {
  if (!info.session.isLlmHost(info.target.host)) return true;
  audit(cfg, info, "deny_websocket", { status: 426, reason: "websocket_to_llm_host" });
  const body = JSON.stringify({
    error: {
      message: `bottlekit egress-proxy: ${info.target.host} is served over HTTP only here (no WebSocket); use HTTPS streaming`,
      type: "invalid_request_error",
      param: null,
      code: "websocket_not_supported",
    },
  });
  socket.end(
    "HTTP/1.1 426 Upgrade Required\r\ncontent-type: application/json\r\n" +
      `content-length: ${Buffer.byteLength(body)}\r\nx-should-retry: false\r\n` +
      "x-bottlekit-decision: deny_websocket\r\nconnection: close\r\n\r\n" +
      body,
  );
  return false;
}

/** Minimal ServerResponse stand-in for refusals on an upgrade socket. */
function rawResponder(socket: Socket): ServerResponse {
  let sent = false;
  const headers: Record<string, string | number> = {};
  const fake = {
    get headersSent() {
      return sent;
    },
    setHeader(k: string, v: string | number) {
      headers[k] = v;
    },
    writeHead(status: number, h: Record<string, string | number>) {
      sent = true;
      const all = { ...headers, ...h, connection: "close" };
      const lines = [`HTTP/1.1 ${status} ${STATUS_CODES[status] ?? "Error"}`];
      for (const [k, v] of Object.entries(all)) lines.push(`${k}: ${v}`);
      socket.write(`${lines.join("\r\n")}\r\n\r\n`);
      return fake;
    },
    end(body?: string) {
      if (body === undefined) socket.end();
      else socket.end(body);
    },
    destroy() {
      socket.destroy();
    },
  };
  return fake as unknown as ServerResponse;
}

/** Largest single WebSocket message from the agent (and frame): larger ones close the connection (1009). */
const WS_MAX_MESSAGE = 1024 * 1024;

/**
 * Agent → upstream WebSocket relay: frames are parsed (RFC 6455), control frames pass at once,
 * a text or binary message is held until complete and scanned with the route's DLP (as a request
 * body), then forwarded as received; `redact` forwards a text message with the findings redacted
 * (one new frame), a binary message or anything still blocking closes both sides with 1008. A
 * malformed frame (1002), a text message that is not UTF-8 (1007) or a message over the cap
 * (1009) closes both sides too. Every refusal is audited; nothing of a refused message is sent.
 */
function inspectClientFrames(
  cfg: PipelineConfig,
  info: RequestInfo,
  route: Route,
  socket: Socket,
  upSocket: Socket,
): { feed: (chunk: Buffer) => void; bytesIn: () => number } {
  const cap = Math.min(WS_MAX_MESSAGE, cfg.maxBodyBytes);
  const parser = new WsFrameParser(cap);
  const messages = new WsMessageAssembler(cap);
  const detectors = routeDetectors(route);
  let bytesIn = 0;
  let done = false;
  const send = (b: Buffer) => {
    if (!upSocket.write(b) && !socket.isPaused()) {
      socket.pause();
      upSocket.once("drain", () => socket.resume());
    }
  };
  const shut = (code: WsCloseCode, why: string) => {
    done = true;
    socket.pause();
    socket.end(closeFrame(code, why, false));
    upSocket.end(closeFrame(code === 1008 ? 1008 : 1001, "closed by the proxy", true));
    // the peers get the close frame; whichever does not hang up soon is dropped
    setTimeout(() => {
      socket.destroy();
      upSocket.destroy();
    }, 2000).unref();
  };
  const refuseMessage = (
    decision: AuditDecision,
    code: WsCloseCode,
    why: string,
    extra: Partial<AuditEvent>,
  ) => {
    audit(cfg, info, decision, { status: 101, ...extra });
    shut(code, why);
  };
  const message = (opcode: number, payload: Buffer, raw: Buffer[]) => {
    if (detectors.length === 0) {
      for (const r of raw) send(r);
      return;
    }
    const text = opcode === OP_TEXT;
    const asBody: OutboundRequest = {
      method: info.method,
      host: info.target.host,
      port: info.target.port,
      path: "/",
      headers: { "content-type": text ? "text/plain; charset=utf-8" : "application/octet-stream" },
      body: text ? payload.toString("utf8") : payload,
    };
    const limits = { detectors, maxBodyBytes: cap };
    const scan = scanRequest(info.session.scanner, asBody, limits);
    if (!scan.blocked) {
      for (const r of raw) send(r);
      return;
    }
    const blocking = scan.findings.filter((f) => f.severity === "block");
    if (route.dlp?.outbound_on_match === "redact" && text) {
      const redacted = redactRequest(asBody, scan);
      if (
        typeof redacted.body === "string" &&
        !scanRequest(info.session.scanner, redacted, limits).blocked
      ) {
        audit(cfg, info, "redact", {
          status: 101,
          reason: `websocket_message:${[...new Set(blocking.map((f) => f.rule))].join(",")}`,
          findings: findingsView(scan.findings),
        });
        send(encodeFrame(OP_TEXT, Buffer.from(redacted.body, "utf8"), true));
        return;
      }
    }
    refuseMessage("deny_dlp", 1008, "secret in a WebSocket message", {
      reason: `websocket_message:${[...new Set(blocking.map((f) => f.rule))].join(",")}`,
      findings: findingsView(scan.findings),
    });
  };
  const feed = (chunk: Buffer) => {
    if (done) return;
    bytesIn += chunk.length;
    let frames: WsFrame[];
    try {
      frames = parser.push(chunk);
      for (const frame of frames) {
        if (done) return;
        const ev = messages.push(frame);
        if (ev.kind === "control") send(frame.raw);
        else if (ev.kind === "message") message(ev.opcode, ev.payload, ev.raw);
      }
    } catch (error) {
      if (!(error instanceof WsProtocolError)) throw error;
      const size = error.closeCode === 1009;
      refuseMessage(
        size ? "deny_body_size" : "deny_bad_request",
        error.closeCode,
        size ? "message too large" : "protocol error",
        { reason: size ? "websocket_message_too_large" : "websocket_protocol_error" },
      );
    }
  };
  socket.on("data", feed);
  return { feed, bytesIn: () => bytesIn };
}
