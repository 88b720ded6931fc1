// Bench child: the floor. A bare Node proxy (node:http server + undici Pool, the same parts the
// gateway is built on) that forwards the body as it came and sends the response back, with no
// identity, routing, DLP, metering or budgets. The gateway's added latency minus this one's is
// what bottlekit's own work costs.
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { Pool } from "undici";

const upstream = process.env["BENCH_UPSTREAM_URL"] as string;
const key = process.env["OPENAI_API_KEY"] as string;
const pool = new Pool(upstream, { connections: 128, pipelining: 1, keepAliveTimeout: 30_000 });
const server = createServer({ keepAliveTimeout: 65_000, requestTimeout: 0 }, (req, res) => {
  const chunks: Buffer[] = [];
  req.on("data", (c: Buffer) => chunks.push(c));
  req.on("end", async () => {
    const raw = Buffer.concat(chunks);
    const body = JSON.parse(raw.toString("utf8")) as { model: string };
    body.model = body.model.replace(/^openai\//, "");
    const out = JSON.stringify(body);
    const up = await pool.request({
      path: `/v1${req.url}`.replace("/v1/v1/", "/v1/"),
      method: "POST",
      headers: {
        "content-type": "application/json",
        "content-length": String(Buffer.byteLength(out)),
        authorization: `Bearer ${key}`,
      },
      body: out,
    });
    const buf = Buffer.from(await up.body.arrayBuffer());
    res.writeHead(up.statusCode, {
      "content-type": String(up.headers["content-type"] ?? "application/json"),
      "content-length": buf.length,
    });
    res.end(buf);
  });
});
server.listen(0, "127.0.0.1", () => {
  process.send?.({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` });
});
process.on("message", (m) => {
  if (m === "cpu") process.send?.({ cpu: process.cpuUsage() });
  if (m === "stop") process.exit(0);
});
