import { EventEmitter, once } from "node:events";
import { createServer, request } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createScanner } from "./scan.ts";

/**
 * The gateway scans a request body synchronously on its event loop (`scanner.scan(body)`), so
 * one slow scan delays every other request. This server does the same with a plain node:http
 * server: POST /scan scans the body, GET /health answers at once. A health probe that arrives
 * while a crafted body is being scanned must wait for one budgeted scan only, and the scan must
 * come back blocked.
 *
 * Nothing here reads a wall clock: the scanner's clock is a counter that advances by one "ms"
 * each time the scanner reads it (once every CHECK_EVERY work units), so the time budget is
 * counted work and the test is the same on an idle and on a busy machine.
 */
const BUDGET_TICKS = 40;
let ticks = 0;
const scanner = createScanner({
  maxMs: BUDGET_TICKS,
  maxWorkPerChar: 1_000_000,
  clock: () => ticks++,
});
const unbounded = createScanner({ maxMs: 600_000, maxWorkPerChar: 1_000_000 });
// 16 Mi of nested percent escapes: many decoded layers, far more work than the budget allows
const body = "%25".repeat(Math.floor((16 * 1024 * 1024 - 1) / 3));

const events = new EventEmitter();
let ticksAtHealth = -1;
const server = createServer((req, res) => {
  if (req.url === "/health") {
    ticksAtHealth = ticks;
    res.end("ok");
    return;
  }
  const chunks: Buffer[] = [];
  req.on("data", (c: Buffer) => chunks.push(c));
  req.on("end", () => {
    // The scan runs in this loop iteration's check phase; the probe the test sends on "received"
    // connects in a later poll phase, so it is queued behind the whole synchronous scan.
    setImmediate(() => {
      ticks = 0;
      const result = scanner.scan(Buffer.concat(chunks).toString("utf8"), "body");
      res.setHeader("content-type", "application/json");
      res.end(
        JSON.stringify({
          blocked: result.blocked,
          rules: result.findings.map((f) => f.rule),
          ticks,
        }),
      );
    });
    events.emit("received");
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
  it("stops at its budget: a health probe queued behind the scan waits for one budgeted scan, and the crafted body is blocked", async () => {
    // Without a budget the same scan does far more work (counted, not timed).
    const full = unbounded.measure(body);
    ticks = 0;
    const cut = scanner.measure(body);
    expect(cut.blocked).toBe(true);
    expect(cut.findings.some((f) => f.rule === "time-budget-exceeded")).toBe(true);
    // one read when the budget is created, then one per CHECK_EVERY units or more: the scan
    // stopped at the first read past its deadline
    expect(ticks).toBe(BUDGET_TICKS + 2);
    expect(cut.work).toBeLessThan(full.work / 2);

    const scanning = call("POST", "/scan", body);
    await once(events, "received");
    const probe = call("GET", "/health");
    const [verdict, health] = await Promise.all([scanning, probe]);
    const answer = JSON.parse(verdict) as { blocked: boolean; rules: string[]; ticks: number };
    expect(answer.blocked).toBe(true);
    expect(answer.rules).toContain("time-budget-exceeded");
    expect(health).toBe("ok");
    // The probe was answered after the scan, and the scan had read the clock no more often than
    // its budget allows: the event loop was held for one budgeted scan, not for the whole work.
    expect(ticksAtHealth).toBe(answer.ticks);
    expect(answer.ticks).toBeLessThanOrEqual(BUDGET_TICKS + 2);
  }, 120_000);
});
