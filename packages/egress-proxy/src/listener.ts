import { timingSafeEqual } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { connect as netConnect, type Socket } from "node:net";
import type { SecureContext, TLSSocket as TlsSocket } from "node:tls";
import { normalizeHost } from "@bottlekit/egress-dlp";
import { tls } from "./lazy-node.ts";
import { type RelayHandle, startRelay } from "./native-relay.ts";
import {
  askHint,
  audit,
  handleRequest,
  handleUpgrade,
  type PipelineConfig,
  type RequestInfo,
  refusalText,
  type Target,
  upstreamAddressPolicy,
  upstreamFailure,
} from "./pipeline.ts";
import type { Session } from "./session.ts";
import type { AuditDecision } from "./types.ts";

/**
 * A session's listener (unix socket, or loopback TCP with a Proxy-Authorization token): absolute-
 * URI HTTP requests, CONNECT and upgrades. CONNECT decides between a plain tunnel (the host's
 * routes need nothing at L7) and interception (TLS terminated with the bottle CA's leaf for the
 * CONNECT host, SNI required to match it, then each request runs the pipeline).
 */

/** Server context with no certificate: a client sending no SNI (or a wrong one) cannot finish. */
let noCertContext: SecureContext | undefined;

export function parseAuthority(authority: string): { host: string; port: number } | undefined {
  const m = /^(\[[0-9a-fA-F:.]+\]|[^:[\]]+):(\d{1,5})$/.exec(authority);
  if (!m) return undefined;
  const port = Number(m[2]);
  if (port < 1 || port > 65535) return undefined;
  const host = normalizeHost(m[1] as string);
  if (!host) return undefined;
  return { host, port };
}

function tokenOk(header: string | undefined, token: string): boolean {
  if (!header) return false;
  let presented: string | undefined;
  const basic = /^\s*Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header);
  if (basic) {
    const decoded = Buffer.from(basic[1] as string, "base64").toString("utf8");
    const colon = decoded.indexOf(":");
    presented = colon === -1 ? decoded : decoded.slice(colon + 1);
  } else {
    const bearer = /^\s*Bearer\s+(\S+)\s*$/i.exec(header);
    if (bearer) presented = bearer[1];
  }
  if (presented === undefined) return false;
  const a = Buffer.from(presented);
  const b = Buffer.from(token);
  return a.length === b.length && timingSafeEqual(a, b);
}

function rawRefusal(
  socket: Socket,
  status: number,
  decision: AuditDecision,
  body: string,
  extra = "",
): void {
  const reason =
    status === 403
      ? "Forbidden"
      : status === 407
        ? "Proxy Authentication Required"
        : status === 400
          ? "Bad Request"
          : "Bad Gateway";
  socket.end(
    `HTTP/1.1 ${status} ${reason}\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\n` +
      `x-bottlekit-decision: ${decision}\r\nconnection: close\r\n${extra}\r\n${body}`,
  );
}

/**
 * A bug in a stage must not take the process down or leave the agent hanging: the request fails
 * closed (500 if nothing was sent yet, otherwise the connection is dropped).
 */
function guard(work: Promise<void>, out: ServerResponse | Socket): void {
  work.catch(() => {
    if ("headersSent" in out && !out.headersSent) {
      out.writeHead(500, { "content-type": "text/plain", connection: "close" });
      out.end("bottlekit egress-proxy: internal error; the request was not forwarded\n");
      return;
    }
    out.destroy();
  });
}

/** A malformed or too slow request: 408 for a deadline (the client learns why), then the socket goes. */
function onClientError(error: NodeJS.ErrnoException, socket: Socket): void {
  if (error.code === "ERR_HTTP_REQUEST_TIMEOUT" && socket.writable) {
    socket.end(
      "HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
      () => socket.destroy(),
    );
    return;
  }
  socket.destroy();
}

/** Header and request deadlines of a session's servers (checked often enough to matter). */
function requestTimeouts(cfg: PipelineConfig): {
  headersTimeout: number;
  requestTimeout: number;
  connectionsCheckingInterval: number;
} {
  const headersTimeout = cfg.headersTimeoutMs;
  return {
    headersTimeout,
    requestTimeout: Math.max(300_000, headersTimeout),
    connectionsCheckingInterval: Math.max(50, Math.min(1_000, Math.floor(headersTimeout / 4))),
  };
}

