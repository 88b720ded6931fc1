import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { request as httpRequest } from "node:http";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect as tlsConnect } from "node:tls";
import { promisify } from "node:util";
import { EnvHttpProxyAgent, request as undiciRequest } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startUpstreams, type Upstreams } from "../test/upstream.ts";
import { type AuditEvent, createProxyHost, type ProxyHost, type RegisterResult } from "./index.ts";
import { encodeFrame, OP_TEXT, WsFrameParser } from "./websocket.ts";

const run = promisify(execFile);

const REAL = "ghp_R3alT0kenValueThatOnlyTheHostHolds01";
const HOSTS = [
  "api.github.com",
  "api.example.com",
  "redact.example.com",
  "plain.example.com",
  "ws.example.com",
  "stream.example.com",
  "inject.example.com",
];
const ALL = [{ paths: [{ type: "prefix" as const, value: "/" }] }];

let up: Upstreams;
let home: string;
let host: ProxyHost;
let session: RegisterResult;
let proxyUrl: string;
const events: AuditEvent[] = [];

function decisions(h: string): string[] {
  return events.filter((e) => e.host === h).map((e) => e.decision);
}

/** curl through the session's TCP listener; returns status (or curl's exit code as negative) and body. */
async function curl(
  url: string,
  args: string[] = [],
): Promise<{ status: number; body: string; code: number }> {
  try {
    const { stdout } = await run(
      "curl",
      [
        "-sS",
        "-x",
        proxyUrl,
        "--cacert",
        session.caBundlePath,
        "-w",
        "\n%{http_code}",
        ...args,
        url,
      ],
      { timeout: 60_000 },
    );
    const at = stdout.lastIndexOf("\n");
    return { status: Number(stdout.slice(at + 1)), body: stdout.slice(0, at), code: 0 };
  } catch (error) {
    const e = error as { code?: number; stdout?: string };
    const out = e.stdout ?? "";
    const at = out.lastIndexOf("\n");
    return { status: Number(out.slice(at + 1)) || 0, body: out.slice(0, at), code: e.code ?? -1 };
  }
}

beforeAll(async () => {
  up = await startUpstreams(HOSTS);
  home = mkdtempSync(join(tmpdir(), "bk-px-"));
  host = createProxyHost({
    home,
    onAudit: (e) => events.push(e),
    credentialSource: (spec) => (spec.hostEnv === "BK_TEST_GH" ? REAL : undefined),
    resolve: (h) =>
      h === "bad.example.com"
        ? { host: "127.0.0.1", port: up.badPort }
        : h === "http.example.com"
          ? { host: "127.0.0.1", port: up.httpPort }
          : { host: "127.0.0.1", port: up.tlsPort },
    upstreamCa: up.caPem,
    llmHandler: (req, res, ctx) => {
      if (req.url?.startsWith("/v1/hang")) {
        res.writeHead(200, { "content-type": "text/event-stream" });
        res.write("data: partial\n\n"); // a stream the cutoff must close
        return;
      }
      let n = 0;
      req.on("data", (c: Buffer) => {
        n += c.length;
      });
      req.on("end", () => {
        res.writeHead(200, { "content-type": "application/json" });
        res.end(
          JSON.stringify({ handled: true, ctx, bytes: n, auth: req.headers["x-api-key"] ?? null }),
        );
      });
    },
  });
  session = await host.register({
    bottle: "test-bottle",
    agent: "claude",
    tcp: true,
    llmHosts: ["api.anthropic.com", "api.openai.com"],
    credentials: [
      {
        name: "GITHUB_TOKEN",
        hostEnv: "BK_TEST_GH",
        hosts: ["api.github.com", "redact.example.com"],
      },
    ],
    routes: [
      {
        host: "api.github.com",
        matches: [{ paths: [{ type: "prefix", value: "/repos" }], methods: ["GET", "POST"] }],
        dlp: { outbound_on_match: "block" },
      },
      { host: "api.example.com", matches: ALL, dlp: { outbound_on_match: "block" } },
      { host: "redact.example.com", matches: ALL, dlp: { outbound_on_match: "redact" } },
      { host: "plain.example.com" },
      { host: "bad.example.com", matches: ALL },
      { host: "ws.example.com", matches: [{ paths: [{ type: "prefix", value: "/ws" }] }] },
      { host: "http.example.com", port: 80, matches: ALL, dlp: { outbound_on_match: "block" } },
      { host: "stream.example.com", matches: ALL, dlp: { inbound_detectors: false } },
      { host: "inject.example.com", matches: ALL },
    ],
  });
  const tcp = session.tcp as NonNullable<RegisterResult["tcp"]>;
  proxyUrl = `http://bottlekit:${tcp.token}@127.0.0.1:${tcp.port}`;
});

