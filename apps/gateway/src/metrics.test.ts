import { describe, expect, it } from "vitest";
import { Counter, GatewayMetrics, Histogram } from "./metrics.ts";

describe("metrics", () => {
  it("renders counters with escaped labels and cumulative histogram buckets", () => {
    const c = new Counter("x_total", "help", ["a"]);
    c.inc(['q"uo\\te\nnl']);
    c.inc(['q"uo\\te\nnl'], 2);
    expect(c.render()).toContain('x_total{a="q\\"uo\\\\te\\nnl"} 3');
    const h = new Histogram("h_seconds", "help", ["p"], [0.1, 1]);
    h.observe(["x"], 0.05);
    h.observe(["x"], 0.5);
    h.observe(["x"], 5);
    const text = h.render();
    expect(text).toContain('h_seconds_bucket{p="x",le="0.1"} 1');
    expect(text).toContain('h_seconds_bucket{p="x",le="1"} 2');
    expect(text).toContain('h_seconds_bucket{p="x",le="+Inf"} 3');
    expect(text).toContain('h_seconds_count{p="x"} 3');
  });

  it("exports every gateway metric with HELP and TYPE", () => {
    const text = new GatewayMetrics().render();
    for (const name of [
      "bottlekit_gateway_requests_total",
      "bottlekit_gateway_request_duration_seconds",
      "bottlekit_gateway_upstream_duration_seconds",
      "bottlekit_gateway_time_to_first_token_seconds",
      "bottlekit_gateway_tokens_total",
      "bottlekit_gateway_budget_remaining_tokens",
      "bottlekit_gateway_dlp_findings_total",
    ]) {
      expect(text).toContain(`# HELP ${name} `);
      expect(text).toContain(`# TYPE ${name} `);
    }
  });
});
