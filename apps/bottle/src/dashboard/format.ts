import type { BudgetBar } from "./model.ts";

const SPARKS = ["▁", "▂", "▃", "▄", "▅", "▆", "▇", "█"];

/** A sparkline of `values` (one character each; zero is the lowest block). */
export function sparkline(values: readonly number[]): string {
  const max = Math.max(0, ...values);
  return values
    .map((v) => {
      if (v <= 0 || max <= 0) return SPARKS[0];
      const i = 1 + Math.floor((v / max) * (SPARKS.length - 2) + 0.5);
      return SPARKS[Math.min(SPARKS.length - 1, i)];
    })
    .join("");
}

/** A bar of `width` cells filled to used/limit (capped at full). */
export function bar(used: number, limit: number, width: number): string {
  const f = limit > 0 ? Math.min(1, Math.max(0, used / limit)) : 1;
  const full = Math.round(f * width);
  return "█".repeat(full) + "░".repeat(Math.max(0, width - full));
}

export function percent(used: number, limit: number): string {
  if (limit <= 0) return "100%";
  const p = Math.floor((used / limit) * 100);
  return p > 999 ? ">999%" : `${p}%`;
}

/** Exact with separators when it fits in `width`, else compact (12.3k, 4.56M, 7.8G). */
export function tokens(n: number, width = 9): string {
  const exact = Math.round(n)
    .toString()
    .replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  if (exact.length <= width) return exact;
  for (const [div, unit] of [
    [1e9, "G"],
    [1e6, "M"],
    [1e3, "k"],
  ] as const) {
    if (n >= div) {
      const v = n / div;
      return `${v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2)}${unit}`;
    }
  }
  return exact;
}

export function usd(n: number, unpriced = false): string {
  const text =
    n === 0
      ? "$0"
      : n < 0.01
        ? `$${n.toFixed(4)}`
        : n < 1000
          ? `$${n.toFixed(2)}`
          : `$${Math.round(n)}`;
  return unpriced ? `${text}+` : text;
}

/** A short duration: 45s, 12m, 3h, 2d; ">99d" beyond. */
export function duration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h`;
  const d = Math.floor(s / 86_400);
  return d > 99 ? ">99d" : `${d}d`;
}

/** Pads or truncates to exactly `width` cells (… marks a cut). */
export function fit(text: string, width: number, align: "left" | "right" = "left"): string {
  if (width <= 0) return "";
  const chars = [...text];
  if (chars.length > width) return width === 1 ? "…" : `${chars.slice(0, width - 1).join("")}…`;
  return align === "right" ? text.padStart(width) : text.padEnd(width);
}

export function budgetLabel(b: BudgetBar): string {
  const limit = b.unit === "usd" ? usd(b.limit) : tokens(b.limit, 12);
  const used = b.unit === "usd" ? usd(b.used) : tokens(b.used, 12);
  const scope = b.scope === "global" || b.scope === "ceiling" ? b.scope : `${b.scope} ${b.key}`;
  return `${scope} ${b.provider} ${used}/${limit}${b.window === "none" ? "" : ` ${b.window}`} (${b.policy})`;
}