afterAll(async () => {
  await host?.close();
  await up?.close();
  rmSync(home, { recursive: true, force: true });
});

describe("registration", () => {
  it("returns placeholders and CA variables, never the credential", () => {
    expect(session.env.GITHUB_TOKEN).toBe("bottlekit:resolve:env:GITHUB_TOKEN");
    for (const k of [
      "NODE_EXTRA_CA_CERTS",
      "SSL_CERT_FILE",
      "REQUESTS_CA_BUNDLE",
      "CURL_CA_BUNDLE",
      "CODEX_CA_CERTIFICATE",
    ]) {
      expect(session.env[k]).toBe(session.caBundlePath);
    }
    expect(JSON.stringify(session)).not.toContain(REAL);
    expect(statSync(session.proxySocketPath).mode & 0o777).toBe(0o600);
    expect(
      statSync(join(home, "state", "egress-proxy", "ca", "test-bottle", "ca.key")).mode & 0o777,
    ).toBe(0o600);
  });
});

describe("real clients", () => {
  it("curl: placeholder resolved for the bound host only, upstream sees the real token", async () => {
    const before = up.seen.length;
    const r = await curl("https://api.github.com/repos/o/r", [
      "-H",
      `Authorization: Bearer ${session.env.GITHUB_TOKEN}`,
    ]);
    expect(r.status).toBe(200);
    expect(up.seen.length).toBe(before + 1);
    expect(up.seen.at(-1)?.headers.authorization).toBe(`Bearer ${REAL}`);
    expect(up.seen.at(-1)?.host).toBe("api.github.com");
    const ev = events.filter((e) => e.host === "api.github.com" && e.decision === "allow").at(-1);
    expect(ev?.credentials).toEqual(["GITHUB_TOKEN"]);
    expect(JSON.stringify(events)).not.toContain(REAL);
  });

  it("python requests (HTTPS_PROXY + REQUESTS_CA_BUNDLE)", async () => {
    const before = up.seen.length;
    const code = [
      "import os, requests",
      "r = requests.get('https://api.github.com/repos/py', headers={'Authorization': 'token ' + os.environ['GITHUB_TOKEN']}, timeout=45)",
      "print(r.status_code)",
    ].join("\n");
    let program = code;
    try {
      await run("python3", ["-c", "import requests"]);
    } catch {
      program = [
        "import os, ssl, urllib.request",
        "ctx = ssl.create_default_context(cafile=os.environ['REQUESTS_CA_BUNDLE'])",
        "h = urllib.request.ProxyHandler({'https': os.environ['HTTPS_PROXY']})",
        "o = urllib.request.build_opener(h, urllib.request.HTTPSHandler(context=ctx))",
        "req = urllib.request.Request('https://api.github.com/repos/py', headers={'Authorization': 'token ' + os.environ['GITHUB_TOKEN']})",
        "print(o.open(req, timeout=45).status)",
      ].join("\n");
    }
    const result = await run("python3", ["-c", program], {
      env: {
        PATH: process.env.PATH ?? "",
        HOME: home,
        ...session.env,
        HTTPS_PROXY: proxyUrl,
        https_proxy: proxyUrl,
      },
      timeout: 60_000,
    }).catch((error: { stdout?: string; stderr?: string }) => ({
      stdout: error.stdout ?? "",
      stderr: error.stderr ?? "",
    }));
    const recent = JSON.stringify(events.filter((e) => e.host === "api.github.com").slice(-2));
    expect(result.stdout.trim(), `${result.stderr}\n${recent}`).toBe("200");
    expect(up.seen.length).toBe(before + 1);
    expect(up.seen.at(-1)?.headers.authorization).toBe(`token ${REAL}`);
  }, 90_000);

  it("undici EnvHttpProxyAgent", async () => {
    const before = up.seen.length;
    const agent = new EnvHttpProxyAgent({
      httpsProxy: proxyUrl,
      httpProxy: proxyUrl,
      requestTls: { ca: [up.caPem, (await host.ca("test-bottle")).certPem] },
    });
    try {
      const r = await undiciRequest("https://api.github.com/repos/undici", {
        dispatcher: agent,
        headers: { authorization: `Bearer ${session.env.GITHUB_TOKEN}` },
      });
      expect(r.statusCode).toBe(200);
      const body = (await r.body.json()) as { auth: string };
      expect(body.auth).toBe(`Bearer ${REAL}`);
      // keep-alive: a second request on the same intercepted connection
      const r2 = await undiciRequest("https://api.github.com/repos/undici2", { dispatcher: agent });
      expect(r2.statusCode).toBe(200);
      await r2.body.text();
    } finally {
      await agent.close();
    }
    expect(up.seen.length).toBe(before + 2);
  });

  it("plain tunnel for a route with nothing at L7 (the proxy never sees inside)", async () => {
    const r = await curl("https://plain.example.com/x", [
      "--cacert",
      session.caBundlePath,
      "--cacert",
      join(home, "up.pem"),
    ]);
    // curl takes the last --cacert: write the upstream CA there and retry if absent
    if (r.status === 0) {
      const { writeFileSync } = await import("node:fs");
      writeFileSync(join(home, "up.pem"), up.caPem);
      const again = await curl("https://plain.example.com/x", ["--cacert", join(home, "up.pem")]);
      expect(again.status).toBe(200);
    } else {
      expect(r.status).toBe(200);
    }
    const ev = events
      .filter((e) => e.host === "plain.example.com" && e.decision === "tunnel")
      .at(-1);
    expect(ev).toBeDefined();
    expect(ev?.bytesIn).toBeGreaterThan(0);
    expect(ev?.bytesOut).toBeGreaterThan(0);
    expect(host.metricsNow().leavesMinted).toBeGreaterThan(0);
  });

  it("a larger upload with Expect: 100-continue is read whole, scanned and forwarded", async () => {
    const { writeFileSync } = await import("node:fs");
    const file = join(home, "upload.txt");
    writeFileSync(file, "lorem ipsum dolor sit amet ".repeat(8000));
    const before = up.seen.length;
    const r = await curl("https://api.example.com/upload", [
      "-H",
      "Expect: 100-continue",
      "--data-binary",
      `@${file}`,
    ]);
    expect(r.status).toBe(200);
    expect(up.seen.length).toBe(before + 1);
    expect(up.seen.at(-1)?.body.length).toBe(27 * 8000);
    expect(up.seen.at(-1)?.headers.expect).toBeUndefined();
  });

  it("the unix socket listener needs no token (identity = the socket)", async () => {
    const before = up.seen.length;
    const status = await new Promise<number>((resolve, reject) => {
      const req = httpRequest({
        socketPath: session.proxySocketPath,
        method: "CONNECT",
        path: "api.github.com:443",
      });
      req.on("connect", (res, socket) => {
        if (res.statusCode !== 200) return resolve(res.statusCode ?? 0);
        const tls = tlsConnect({ socket, servername: "api.github.com", ca: [up.caPem] });
        tls.on("error", reject);
        void tls;
      });
      req.on("error", reject);
      req.end();
    }).catch(() => -1);
    // the above TLS uses the wrong CA on purpose: the proxy's leaf is not from the upstream CA
    expect(status).toBe(-1);
    expect(up.seen.length).toBe(before);
    const ok = await new Promise<number>((resolve, reject) => {
      const req = httpRequest({
        socketPath: session.proxySocketPath,
        method: "CONNECT",
        path: "api.github.com:443",
      });
      req.on("connect", async (_res, socket) => {
        const ca = (await host.ca("test-bottle")).certPem;
        const tls = tlsConnect({ socket, servername: "api.github.com", ca: [ca] }, () => {
          tls.write(
            "GET /repos/unix HTTP/1.1\r\nHost: api.github.com\r\nConnection: close\r\n\r\n",
          );
        });
        let text = "";
        tls.on("data", (c: Buffer) => {
          text += c.toString();
        });
        tls.on("end", () => resolve(Number(text.split(" ")[1])));
        tls.on("error", reject);
      });
      req.on("error", reject);
      req.end();
    });
    expect(ok).toBe(200);
    expect(up.seen.at(-1)?.url).toBe("/repos/unix");
  });
});