/**
 * Creates the intercepting HTTP server of a session (never listens: TLS sockets are handed to it).
 * The host creates it with the session's first intercepted connection (see `createListener`).
 */
export function createInterceptServer(
  cfg: PipelineConfig,
  session: Session,
  targets: WeakMap<object, Target>,
): Server {
  const server = createServer({ keepAlive: true, ...requestTimeouts(cfg) });
  // Node enforces headersTimeout/requestTimeout only on servers that have emitted 'listening'
  // (that starts its connection checks); this one never listens (TLS sockets are handed to it),
  // so without this a request inside a tunnel could send its headers forever
  server.emit("listening");
  server.on("request", (req: IncomingMessage, res: ServerResponse) => {
    const target = targets.get(req.socket);
    const url = req.url ?? "/";
    if (!target || !url.startsWith("/")) {
      res.writeHead(400, { "content-type": "text/plain", connection: "close" });
      res.end("bottlekit egress-proxy: expected an origin-form request inside the tunnel\n");
      return;
    }
    guard(handleRequest(cfg, session, req, res, target, url), res);
  });
  server.on("upgrade", (req: IncomingMessage, socket: Socket, head: Buffer) => {
    const target = targets.get(req.socket);
    const url = req.url ?? "/";
    if (!target || !url.startsWith("/")) {
      socket.destroy();
      return;
    }
    guard(handleUpgrade(cfg, session, req, socket, head, target, url), socket);
  });
  server.on("clientError", onClientError);
  return server;
}

/**
 * Creates one listener server for a session; `token` set = loopback TCP with Proxy-Authorization.
 * `interceptServer` gives the session's intercepting server, called only by a CONNECT that is
 * intercepted (a session whose traffic is all tunnels or refusals never creates one).
 */
