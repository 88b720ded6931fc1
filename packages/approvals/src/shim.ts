import { readFileSync } from "node:fs";
import { request as httpRequest, type IncomingMessage } from "node:http";
import { createInterface } from "node:readline";
import type * as Tls from "node:tls";
import { APPROVALS_URL } from "./service.ts";

/**
 * The stdio shim for agents that speak MCP only over stdio: each JSON-RPC line read from stdin is
 * POSTed to the approvals server (`https://policy.bottlekit.internal/mcp`) through the bottle's
 * proxy (`HTTPS_PROXY`), and each answer is written to stdout as one line. Messages are sent in
 * order, one at a time; the server is stateless, so nothing is kept between them.
 */

export interface ShimOptions {
  stdin: NodeJS.ReadableStream;
  stdout: NodeJS.WritableStream;
  env: NodeJS.ProcessEnv;
  /** Default: `APPROVALS_URL`. */
  url?: string;
  /** Extra trusted CA PEM; default: the file named by `NODE_EXTRA_CA_CERTS` or `SSL_CERT_FILE`. */
  ca?: string;
}

function proxyOf(env: NodeJS.ProcessEnv): URL {
  const raw = env.HTTPS_PROXY || env.https_proxy || env.ALL_PROXY || env.all_proxy;
  if (!raw)
    throw new Error(
      "HTTPS_PROXY is not set: the shim reaches the approvals server only through the bottle's proxy",
    );
  return new URL(raw);
}

function caOf(o: ShimOptions, tls: typeof Tls): string[] {
  const file = o.env.NODE_EXTRA_CA_CERTS || o.env.SSL_CERT_FILE;
  const extra = o.ca ?? (file ? readFileSync(file, "utf8") : undefined);
  return extra ? [...tls.rootCertificates, extra] : [...tls.rootCertificates];
}

function readAll(res: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    res.on("data", (c: Buffer) => chunks.push(c));
    res.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    res.on("error", reject);
  });
}

/** One POST through the proxy (CONNECT, then TLS with SNI = the reserved host). */
function post(
  tlsModule: typeof Tls,
  url: URL,
  proxy: URL,
  ca: string[],
  body: string,
): Promise<{ status: number; type: string; text: string }> {
  return new Promise((resolve, reject) => {
    const auth =
      proxy.username || proxy.password
        ? {
            "proxy-authorization": `Basic ${Buffer.from(`${decodeURIComponent(proxy.username)}:${decodeURIComponent(proxy.password)}`).toString("base64")}`,
          }
        : {};
    const port = Number(url.port || 443);
    const connect = httpRequest({
      host: proxy.hostname,
      port: Number(proxy.port || 80),
      method: "CONNECT",
      path: `${url.hostname}:${port}`,
      headers: { host: `${url.hostname}:${port}`, ...auth },
    });
    connect.on("error", reject);
    connect.on("connect", (res, socket) => {
      if (res.statusCode !== 200) {
        socket.destroy();
        reject(new Error(`the proxy refused the connection (${res.statusCode})`));
        return;
      }
      const tls = tlsModule.connect({
        socket,
        servername: url.hostname,
        ca,
        ALPNProtocols: ["http/1.1"],
      });
      tls.on("error", reject);
      const req = httpRequest(
        {
          host: url.hostname,
          // the tunnel's port: without it node writes `Host: name:80` inside a TLS tunnel to 443
          port,
          path: `${url.pathname}${url.search}`,
          method: "POST",
          createConnection: () => tls,
          headers: {
            "content-type": "application/json",
            accept: "application/json, text/event-stream",
            "content-length": Buffer.byteLength(body),
          },
        },
        (r) => {
          readAll(r).then((text) => {
            tls.end();
            resolve({
              status: r.statusCode ?? 0,
              type: String(r.headers["content-type"] ?? ""),
              text,
            });
          }, reject);
        },
      );
      req.on("error", reject);
      req.end(body);
    });
    connect.end();
  });
}

/** Runs the shim until stdin ends. Resolves with the number of messages forwarded. */
export async function runStdioShim(o: ShimOptions): Promise<number> {
  const url = new URL(o.url ?? APPROVALS_URL);
  const proxy = proxyOf(o.env);
  // Loaded here, not with the package: the controller imports this package too, and node:tls
  // is some 10 ms of its start that only the shim (in the sandbox) needs.
  const tls = await import("node:tls");
  const ca = caOf(o, tls);
  const lines = createInterface({ input: o.stdin, crlfDelay: Number.POSITIVE_INFINITY });
  let n = 0;
  for await (const line of lines) {
    if (line.trim().length === 0) continue;
    let id: unknown = null;
    try {
      id = (JSON.parse(line) as { id?: unknown }).id ?? null;
    } catch {
      o.stdout.write(
        `${JSON.stringify({ jsonrpc: "2.0", id: null, error: { code: -32700, message: "parse error" } })}\n`,
      );
      continue;
    }
    n++;
    try {
      const r = await post(tls, url, proxy, ca, line);
      if (r.status === 202 || r.text.length === 0) continue;
      if (r.type.startsWith("text/event-stream")) {
        for (const l of r.text.split("\n"))
          if (l.startsWith("data:")) o.stdout.write(`${l.slice(5).trim()}\n`);
      } else o.stdout.write(`${r.text.trim()}\n`);
    } catch (error) {
      if (id !== null) {
        o.stdout.write(
          `${JSON.stringify({ jsonrpc: "2.0", id, error: { code: -32000, message: `bottlekit approvals unreachable: ${(error as Error).message}` } })}\n`,
        );
      }
    }
  }
  return n;
}
