import { spawn } from "node:child_process";
import { readFile, writeFile } from "node:fs/promises";
import type { IncomingMessage, ServerResponse } from "node:http";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { createProxyHost, type LlmContext, type ProxyHost } from "@bottlekit/egress-proxy";
import { afterEach, beforeEach, expect, it } from "vitest";
import { type Sandbox, sandbox, UPSTREAM_KEY } from "./helpers.ts";

// Spawns the built bin (turbo's test task builds first): NODE_EXTRA_CA_CERTS is read at start-up.
const BIN = fileURLToPath(new URL("../bin/agentcli.js", import.meta.url));

let sb: Sandbox;
let host: ProxyHost;
beforeEach(async () => {
  sb = await sandbox();
});
afterEach(async () => {
  await host?.close();
  await sb.cleanup();
});

it("bottled: --direct through the proxy door with a placeholder key; the controller's LLM hook sees every call", async () => {
  const seen: { ctx: LlmContext; auth: string | undefined; path: string }[] = [];
  // Stands in for the gateway's LLM pipeline behind the proxy door: swaps the placeholder for
  // the real key and forwards to the (fake) provider.
  const llmHandler = (req: IncomingMessage, res: ServerResponse, ctx: LlmContext) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", async () => {
      seen.push({ ctx, auth: req.headers.authorization, path: req.url ?? "" });
      const up = await fetch(`${sb.upstream.url}${req.url}`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${UPSTREAM_KEY}` },
        body: Buffer.concat(chunks),
      });
      res.writeHead(up.status, {
        "content-type": up.headers.get("content-type") ?? "application/json",
      });
      res.end(Buffer.from(await up.arrayBuffer()));
    });
  };
  host = createProxyHost({
    home: sb.home,
    llmHandler,
    credentialSource: (spec) => (spec.hostEnv === "BK_TEST_OPENAI" ? UPSTREAM_KEY : undefined),
  });
  const session = await host.register({
    bottle: "agent-bottle",
    agent: "agentcli",
    tcp: true,
    llmHosts: ["api.openai.com"],
    credentials: [{ name: "OPENAI_API_KEY", hostEnv: "BK_TEST_OPENAI", hosts: ["api.openai.com"] }],
    routes: [],
  });
  const tcp = session.tcp;
  if (tcp === undefined) throw new Error("no tcp listener");
  const proxyUrl = `http://bottlekit:${tcp.token}@127.0.0.1:${tcp.port}`;
  const placeholder = session.env["OPENAI_API_KEY"];
  expect(placeholder).toBeDefined();

  await writeFile(join(sb.dir, "p.rules"), 'prefix_rule(pattern=["ls"], decision="allow")\n');
  sb.upstream.enqueue(
    {
      toolCalls: [
        {
          id: "w",
          name: "write_file",
          arguments: JSON.stringify({ path: "out.txt", content: "bottled\n" }),
        },
      ],
    },
    { text: "wrote out.txt" },
  );
  const env: NodeJS.ProcessEnv = {
    PATH: process.env["PATH"],
    HOME: sb.home,
    BOTTLEKIT_HOME: sb.home,
    AGENTCLI_ALLOW_ROOT: "1",
    AGENTCLI_AUDIT: sb.audit,
    HTTPS_PROXY: proxyUrl,
    ...session.env, // placeholders and the CA variables, as bottle run sets them
  };
  const child = spawn(
    process.execPath,
    [
      BIN,
      "-C",
      sb.ws,
      "--direct",
      "-m",
      "openai/gpt-4o-mini",
      "--rules",
      join(sb.dir, "p.rules"),
      "--json",
      "write it",
    ],
    { env, stdio: ["ignore", "pipe", "pipe"] },
  );
  let out = "";
  let err = "";
  child.stdout.on("data", (d: Buffer) => {
    out += d.toString();
  });
  child.stderr.on("data", (d: Buffer) => {
    err += d.toString();
  });
  const code = await new Promise<number | null>((resolve) => child.on("exit", (c) => resolve(c)));
  expect(err).toBe("");
  expect(code).toBe(0);
  expect(JSON.parse(out)).toMatchObject({
    status: "final",
    answer: "wrote out.txt",
    model: "gpt-4o-mini",
  });
  expect(await readFile(join(sb.ws, "out.txt"), "utf8")).toBe("bottled\n");
  expect(seen).toHaveLength(2);
  for (const s of seen) {
    expect(s.ctx).toMatchObject({
      bottle: "agent-bottle",
      agent: "agentcli",
      host: "api.openai.com",
    });
    expect(s.path).toBe("/v1/chat/completions");
    expect(s.auth).toBe(`Bearer ${placeholder}`); // the agent only ever held the placeholder
  }
  expect((sb.upstream.requests[0]?.body as { model?: string } | undefined)?.model).toBe(
    "gpt-4o-mini",
  );
  const audit = await readFile(sb.audit, "utf8");
  expect(audit).not.toContain(tcp.token);
});