export function createListener(
  cfg: PipelineConfig,
  session: Session,
  interceptServer: () => Server,
  targets: WeakMap<object, Target>,
  token: string | undefined,
): Server {
  const server = createServer({ keepAlive: true, ...requestTimeouts(cfg) });
  server.on("connection", (socket: Socket) => {
    if (session.conns.size >= cfg.maxConnectionsPerSession) {
      // bounded per session: one bottle cannot hold the host's descriptors (other sessions go on)
      socket.destroy();
      return;
    }
    session.trackConn(socket, {
      kind: "http",
      host: "",
      port: 0,
      method: "",
      path: "",
      bytesIn: () => socket.bytesRead,
      bytesOut: () => socket.bytesWritten,
    });
  });
  server.on("clientError", onClientError);

  const authorized = (req: IncomingMessage): boolean =>
    token === undefined || tokenOk(req.headers["proxy-authorization"], token);

  const denyAuth = (info: RequestInfo): string => {
    audit(cfg, info, "deny_auth", { status: 407 });
    return refusalText(info.target.host, info.target.port, "missing or wrong Proxy-Authorization");
  };

  server.on("request", (req: IncomingMessage, res: ServerResponse) => {
    const raw = req.url ?? "";
    let url: URL | undefined;
    try {
      url = /^https?:\/\//i.test(raw) ? new URL(raw) : undefined;
    } catch {
      url = undefined;
    }
    const host = url ? normalizeHost(url.hostname) : undefined;
    if (url?.protocol !== "http:" || !host) {
      const body =
        "bottlekit egress-proxy: this is a forward proxy; send absolute http:// URIs or CONNECT\n";
      res.writeHead(400, {
        "content-type": "text/plain",
        "content-length": Buffer.byteLength(body),
      });
      res.end(body);
      return;
    }
    const target: Target = { scheme: "http", host, port: url.port ? Number(url.port) : 80 };
    const path = `${url.pathname}${url.search}`;
    if (!authorized(req)) {
      const body = denyAuth({ session, target, method: req.method ?? "GET", path });
      res.writeHead(407, {
        "proxy-authenticate": 'Basic realm="bottlekit"',
        "content-type": "text/plain",
        "content-length": Buffer.byteLength(body),
      });
      res.end(body);
      return;
    }
    const conn = session.conns.get(req.socket);
    if (conn) Object.assign(conn, { host, port: target.port });
    req.headers.host = url.host;
    guard(handleRequest(cfg, session, req, res, target, path), res);
  });

  server.on("upgrade", (req: IncomingMessage, socket: Socket, head: Buffer) => {
    let url: URL | undefined;
    try {
      url = new URL(req.url ?? "");
    } catch {
      url = undefined;
    }
    const host = url ? normalizeHost(url.hostname) : undefined;
    if (url?.protocol !== "http:" || !host) {
      rawRefusal(socket, 400, "deny_bad_request", "expected an absolute http:// URI\n");
      return;
    }
    const target: Target = { scheme: "http", host, port: url.port ? Number(url.port) : 80 };
    const path = `${url.pathname}${url.search}`;
    if (!authorized(req)) {
      rawRefusal(
        socket,
        407,
        "deny_auth",
        denyAuth({ session, target, method: "GET", path }),
        'proxy-authenticate: Basic realm="bottlekit"\r\n',
      );
      return;
    }
    req.headers.host = url.host;
    guard(handleUpgrade(cfg, session, req, socket, head, target, path), socket);
  });

  server.on("connect", (req: IncomingMessage, socket: Socket, head: Buffer) => {
    try {
      onConnect(req, socket, head);
    } catch {
      socket.destroy(); // fail closed: nothing was forwarded
    }
  });
  const onConnect = (req: IncomingMessage, socket: Socket, head: Buffer): void => {
    socket.on("error", () => socket.destroy());
    const parsed = parseAuthority(req.url ?? "");
    if (!parsed) {
      rawRefusal(socket, 400, "deny_bad_request", "CONNECT needs host:port\n");
      return;
    }
    const target: Target = { scheme: "https", host: parsed.host, port: parsed.port };
    const info: RequestInfo = { session, target, method: "CONNECT", path: "" };
    if (!authorized(req)) {
      rawRefusal(
        socket,
        407,
        "deny_auth",
        denyAuth(info),
        'proxy-authenticate: Basic realm="bottlekit"\r\n',
      );
      return;
    }
    if (session.cutoff) {
      audit(cfg, info, "deny_cutoff", { status: 403 });
      rawRefusal(
        socket,
        403,
        "deny_cutoff",
        refusalText(target.host, target.port, "the bottle's egress is cut off"),
      );
      return;
    }
    const conn = session.conns.get(socket);
    if (conn) Object.assign(conn, { host: target.host, port: target.port, method: "CONNECT" });
    if (cfg.services.byHost.has(target.host)) {
      // a reserved host: always intercepted and answered by its service, never forwarded
      intercept(cfg, session, info, socket, head, interceptServer(), targets);
      return;
    }
    const decision = session.connectDecision(
      target.host,
      target.port,
      cfg.llmHandler !== undefined,
    );
    if (decision.kind === "deny") {
      audit(cfg, info, "deny_route", { status: 403, reason: "no_route_for_host" });
      rawRefusal(
        socket,
        403,
        "deny_route",
        refusalText(target.host, target.port, "no route declares this host and port", askHint(cfg)),
      );
      return;
    }
    if (upstreamAddressPolicy(cfg, session, target.host).refusal) {
      audit(cfg, info, "deny_route", { status: 403, reason: "private_upstream_address" });
      rawRefusal(
        socket,
        403,
        "deny_route",
        refusalText(
          target.host,
          target.port,
          "the address is not public and no route names it exactly",
        ),
      );
      return;
    }
    if (decision.kind === "tunnel") {
      if (decision.route !== undefined) info.route = decision.route;
      tunnel(cfg, session, info, socket, head);
      return;
    }
    intercept(cfg, session, info, socket, head, interceptServer(), targets);
  };
  return server;
}

