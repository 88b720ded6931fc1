import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:https";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BottleCa } from "@bottlekit/egress-proxy";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { ProxyAgent, fetch as undiciFetch } from "undici";

/**
 * Test harness: a local TLS server standing in for public hosts (its own test CA, every request
 * recorded), a temp home with a bottle manifest, and the MCP SDK's own client reaching the
 * approvals server through a session's real proxy listener.
 */

export interface Seen {
  host: string;
  url: string;
  method: string;
  authorization?: string;
  body: string;
}

export interface Upstream {
  caPem: string;
  port: number;
  seen: Seen[];
  close(): Promise<void>;
}

export async function startUpstream(hosts: readonly string[]): Promise<Upstream> {
  const dir = mkdtempSync(join(tmpdir(), "bk-apu-"));
  const ca = await BottleCa.open(dir, "upstream-ca");
  const contexts = new Map<string, import("node:tls").SecureContext>();
  for (const h of hosts) contexts.set(h, await ca.contextFor(h));
  const seen: Seen[] = [];
  const server: Server = createServer(
    { SNICallback: (n, cb) => cb(null, contexts.get(n)) },
    (req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        seen.push({
          host: req.headers.host ?? "",
          url: req.url ?? "",
          method: req.method ?? "",
          ...(req.headers.authorization ? { authorization: req.headers.authorization } : {}),
          body: Buffer.concat(chunks).toString("utf8"),
        });
        res.writeHead(200, { "content-type": "application/json" });
        res.end(JSON.stringify({ ok: true, host: req.headers.host }));
      });
    },
  );
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  return {
    caPem: ca.certPem,
    port: (server.address() as AddressInfo).port,
    seen,
    async close() {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export const BOTTLE_MD = `---
# the work bottle: comments and layout survive --persist
description: a bottle for approvals tests
egress:
  routes:
    # the package registry
    - host: registry.example.com
    - host: hold.example.com
      dlp:
        outbound_on_match: supervise  # the operator decides
exec_policy:
  rules: [rules/basic.rules]
---
Notes about the bottle.
`;

export function makeHome(): string {
  const home = mkdtempSync(join(tmpdir(), "bk-ap-"));
  mkdirSync(join(home, "bottles"), { recursive: true });
  mkdirSync(join(home, "rules"), { recursive: true });
  writeFileSync(join(home, "bottles", "work.md"), BOTTLE_MD);
  writeFileSync(
    join(home, "rules", "basic.rules"),
    'prefix_rule(pattern=["git", "status"], decision="allow")\nprefix_rule(pattern=["rm"], decision="forbidden", justification="use trash")\n',
  );
  writeFileSync(
    join(home, "approvals.yml"),
    "# test settings\nrate_limit: { proposals: 12, per: 1h }\nproviders:\n  - name: GH_TOKEN\n    host_env: BK_APPROVALS_GH\n    hosts: [api.github.com]\n",
  );
  return home;
}

/** A proxied fetch through a session's TCP listener, trusting the bottle CA. */
export function proxiedFetch(proxyUrl: string, caPem: string): typeof fetch {
  const dispatcher = new ProxyAgent({ uri: proxyUrl, requestTls: { ca: caPem } });
  return ((input: Parameters<typeof fetch>[0], init?: RequestInit) =>
    undiciFetch(input as Parameters<typeof undiciFetch>[0], {
      ...(init as Parameters<typeof undiciFetch>[1]),
      dispatcher,
    })) as unknown as typeof fetch;
}

/** The MCP SDK's own client, connected to the approvals server through the proxy. */
export async function mcpClient(url: string, proxyUrl: string, caPem: string): Promise<Client> {
  const client = new Client({ name: "test-agent", version: "1.0.0" });
  const transport = new StreamableHTTPClientTransport(new URL(url), {
    fetch: proxiedFetch(proxyUrl, caPem),
  });
  await client.connect(transport);
  return client;
}

/** Calls a tool; returns the parsed JSON text, or `{ error }` for a tool error. */
export async function call(
  client: Client,
  name: string,
  args: Record<string, unknown> = {},
): Promise<Record<string, unknown>> {
  const r = (await client.callTool({ name, arguments: args })) as {
    content: { type: string; text: string }[];
    isError?: boolean;
  };
  const text = r.content.map((c) => c.text).join("");
  if (r.isError) return { error: text };
  return JSON.parse(text) as Record<string, unknown>;
}