describe("refusals: each refused, audited, nothing forwarded", () => {
  it("denied host: 403 on CONNECT naming the host", async () => {
    const before = up.seen.length;
    const r = await curl("https://evil.example.net/", ["-v"]);
    expect(r.status === 403 || r.code !== 0).toBe(true);
    expect(decisions("evil.example.net")).toContain("deny_route");
    expect(up.seen.length).toBe(before);
    const body = await new Promise<string>((resolve) => {
      const req = httpRequest({
        socketPath: session.proxySocketPath,
        method: "CONNECT",
        path: "evil.example.net:443",
      });
      req.on("connect", (res, socket, head) => {
        let t = head.toString();
        socket.on("data", (c: Buffer) => {
          t += c.toString();
        });
        socket.on("close", () => resolve(`${res.statusCode} ${t}`));
      });
      req.end();
    });
    expect(body).toMatch(/^403 /);
    expect(body).toContain("evil.example.net");
    expect(body).toContain("egress route");
  });

  it("denied path and denied method", async () => {
    const before = up.seen.length;
    const r = await curl("https://api.github.com/user");
    expect(r.status).toBe(403);
    expect(r.body).toContain("api.github.com");
    const d = await curl("https://api.github.com/repos/x", ["-X", "DELETE"]);
    expect(d.status).toBe(403);
    expect(up.seen.length).toBe(before);
    expect(events.filter((e) => e.decision === "deny_route" && e.path === "/user")).toHaveLength(1);
  });

  it("placeholder toward a host it is not bound to", async () => {
    const before = up.seen.length;
    const r = await curl("https://api.example.com/x", [
      "-H",
      `Authorization: Bearer ${session.env.GITHUB_TOKEN}`,
    ]);
    expect(r.status).toBe(403);
    expect(up.seen.length).toBe(before);
    expect(decisions("api.example.com")).toContain("deny_placeholder");
  });

  it("secret in a body (block route)", async () => {
    const before = up.seen.length;
    const r = await curl("https://api.example.com/upload", [
      "--data-binary",
      "key=AKIAZ7QW3ERT5YUI8OPA&x=1",
    ]);
    expect(r.status).toBe(403);
    expect(up.seen.length).toBe(before);
    const ev = events.filter((e) => e.decision === "deny_dlp").at(-1);
    expect(ev?.findings?.[0]?.rule).toBe("aws-access-key-id");
    expect(JSON.stringify(events)).not.toContain("AKIAZ7QW3ERT5YUI8OPA");
  });

  it("secret in a body (redact route): redacted, credentials still injected", async () => {
    const before = up.seen.length;
    const r = await curl("https://redact.example.com/upload", [
      "-H",
      `Authorization: Bearer ${session.env.GITHUB_TOKEN}`,
      "--data-binary",
      "key=AKIAZ7QW3ERT5YUI8OPA&x=1",
    ]);
    expect(r.status).toBe(200);
    expect(up.seen.length).toBe(before + 1);
    const seen = up.seen.at(-1);
    expect(seen?.body).not.toContain("AKIAZ7QW3ERT5YUI8OPA");
    expect(seen?.body).toContain("[REDACTED]");
    expect(seen?.headers.authorization).toBe(`Bearer ${REAL}`);
    expect(decisions("redact.example.com")).toContain("redact");
  });

  it("SNI mismatch: the handshake fails, nothing forwarded", async () => {
    const before = up.seen.length;
    const outcome = await new Promise<string>((resolve) => {
      const req = httpRequest({
        socketPath: session.proxySocketPath,
        method: "CONNECT",
        path: "api.github.com:443",
      });
      req.on("connect", async (_res, socket) => {
        const ca = (await host.ca("test-bottle")).certPem;
        const tls = tlsConnect({ socket, servername: "api.example.com", ca: [ca] }, () =>
          resolve("connected"),
        );
        tls.on("error", () => resolve("refused"));
      });
      req.end();
    });
    expect(outcome).toBe("refused");
    expect(up.seen.length).toBe(before);
    await expect.poll(() => decisions("api.github.com").includes("deny_sni")).toBe(true);
  });

  it("secret split across the chunks of a streamed (chunked) upload", async () => {
    const before = up.seen.length;
    const status = await new Promise<number>((resolve, reject) => {
      const req = httpRequest({
        socketPath: session.proxySocketPath,
        method: "CONNECT",
        path: "api.example.com:443",
      });
      req.on("connect", async (_res, socket) => {
        const ca = (await host.ca("test-bottle")).certPem;
        const tls = tlsConnect({ socket, servername: "api.example.com", ca: [ca] }, () => {
          tls.write(
            "POST /upload HTTP/1.1\r\nHost: api.example.com\r\nTransfer-Encoding: chunked\r\n\r\n",
          );
          tls.write("a\r\nkey=AKIAZ7\r\n");
          setImmediate(() => tls.write("e\r\nQW3ERT5YUI8OPA\r\n0\r\n\r\n"));
        });
        let text = "";
        tls.on("data", (c: Buffer) => {
          text += c.toString();
          if (text.includes("\r\n\r\n")) {
            resolve(Number(text.split(" ")[1]));
            tls.destroy();
          }
        });
        tls.on("error", reject);
      });
      req.end();
    });
    expect(status).toBe(403);
    expect(up.seen.length).toBe(before);
  });

  it("no SNI at all: the handshake fails", async () => {
    const before = events.filter(
      (e) => e.host === "api.example.com" && e.decision !== "allow",
    ).length;
    const outcome = await new Promise<string>((resolve) => {
      const req = httpRequest({
        socketPath: session.proxySocketPath,
        method: "CONNECT",
        path: "api.example.com:443",
      });
      req.on("connect", async (_res, socket) => {
        const ca = (await host.ca("test-bottle")).certPem;
        const tls = tlsConnect(
          { socket, servername: "", ca: [ca], checkServerIdentity: () => undefined },
          () => resolve("connected"),
        );
        tls.on("error", () => resolve("refused"));
      });
      req.end();
    });
    expect(outcome).toBe("refused");
    await expect
      .poll(
        () => events.filter((e) => e.host === "api.example.com" && e.decision !== "allow").length,
      )
      .toBe(before + 1);
  });

  it("upstream with an untrusted certificate: 502, the upstream never sees a request", async () => {
    const r = await curl("https://bad.example.com/x");
    expect(r.status).toBe(502);
    expect(up.badRequests).toHaveLength(0);
    expect(decisions("bad.example.com")).toContain("upstream_tls_error");
  });

  it("missing Proxy-Authorization on the TCP listener: 407", async () => {
    const tcp = session.tcp as NonNullable<RegisterResult["tcp"]>;
    const { stdout } = await run("curl", [
      "-sS",
      "-o",
      "/dev/null",
      "-w",
      "%{http_code}",
      "-x",
      `http://127.0.0.1:${tcp.port}`,
      "http://http.example.com/x",
    ]);
    expect(stdout).toBe("407");
    expect(decisions("http.example.com")).toContain("deny_auth");
  });

  it("inbound injection in a JSON response: 502, nothing delivered", async () => {
    const r = await curl("https://inject.example.com/injection");
    expect(r.status).toBe(502);
    expect(r.body).not.toContain("Ignore all previous");
    expect(decisions("inject.example.com")).toContain("deny_injection");
  });
});