function tunnel(
  cfg: PipelineConfig,
  session: Session,
  info: RequestInfo,
  socket: Socket,
  head: Buffer,
): void {
  const { host, port } = info.target;
  const dest = cfg.resolve ? cfg.resolve(host, port) : { host, port };
  const native = cfg.nativeRelay;
  // once the tunnel has carried `afterBytes`, it is handed to the native relay (see `handOff`)
  let armed = native.binary !== undefined;
  let handOffAt = native.afterBytes;
  const progress = () => {
    if (armed && up.bytesRead + up.bytesWritten >= handOffAt) {
      armed = false;
      handOff();
    }
  };
  // upstream → agent without a stream in between: see `relayReads`
  const relay = relayReads(socket, progress);
  const { lookup } = upstreamAddressPolicy(cfg, session, host);
  const up = netConnect({
    host: dest.host,
    port: dest.port,
    onread: relay.onread,
    ...(lookup ? { lookup } : {}),
  });
  relay.source(up);
  session.trackUpstream(up);
  const conn = session.conns.get(socket);
  if (conn) {
    conn.kind = "tunnel";
    conn.bytesIn = () => up.bytesWritten;
    conn.bytesOut = () => up.bytesRead;
    if (info.route !== undefined) conn.route = info.route;
  }
  let connected = false;
  let audited = false;
  /** Set once the native relay owns the sockets: the JS side no longer acts on them. */
  let handedOff = false;
  let uploads: ReturnType<typeof batchWrites> | undefined;
  const finish = (extra = { toUpstream: 0, toAgent: 0 }) => {
    if (audited) return;
    audited = true;
    audit(cfg, info, "tunnel", {
      status: 200,
      bytesIn: up.bytesWritten + extra.toUpstream,
      bytesOut: up.bytesRead + extra.toAgent,
      ...(handedOff ? { reason: "native_relay" } : {}),
    });
  };

  /**
   * Hands the tunnel to the native relay: stop reading both sockets, wait until everything the
   * JS relay accepted is written, then (in one synchronous step, so neither socket is read in
   * between) take what the agent's socket had buffered, start the relay with both descriptors and
   * close this process's copies. The relay owns the connection from then on; if it cannot be
   * started, the JS relay goes on as before.
   */
  const handOff = () => {
    socket.pause();
    relay.hold(true);
    // an agent that writes without reading until its write completes would never let the
    // download drain while its upload is not read: give up after a while, carry on in JS and try
    // again after another `afterBytes`
    let gaveUp = false;
    const giveUp = setTimeout(() => {
      if (handedOff || socket.destroyed || up.destroyed) return;
      gaveUp = true;
      relay.hold(false);
      socket.resume();
      handOffAt = up.bytesRead + up.bytesWritten + native.afterBytes;
      armed = true;
    }, HAND_OFF_PATIENCE_MS);
    giveUp.unref();
    const settle = () => {
      if (gaveUp || handedOff || socket.destroyed || up.destroyed || !native.binary) return;
      if (uploads?.pending() || relay.inFlight() > 0) {
        setImmediate(settle);
        return;
      }
      if (socket.writableLength > 0) {
        socket.once("drain", settle);
        return;
      }
      if (up.writableLength > 0) {
        up.once("drain", settle);
        return;
      }
      clearTimeout(giveUp);
      uploads?.stop();
      const buffered: Buffer[] = [];
      for (let c = socket.read() as Buffer | null; c !== null; c = socket.read() as Buffer | null)
        buffered.push(c);
      const prefix = Buffer.concat(buffered);
      const record = session.conns.get(socket);
      const handle = startRelay(native.binary, socket, up, prefix, (moved) => {
        session.conns.delete(handle as RelayHandle);
        finish(moved);
      });
      if (!handle) {
        // the relay could not start: carry on in JS with what was read
        if (prefix.length > 0) socket.unshift(prefix);
        uploads = batchWrites(socket, up);
        relay.hold(false);
        socket.resume();
        return;
      }
      handedOff = true;
      native.handedOff++;
      if (record) {
        const inBefore = up.bytesWritten;
        const outBefore = up.bytesRead;
        record.bytesIn = () => inBefore;
        record.bytesOut = () => outBefore;
        session.conns.set(handle, record);
      }
      socket.destroy();
      up.destroy();
    };
    setImmediate(settle);
  };

  up.once("connect", () => {
    connected = true;
    up.setNoDelay(true);
    socket.setNoDelay(true);
    socket.write("HTTP/1.1 200 Connection Established\r\n\r\n");
    if (head.length > 0) up.write(head);
    uploads = batchWrites(socket, up, progress);
  });
  // the upstream finished sending: the agent gets the rest (writes may still be in flight), then FIN
  let upEnded = false;
  up.on("end", () => {
    if (handedOff) return;
    armed = false;
    upEnded = true;
    socket.end();
  });
  up.on("error", (error: NodeJS.ErrnoException) => {
    if (handedOff) return;
    if (!connected) {
      audited = true;
      const f = upstreamFailure(error);
      const status = f.decision === "deny_route" ? 403 : 502;
      audit(cfg, info, f.decision, { status, reason: f.reason });
      rawRefusal(
        socket,
        status,
        f.decision,
        refusalText(
          host,
          port,
          f.decision === "deny_route"
            ? "the host resolves to a non-public address and no route names it exactly"
            : "the upstream could not be reached",
        ),
      );
      return;
    }
    socket.destroy();
  });
  up.on("close", (hadError: boolean) => {
    if (handedOff) return;
    if (connected) finish();
    if (hadError || !upEnded) socket.destroy();
  });
  socket.on("end", () => {
    armed = false;
  });
  socket.on("close", () => {
    if (!handedOff) up.destroy();
  });
}

