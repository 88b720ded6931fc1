/**
 * A small Prometheus text-format registry. Hot-path cost: one Map lookup per observation (label
 * values joined into a key) plus a linear walk over at most ~15 histogram buckets; rendering is
 * linear in the number of series and happens only on scrape.
 */

type Series<T> = Map<string, { labels: readonly string[]; value: T }>;

function escapeLabel(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"');
}

function labelText(names: readonly string[], values: readonly string[], extra = ""): string {
  if (names.length === 0 && extra === "") return "";
  const parts = names.map((n, i) => `${n}="${escapeLabel(values[i] ?? "")}"`);
  if (extra !== "") parts.push(extra);
  return `{${parts.join(",")}}`;
}

abstract class Metric {
  constructor(
    readonly name: string,
    readonly help: string,
    readonly labelNames: readonly string[],
  ) {}
  abstract render(): string;
  protected header(type: string): string {
    return `# HELP ${this.name} ${this.help}\n# TYPE ${this.name} ${type}\n`;
  }
}

/** A metric with one number per label set; counters and gauges differ only in their type line. */
abstract class ScalarMetric extends Metric {
  protected abstract readonly type: "counter" | "gauge";
  protected readonly series: Series<number> = new Map();
  inc(labels: readonly string[], by = 1): void {
    const key = labels.join("\u0001");
    const s = this.series.get(key);
    if (s) s.value += by;
    else this.series.set(key, { labels: [...labels], value: by });
  }
  get(labels: readonly string[]): number {
    return this.series.get(labels.join("\u0001"))?.value ?? 0;
  }
  render(): string {
    let out = this.header(this.type);
    for (const s of this.series.values()) {
      out += `${this.name}${labelText(this.labelNames, s.labels)} ${s.value}\n`;
    }
    return out;
  }
}

export class Counter extends ScalarMetric {
  protected readonly type = "counter";
}

export class Gauge extends ScalarMetric {
  protected readonly type = "gauge";
  set(labels: readonly string[], value: number): void {
    const key = labels.join("\u0001");
    const s = this.series.get(key);
    if (s) s.value = value;
    else this.series.set(key, { labels: [...labels], value });
  }
}

interface HistogramState {
  counts: number[];
  sum: number;
  count: number;
}

export class Histogram extends Metric {
  private readonly series: Series<HistogramState> = new Map();
  constructor(
    name: string,
    help: string,
    labelNames: readonly string[],
    readonly buckets: readonly number[],
  ) {
    super(name, help, labelNames);
  }
  observe(labels: readonly string[], value: number): void {
    const key = labels.join("\u0001");
    let s = this.series.get(key);
    if (!s) {
      s = {
        labels: [...labels],
        value: { counts: new Array<number>(this.buckets.length).fill(0), sum: 0, count: 0 },
      };
      this.series.set(key, s);
    }
    const st = s.value;
    for (let i = 0; i < this.buckets.length; i++) {
      if (value <= (this.buckets[i] as number)) {
        st.counts[i] = (st.counts[i] as number) + 1;
        break;
      }
    }
    st.sum += value;
    st.count++;
  }
  count(labels: readonly string[]): number {
    return this.series.get(labels.join("\u0001"))?.value.count ?? 0;
  }
  render(): string {
    let out = this.header("histogram");
    for (const s of this.series.values()) {
      let cumulative = 0;
      this.buckets.forEach((b, i) => {
        cumulative += s.value.counts[i] as number;
        out += `${this.name}_bucket${labelText(this.labelNames, s.labels, `le="${b}"`)} ${cumulative}\n`;
      });
      out += `${this.name}_bucket${labelText(this.labelNames, s.labels, `le="+Inf"`)} ${s.value.count}\n`;
      out += `${this.name}_sum${labelText(this.labelNames, s.labels)} ${s.value.sum}\n`;
      out += `${this.name}_count${labelText(this.labelNames, s.labels)} ${s.value.count}\n`;
    }
    return out;
  }
}

const SECONDS = [
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60,
];

/** Every metric the gateway exports. Names follow Prometheus conventions (`_total`, `_seconds`). */
export class GatewayMetrics {
  readonly requests = new Counter(
    "bottlekit_gateway_requests_total",
    "HTTP requests handled, by endpoint, status code and provider.",
    ["endpoint", "status", "provider"],
  );
  readonly latency = new Histogram(
    "bottlekit_gateway_request_duration_seconds",
    "Time from request received to response finished.",
    ["endpoint", "provider"],
    SECONDS,
  );
  readonly upstreamLatency = new Histogram(
    "bottlekit_gateway_upstream_duration_seconds",
    "Time from upstream request sent to upstream response headers received.",
    ["provider"],
    SECONDS,
  );
  readonly ttft = new Histogram(
    "bottlekit_gateway_time_to_first_token_seconds",
    "Streams: time from request received to the first body byte sent to the client.",
    ["provider", "model"],
    SECONDS,
  );
  readonly tokens = new Counter(
    "bottlekit_gateway_tokens_total",
    "Tokens metered, by provider, model and kind (input, output, cache_read, cache_write, reasoning).",
    ["provider", "model", "kind"],
  );
  readonly usageMissing = new Counter(
    "bottlekit_gateway_usage_missing_total",
    "Calls whose upstream reported no usage; charged their full reservation.",
    ["provider", "model"],
  );
  readonly budgetRemaining = new Gauge(
    "bottlekit_gateway_budget_remaining_tokens",
    "Tokens still reservable on the binding budget, per bottle, agent and provider (updated after each settle).",
    ["bottle", "agent", "provider", "scope"],
  );
  readonly budgetRefusals = new Counter(
    "bottlekit_gateway_budget_refusals_total",
    "Requests refused for budget reasons (exhausted, insufficient, cut-off).",
    ["bottle", "provider", "reason"],
  );
  readonly dlpFindings = new Counter(
    "bottlekit_gateway_dlp_findings_total",
    "DLP findings, by direction (outbound, inbound), detector and action taken.",
    ["direction", "detector", "action"],
  );
  readonly upstreamErrors = new Counter(
    "bottlekit_gateway_upstream_errors_total",
    "Upstream failures, by provider and kind (timeout, reset, status_5xx, truncated).",
    ["provider", "kind"],
  );
  readonly inFlight = new Gauge(
    "bottlekit_gateway_in_flight_requests",
    "Requests currently being handled.",
    [],
  );

  render(): string {
    return [
      this.requests,
      this.latency,
      this.upstreamLatency,
      this.ttft,
      this.tokens,
      this.usageMissing,
      this.budgetRemaining,
      this.budgetRefusals,
      this.dlpFindings,
      this.upstreamErrors,
      this.inFlight,
    ]
      .map((m) => m.render())
      .join("");
  }
}
