import { describe, expect, it } from "vitest";
import { backoffDelay, retryable, serverDelayMs } from "./client.ts";

const h = (o: Record<string, string>) => ({ get: (k: string) => o[k] ?? null });

describe("retry policy", () => {
  it("reads retry-after-ms first, then retry-after seconds or date", () => {
    expect(serverDelayMs(h({ "retry-after-ms": "250", "retry-after": "9" }))).toBe(250);
    expect(serverDelayMs(h({ "retry-after": "2" }))).toBe(2000);
    expect(serverDelayMs(h({ "retry-after": new Date(10_000).toUTCString() }), 4_000)).toBe(6000);
    expect(serverDelayMs(h({ "retry-after": "soon" }))).toBeUndefined();
    expect(serverDelayMs(h({}))).toBeUndefined();
  });

  it("honours a server delay up to a minute, else backs off exponentially with a cap", () => {
    expect(backoffDelay(0, 500, 1200)).toBe(1200);
    expect(backoffDelay(0, 500, 120_000, () => 1)).toBe(500);
    expect(backoffDelay(3, 500, undefined, () => 1)).toBe(4000);
    expect(backoffDelay(10, 500, undefined, () => 1)).toBe(8000);
    expect(backoffDelay(1, 500, undefined, () => 0)).toBe(750);
  });

  it("x-should-retry wins over the status", () => {
    expect(retryable(429, null)).toBe(true);
    expect(retryable(500, "false")).toBe(false);
    expect(retryable(400, "true")).toBe(true);
    expect(retryable(400, null)).toBe(false);
    expect(retryable(401, null)).toBe(false);
  });
});