/**
 * The upload side of a plain tunnel (agent → upstream). The agent's socket is accepted by the
 * listener, so it cannot read into the tunnel's own buffers (Node offers that only on sockets it
 * connects) and each read arrives as its own 64 KiB chunk. Instead of one write per chunk (what
 * `pipe` does), the chunks that arrive in one turn of the event loop are written together (one
 * `writev`): the upstream is corked at the first chunk and uncorked once the loop has handled the
 * reads of that turn. Backpressure as with `pipe`: reading pauses until the upstream drains.
 */
function batchWrites(
  from: Socket,
  to: Socket,
  progress?: () => void,
): { stop: () => void; pending: () => boolean } {
  let corked = false;
  let stopped = false;
  const flush = () => {
    corked = false;
    if (to.destroyed) return;
    to.uncork();
    if (stopped) return;
    if (to.writableNeedDrain && !from.isPaused()) {
      from.pause();
      to.once("drain", () => {
        if (!stopped) from.resume();
      });
    }
    progress?.();
  };
  const onData = (chunk: Buffer) => {
    if (!corked) {
      corked = true;
      to.cork();
      setImmediate(flush);
    }
    to.write(chunk);
  };
  const onEnd = () => to.end();
  from.on("data", onData);
  from.on("end", onEnd);
  return {
    stop: () => {
      stopped = true;
      from.off("data", onData);
      from.off("end", onEnd);
    },
    pending: () => corked,
  };
}

/** How long a hand-over to the native relay waits for the JS relay's writes to drain. */
const HAND_OFF_PATIENCE_MS = 250;

const RELAY_FIRST = 8 * 1024;
const RELAY_MAX = 1024 * 1024;

/**
 * The download side of a plain tunnel (upstream → agent), relayed straight from the upstream
 * socket's reads. A `pipe` costs one fresh 64 KiB buffer per read, a 'data' event and the stream
 * machinery for every chunk; here the upstream reads into buffers the tunnel owns and each read is
 * written to the agent as it is, with no copy: two buffers take turns, so one can be written while
 * the next read fills the other, and reading pauses while both are still being written (that is
 * the backpressure). A buffer is only read into again once the write holding it has completed
 * (socket writes complete in order). Buffers start at 8 KiB (what an idle tunnel holds), double
 * with each read that fills one, up to 1 MiB (what makes bulk transfers cheap: 16 times fewer
 * reads than a pipe's 64 KiB), and drop back to 8 KiB after a read that used less than 1/16.
 */
