/**
 * Approvals bench: prints, in one run,
 *  (a) approve → in force in the proxy, told over the control socket (p50, max),
 *  (b) the same with no control socket (the embedded controller polls the queue every 200 ms),
 *  (c) one MCP tool call (list_routes) through the session's proxy, SDK client, p50,
 *  (d) propose_route_change through the proxy, p50.
 * Environment: BENCH_ROUNDS (default 20).
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createProxyHost, type RegisterResult, startControlServer } from "@bottlekit/egress-proxy";
import { APPROVALS_URL, ApprovalStore, createApprovals, decide } from "../src/index.ts";
import { mcpClient } from "../test/harness.ts";

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 20);
const p50 = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;
const max = (xs: number[]) => Math.max(...xs);

async function scenario(withSocket: boolean) {
  const home = mkdtempSync(join(tmpdir(), "bk-apb-"));
  mkdirSync(join(home, "state"), { recursive: true });
  const host = createProxyHost({ home });
  const control = withSocket ? await startControlServer(host) : undefined;
  const approvals = createApprovals(host, {
    home,
    config: {
      timeoutMs: 600_000,
      holdTimeoutMs: 60_000,
      rateLimit: { proposals: 100_000, perMs: 60_000 },
      auto: "off",
      providers: [],
    },
  });
  const s: RegisterResult = await host.register({ bottle: "bench", tcp: true, routes: [] });
  const t = s.tcp as NonNullable<RegisterResult["tcp"]>;
  const client = await mcpClient(
    APPROVALS_URL,
    `http://bottlekit:${t.token}@127.0.0.1:${t.port}`,
    readFileSync(s.caCertPath, "utf8"),
  );
  const operator = ApprovalStore.open(home);
  const apply: number[] = [];
  const calls: number[] = [];
  const proposes: number[] = [];
  try {
    for (let i = 0; i < ROUNDS; i++) {
      let t0 = performance.now();
      await client.callTool({ name: "list_routes", arguments: {} });
      calls.push(performance.now() - t0);
      t0 = performance.now();
      const r = (await client.callTool({
        name: "propose_route_change",
        arguments: { op: "add", route: { host: `h${i}.example.com` }, justification: "bench" },
      })) as { content: { text: string }[] };
      proposes.push(performance.now() - t0);
      const id = (JSON.parse(r.content[0]?.text ?? "{}") as { id: string }).id;
      t0 = performance.now();
      const d = await decide(operator, id, { home, approve: true, waitMs: 5000 });
      if (!d.proposal.inForce) throw new Error("not in force within 5 s");
      apply.push(performance.now() - t0);
    }
  } finally {
    await client.close();
    operator.close();
    await approvals.close();
    await control?.close();
    await host.close();
    rmSync(home, { recursive: true, force: true });
  }
  return { apply, calls, proposes };
}

const socket = await scenario(true);
const poll = await scenario(false);
const f = (ms: number) => `${ms.toFixed(1)} ms`;
console.log(`approvals bench (${ROUNDS} rounds, node ${process.version})`);
console.log(
  `(a) approve → in force, control socket:  p50 ${f(p50(socket.apply))}, max ${f(max(socket.apply))}`,
);
console.log(
  `(b) approve → in force, queue poll only: p50 ${f(p50(poll.apply))}, max ${f(max(poll.apply))}`,
);
console.log(
  `(c) MCP tool call through the proxy:      p50 ${f(p50([...socket.calls, ...poll.calls]))}`,
);
console.log(
  `(d) propose_route_change through proxy:   p50 ${f(p50([...socket.proposes, ...poll.proposes]))}`,
);