describe("limits and streamed responses", () => {
  it("an SSE response is cut at the first blocking injection finding", async () => {
    const before = events.filter((e) => e.decision === "deny_injection").length;
    const r = await curl("https://inject.example.com/sse-injection", ["-N"]);
    expect(r.code).not.toBe(0); // the connection was dropped mid-stream
    expect(r.body).not.toContain("ignore previous instructions");
    expect(events.filter((e) => e.decision === "deny_injection").length).toBe(before + 1);
  });

  it("bodies over maxBodyBytes get 413 and responses over maxResponseScanBytes get 502, nothing forwarded", async () => {
    const small = createProxyHost({
      home: join(home, "small"),
      onAudit: (e) => events.push(e),
      resolve: () => ({ host: "127.0.0.1", port: up.tlsPort }),
      upstreamCa: up.caPem,
      maxBodyBytes: 1000,
      maxResponseScanBytes: 20,
    });
    try {
      const s = await small.register({
        bottle: "small",
        tcp: true,
        routes: [{ host: "api.example.com", matches: ALL }],
      });
      const tcp = s.tcp as NonNullable<RegisterResult["tcp"]>;
      const url = `http://bottlekit:${tcp.token}@127.0.0.1:${tcp.port}`;
      const ca = (await small.ca("small")).bundlePath;
      const before = up.seen.length;
      const big = await run("curl", [
        "-sS",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "-x",
        url,
        "--cacert",
        ca,
        "--data-binary",
        "x".repeat(5000),
        "https://api.example.com/up",
      ]);
      expect(big.stdout).toBe("413");
      expect(up.seen.length).toBe(before);
      const long = await run("curl", [
        "-sS",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "-x",
        url,
        "--cacert",
        ca,
        "https://api.example.com/long",
      ]);
      expect(long.stdout).toBe("502");
      expect(
        events.some((e) => e.sessionId === s.sessionId && e.decision === "deny_body_size"),
      ).toBe(true);
      expect(
        events.some((e) => e.sessionId === s.sessionId && e.reason === "response_over_scan_limit"),
      ).toBe(true);
    } finally {
      await small.close();
    }
  });
});