function relayReads(
  to: Socket,
  progress: () => void,
): {
  onread: { buffer: () => Buffer; callback: (n: number, buf: Buffer) => boolean };
  source: (from: Socket) => void;
  /** Stops (true) or restarts (false) reading the upstream, whatever the writes do. */
  hold: (on: boolean) => void;
  /** Writes to the agent not yet completed. */
  inFlight: () => number;
} {
  let from: Socket | undefined;
  let size = RELAY_FIRST;
  const bufs: (Buffer | undefined)[] = [undefined, undefined];
  let turn = 0;
  let inFlight = 0;
  let held = false;
  const written = () => {
    inFlight--;
    // unconditional: a read paused by the callback returning false is not `isPaused()`
    if (!held && from && !from.destroyed) from.resume();
  };
  return {
    onread: {
      buffer: () => {
        let b = bufs[turn];
        if (b === undefined || b.length !== size) {
          b = Buffer.allocUnsafe(size);
          bufs[turn] = b;
        }
        return b;
      },
      callback: (n, buf) => {
        if (n === buf.length) size = Math.min(size * 2, RELAY_MAX);
        else if (n < buf.length / 16) size = RELAY_FIRST;
        inFlight++;
        turn ^= 1;
        to.write(buf.subarray(0, n), written);
        if (!held) progress();
        return !held && inFlight < 2;
      },
    },
    source: (s) => {
      from = s;
    },
    hold: (on) => {
      held = on;
      if (!from || from.destroyed) return;
      // on a socket reading into its own buffers, pause() stops the reads at once
      if (on) from.pause();
      else if (inFlight < 2) from.resume();
    },
    inFlight: () => inFlight,
  };
}

function intercept(
  cfg: PipelineConfig,
  session: Session,
  info: RequestInfo,
  socket: Socket,
  head: Buffer,
  server: Server,
  targets: WeakMap<object, Target>,
): void {
  // before the agent is told the tunnel is open: a failure here drops the connection instead
  const { createSecureContext, TLSSocket } = tls();
  const host = info.target.host;
  const ctx = session.ca.contextFor(host);
  ctx.catch(() => undefined);
  const conn = session.conns.get(socket);
  if (conn) conn.kind = "intercept";
  socket.write("HTTP/1.1 200 Connection Established\r\n\r\n");
  if (head.length > 0) socket.unshift(head);
  let sniProblem: string | undefined;
  noCertContext ??= createSecureContext({});
  const tlsSocket = new TLSSocket(socket, {
    isServer: true,
    secureContext: noCertContext,
    ALPNProtocols: ["http/1.1"],
    SNICallback: (servername, cb) => {
      const name = servername.toLowerCase().replace(/\.$/, "");
      if (name !== host) {
        sniProblem = "sni_mismatch";
        cb(new Error("SNI does not match the CONNECT host"), undefined);
        return;
      }
      const cached = session.ca.cached(host);
      if (cached) {
        cb(null, cached);
        return;
      }
      ctx.then(
        (c) => cb(null, c),
        (e: Error) => cb(e, undefined),
      );
    },
  });
  let secure = false;
  // a client that never finishes its handshake must not hold the socket (and the leaf) forever
  const stall = setTimeout(() => {
    if (secure || tlsSocket.destroyed) return;
    sniProblem = "client_tls_handshake_timeout";
    tlsSocket.destroy();
    socket.destroy();
    audit(cfg, info, "deny_bad_request", { reason: sniProblem });
  }, cfg.handshakeTimeoutMs);
  stall.unref();
  tlsSocket.once("close", () => clearTimeout(stall));
  tlsSocket.once("secure", () => {
    clearTimeout(stall);
    const servername = (tlsSocket as TlsSocket & { servername?: string | false }).servername;
    if (typeof servername !== "string" || servername.toLowerCase().replace(/\.$/, "") !== host) {
      sniProblem = "missing_sni";
      tlsSocket.destroy();
      audit(cfg, info, "deny_sni", { reason: sniProblem });
      return;
    }
    secure = true;
    targets.set(tlsSocket, info.target);
    server.emit("connection", tlsSocket);
  });
  tlsSocket.once("error", () => {
    tlsSocket.destroy();
    if (secure) return;
    if (sniProblem === "sni_mismatch") audit(cfg, info, "deny_sni", { reason: sniProblem });
    else
      audit(cfg, info, "deny_bad_request", { reason: sniProblem ?? "client_tls_handshake_failed" });
  });
}
