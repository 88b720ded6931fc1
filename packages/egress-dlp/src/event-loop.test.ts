import { createServer, request } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createScanner } from "./scan.ts";

/**
 * The gateway scans a request body synchronously on its event loop (`scanner.scan(body)`), so
 * one slow scan delays every other request. This server does the same with a plain node:http
 * server: POST /scan scans the body, GET /health answers at once. A health probe sent while a
 * crafted body is being scanned must be answered within the scan budget (plus scheduling slack),
 * and the scan must come back blocked.
 */
const BUDGET_MS = 200;
const scanner = createScanner({ maxMs: BUDGET_MS, maxWorkPerChar: 1_000_000 });
const unbounded = createScanner({ maxMs: 600_000, maxWorkPerChar: 1_000_000 });
// 16 Mi of nested percent escapes: many decoded layers, seconds of work without a budget
const body = "%25".repeat(Math.floor((16 * 1024 * 1024 - 1) / 3));

const server = createServer((req, res) => {
  if (req.url === "/health") {
    res.end("ok");
    return;
  }
  const chunks: Buffer[] = [];
  req.on("data", (c: Buffer) => chunks.push(c));
  req.on("end", () => {
    const result = scanner.scan(Buffer.concat(chunks).toString("utf8"), "body");
    res.setHeader("content-type", "application/json");
    res.end(JSON.stringify({ blocked: result.blocked, rules: result.findings.map((f) => f.rule) }));
  });
});
let port = 0;
beforeAll(async () => {
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  port = (server.address() as AddressInfo).port;
});
afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

function call(method: string, path: string, payload?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, method, path }, (res) => {
      let data = "";
      res.on("data", (d) => {
        data += String(d);
      });
      res.on("end", () => resolve(data));
    });
    req.on("error", reject);
    req.end(payload);
  });
}

describe("a scan on the event loop", () => {
  it("stops at its budget: a concurrent health probe is answered and the crafted body is blocked", async () => {
    // without a budget the same scan does far more work (counted, not timed)
    const full = unbounded.measure(body);
    const cut = scanner.measure(body);
    expect(cut.blocked).toBe(true);
    expect(cut.findings.some((f) => f.rule === "time-budget-exceeded")).toBe(true);
    expect(cut.work).toBeLessThan(full.work / 2);

    const scanning = call("POST", "/scan", body);
    // the probe goes out while the body is still arriving or being scanned
    await new Promise((r) => setTimeout(r, 20));
    const sent = performance.now();
    const probe = call("GET", "/health").then((text) => ({
      text,
      waited: performance.now() - sent,
    }));
    const [verdict, health] = await Promise.all([scanning, probe]);
    expect(JSON.parse(verdict)).toMatchObject({ blocked: true });
    expect(health.text).toBe("ok");
    // the budget plus generous slack for a loaded 2-core machine; unbounded, this scan takes seconds
    expect(health.waited).toBeLessThan(BUDGET_MS + 1500);
  }, 120_000);
});