describe("plain HTTP, WebSocket, LLM hook", () => {
  it("absolute-URI HTTP with placeholders refused toward an unbound host", async () => {
    const ok = await curl("http://http.example.com/hello");
    expect(ok.status).toBe(200);
    expect(up.seen.at(-1)?.host).toBe("http.example.com");
    const before = up.seen.length;
    const bad = await curl("http://http.example.com/hello", [
      "-H",
      `X-Token: ${session.env.GITHUB_TOKEN}`,
    ]);
    expect(bad.status).toBe(403);
    expect(up.seen.length).toBe(before);
  });

  it("a bound credential is never sent over plain HTTP", async () => {
    const before = up.seen.length;
    const r = await curl("http://api.github.com/repos/o/r", [
      "-H",
      `Authorization: Bearer ${session.env.GITHUB_TOKEN}`,
    ]);
    expect(r.status).toBe(403);
    expect(up.seen.length).toBe(before);
    const ev = events
      .filter((e) => e.host === "api.github.com" && e.decision === "deny_placeholder")
      .at(-1);
    expect(ev?.reason).toBe("credential_over_plain_http");
  });

  it("WebSocket upgrade on an allowed route", async () => {
    const echoed = await new Promise<string>((resolve, reject) => {
      const req = httpRequest({
        socketPath: session.proxySocketPath,
        method: "CONNECT",
        path: "ws.example.com:443",
      });
      req.on("connect", async (_res, socket) => {
        const ca = (await host.ca("test-bottle")).certPem;
        const tls = tlsConnect({ socket, servername: "ws.example.com", ca: [ca] }, () => {
          tls.write(
            "GET /ws/chat HTTP/1.1\r\nHost: ws.example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGVzdA==\r\nSec-WebSocket-Version: 13\r\n\r\n",
          );
        });
        let text = "";
        let sent = false;
        tls.on("data", (c: Buffer) => {
          text += c.toString("latin1");
          if (text.includes("\r\n\r\n") && !sent) {
            sent = true;
            tls.write(encodeFrame(OP_TEXT, Buffer.from("ping"), true));
          }
          if (text.includes("echo:")) {
            resolve(text);
            tls.destroy();
          }
        });
        tls.on("error", reject);
      });
      req.end();
    });
    expect(echoed).toMatch(/^HTTP\/1.1 101/);
    expect(
      new WsFrameParser(1024).push(up.wsReceived.at(-1) as Buffer)[0]?.payload.toString(),
    ).toBe("ping");
    await expect.poll(() => decisions("ws.example.com").includes("websocket")).toBe(true);
  });

  /** A raw HTTP/1.1 WebSocket upgrade inside an intercepted CONNECT; resolves with all the proxy sent until it closed. */
  function upgradeVia(target: string, path: string): Promise<string> {
    return new Promise<string>((resolve, reject) => {
      const req = httpRequest({
        socketPath: session.proxySocketPath,
        method: "CONNECT",
        path: `${target}:443`,
      });
      req.on("connect", async (res, socket) => {
        if (res.statusCode !== 200) return reject(new Error(`CONNECT ${res.statusCode}`));
        const ca = (await host.ca("test-bottle")).certPem;
        const tls = tlsConnect({ socket, servername: target, ca: [ca] }, () => {
          tls.write(
            `GET ${path} HTTP/1.1\r\nHost: ${target}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
              "Authorization: Bearer placeholder\r\nSec-WebSocket-Key: dGVzdA==\r\nSec-WebSocket-Version: 13\r\n\r\n",
          );
        });
        let text = "";
        tls.on("data", (c: Buffer) => {
          text += c.toString();
        });
        tls.on("error", reject);
        tls.on("close", () => resolve(text));
      });
      req.on("error", reject);
      req.end();
    });
  }

  it("a WebSocket upgrade to a provider API host is answered 426 so the client falls back to HTTP", async () => {
    const before = up.seen.length;
    const llmBefore = events.filter((e) => e.decision === "llm").length;
    const countedBefore = host.metricsNow().decisions.deny_websocket;
    const text = await upgradeVia("api.openai.com", "/v1/responses");
    expect(text).toMatch(/^HTTP\/1.1 426 Upgrade Required\r\n/);
    const [head = "", body = ""] = text.split("\r\n\r\n");
    expect(head).toMatch(/\r\ncontent-type: application\/json\r\n/i);
    expect(head).toMatch(/\r\nx-bottlekit-decision: deny_websocket\r\n/i);
    expect(head).toMatch(new RegExp(`\r\ncontent-length: ${Buffer.byteLength(body)}\r\n`, "i"));
    const parsed = JSON.parse(body) as { error: { code: string; message: string } };
    expect(parsed.error.code).toBe("websocket_not_supported");
    expect(parsed.error.message).toContain("api.openai.com");
    expect(body).not.toContain("placeholder");
    // refused before anything else: no upstream request, no LLM handler call
    expect(up.seen.length).toBe(before);
    expect(events.filter((e) => e.decision === "llm").length).toBe(llmBefore);
    const ev = events.filter((e) => e.host === "api.openai.com").at(-1);
    expect(ev).toMatchObject({
      decision: "deny_websocket",
      status: 426,
      method: "GET",
      path: "/v1/responses",
      reason: "websocket_to_llm_host",
      bytesIn: 0,
      bytesOut: 0,
    });
    expect(host.metricsNow().decisions.deny_websocket).toBe(countedBefore + 1);
  });

  it("a WebSocket upgrade to a non-provider host with no matching route keeps the 403", async () => {
    const before = up.seen.length;
    const countedBefore = host.metricsNow().decisions.deny_websocket;
    const text = await upgradeVia("ws.example.com", "/not-ws");
    expect(text).toMatch(/^HTTP\/1.1 403 Forbidden\r\n/);
    expect(text).toContain("ws.example.com");
    expect(up.seen.length).toBe(before);
    expect(decisions("ws.example.com").at(-1)).toBe("deny_route");
    expect(host.metricsNow().decisions.deny_websocket).toBe(countedBefore);
  });

  it("WebSocket upgrade with an absolute http:// URI (ws:// through the proxy)", async () => {
    const before = up.seen.length;
    const echoed = await new Promise<string>((resolve, reject) => {
      const s = connect(session.proxySocketPath, () => {
        s.write(
          "GET http://http.example.com/ws HTTP/1.1\r\nHost: http.example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGVzdA==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        );
      });
      let text = "";
      let sent = false;
      s.on("data", (c: Buffer) => {
        text += c.toString("latin1");
        if (text.includes("\r\n\r\n") && !sent) {
          sent = true;
          s.write(encodeFrame(OP_TEXT, Buffer.from("ping"), true));
        }
        if (text.includes("echo:")) {
          resolve(text);
          s.destroy();
        }
      });
      s.on("error", reject);
    });
    expect(echoed).toMatch(/^HTTP\/1.1 101/);
    expect(up.seen.length).toBe(before + 1);
    expect(up.seen.at(-1)?.url).toBe("/ws");
    expect(
      new WsFrameParser(1024).push(up.wsReceived.at(-1) as Buffer)[0]?.payload.toString(),
    ).toBe("ping");
    await expect.poll(() => decisions("http.example.com").includes("websocket")).toBe(true);
  });

  it("provider API hosts go to the LLM handler with the session as identity", async () => {
    const before = up.seen.length;
    const r = await curl("https://api.anthropic.com/v1/messages", [
      "-H",
      "x-api-key: placeholder",
      "--data-binary",
      "{}",
    ]);
    expect(r.status).toBe(200);
    const body = JSON.parse(r.body) as {
      handled: boolean;
      ctx: { sessionId: string; bottle: string; agent: string; host: string; port: number };
    };
    expect(body.handled).toBe(true);
    expect(body.ctx).toEqual({
      sessionId: session.sessionId,
      bottle: "test-bottle",
      agent: "claude",
      host: "api.anthropic.com",
      port: 443,
    });
    expect(up.seen.length).toBe(before);
    expect(decisions("api.anthropic.com")).toContain("llm");
  });
});

describe("live control", () => {
  it("replaceRoutes takes effect on the live session; bad routes change nothing", async () => {
    const other = await host.register({
      bottle: "test-bottle",
      routes: [{ host: "api.example.com", matches: ALL }],
    });
    const [before] = (await host.list()).filter((s) => s.sessionId === other.sessionId);
    expect(before?.hosts).toEqual(["api.example.com"]);
    await expect(
      host.replaceRoutes(other.sessionId, [{ host: "API.example.com" } as never]),
    ).rejects.toMatchObject({ code: "E_INVALID_INPUT" });
    await host.replaceRoutes(other.sessionId, [{ host: "plain.example.com" }]);
    const [after] = (await host.list()).filter((s) => s.sessionId === other.sessionId);
    expect(after?.hosts).toEqual(["plain.example.com"]);
    expect(await host.unregister(other.sessionId)).toBe(true);
  });

  it("replacing routes closes tunnels the new routes would not open", async () => {
    const other = await host.register({
      bottle: "test-bottle",
      routes: [{ host: "plain.example.com" }],
    });
    let closed: Promise<void> | undefined;
    const status = await new Promise<number>((resolve) => {
      const req = httpRequest({
        socketPath: other.proxySocketPath,
        method: "CONNECT",
        path: "plain.example.com:443",
      });
      req.on("connect", (res, socket) => {
        closed = new Promise<void>((r) => socket.on("close", () => r()));
        resolve(res.statusCode ?? 0);
      });
      req.end();
    });
    expect(status).toBe(200);
    await host.replaceRoutes(other.sessionId, [{ host: "api.example.com" }]);
    await closed;
    await host.unregister(other.sessionId);
  });

  it("cutoff closes open streams and tunnels, then refuses; restore re-opens", async () => {
    // an intercepted response that never ends, and an idle plain tunnel
    let firstChunk: () => void = () => undefined;
    const gotFirstChunk = new Promise<void>((r) => {
      firstChunk = r;
    });
    const streamClosed = new Promise<string>((resolve, reject) => {
      const req = httpRequest({
        socketPath: session.proxySocketPath,
        method: "CONNECT",
        path: "stream.example.com:443",
      });
      req.on("connect", async (_res, socket) => {
        const ca = (await host.ca("test-bottle")).certPem;
        const tls = tlsConnect({ socket, servername: "stream.example.com", ca: [ca] }, () => {
          tls.write("GET /stream HTTP/1.1\r\nHost: stream.example.com\r\n\r\n");
        });
        let got = "";
        tls.on("data", (c: Buffer) => {
          got += c.toString();
          if (got.includes("first-chunk")) firstChunk();
        });
        tls.on("error", () => undefined);
        tls.on("close", () => resolve(got));
      });
      req.on("error", reject);
      req.end();
    });
    const tunnelClosed = new Promise<void>((resolve) => {
      const req = httpRequest({
        socketPath: session.proxySocketPath,
        method: "CONNECT",
        path: "plain.example.com:443",
      });
      req.on("connect", (_res, socket) => socket.on("close", () => resolve()));
      req.end();
    });
    let llmFirst: () => void = () => undefined;
    const gotLlmFirst = new Promise<void>((r) => {
      llmFirst = r;
    });
    const llmClosed = new Promise<string>((resolve, reject) => {
      const req = httpRequest({
        socketPath: session.proxySocketPath,
        method: "CONNECT",
        path: "api.anthropic.com:443",
      });
      req.on("connect", async (_res, socket) => {
        const ca = (await host.ca("test-bottle")).certPem;
        const tls = tlsConnect({ socket, servername: "api.anthropic.com", ca: [ca] }, () => {
          tls.write(
            "POST /v1/hang HTTP/1.1\r\nHost: api.anthropic.com\r\nContent-Length: 0\r\n\r\n",
          );
        });
        let got = "";
        tls.on("data", (c: Buffer) => {
          got += c.toString();
          if (got.includes("data: partial")) llmFirst();
        });
        tls.on("error", () => undefined);
        tls.on("close", () => resolve(got));
      });
      req.on("error", reject);
      req.end();
    });
    await expect.poll(() => up.streaming.size).toBe(1);
    await expect
      .poll(() => events.filter((e) => e.decision === "llm" && e.path === "/v1/hang").length)
      .toBe(1);
    await expect.poll(() => host.metricsNow().openTunnels).toBeGreaterThanOrEqual(1);
    await gotFirstChunk;
    await gotLlmFirst;
    const closedBefore = events.filter((e) => e.decision === "closed_by_cutoff").length;
    expect(await host.cutoff({ bottle: "test-bottle" })).toBe(1);
    const got = await streamClosed;
    expect(await llmClosed).toContain("data: partial");
    await tunnelClosed;
    expect(got).toContain("first-chunk");
    expect(
      events.filter((e) => e.decision === "closed_by_cutoff").length - closedBefore,
    ).toBeGreaterThanOrEqual(3); // the stream, the LLM stream and the tunnel
    await expect.poll(() => up.streaming.size).toBe(0);
    const before = up.seen.length;
    const r = await curl("https://api.github.com/repos/o/r");
    expect(r.status === 403 || r.code !== 0).toBe(true);
    expect(up.seen.length).toBe(before);
    expect(decisions("api.github.com")).toContain("deny_cutoff");
    expect(await host.restore({ sessionId: session.sessionId })).toBe(1);
    const ok = await curl("https://api.github.com/repos/o/r");
    expect(ok.status).toBe(200);
    const m = host.metricsNow();
    expect(m.decisions.deny_cutoff).toBeGreaterThanOrEqual(1);
    expect(m.decisions.closed_by_cutoff).toBeGreaterThanOrEqual(2);
  });
});
