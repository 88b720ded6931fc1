import { BudgetStoreError } from "./errors.ts";
import type { BudgetInput } from "./types.ts";
import { isBudgetWindow } from "./window.ts";

const ENTRY = /^([A-Za-z0-9][A-Za-z0-9._-]*)=([0-9]+(?:\.[0-9]+)?)([kKmMgG]?)(?:\/([a-z0-9]+))?$/;
const SCALE: Record<string, number> = { "": 1, k: 1e3, m: 1e6, g: 1e9 };

/**
 * Parse a launch flag such as `--budget anthropic=200k,openai=1m/daily` into budgets for one
 * bottle with source "flag" (which wins over settings and manifests for that run).
 * Grammar: entries separated by commas, each `provider=<tokens>[k|m|g][/<window>]`.
 */
export function parseBudgetFlag(value: string, bottle: string): BudgetInput[] {
  if (typeof value !== "string" || value.trim() === "") {
    throw new BudgetStoreError("E_USAGE", "--budget: empty value", {
      hint: "use --budget <provider>=<tokens>[/<window>], e.g. --budget anthropic=200k/daily",
    });
  }
  const seen = new Set<string>();
  return value.split(",").map((part, i) => {
    const entry = part.trim();
    const m = ENTRY.exec(entry);
    if (m === null) {
      throw new BudgetStoreError(
        "E_USAGE",
        `--budget: entry ${i + 1} ${JSON.stringify(entry)} is not <provider>=<tokens>[/<window>]`,
        {
          hint: "e.g. anthropic=200000, openai=1.5m/daily, gemini=50k/7d",
        },
      );
    }
    const [, provider = "", num = "", unit = "", window] = m;
    const tokens = Number(num) * (SCALE[unit.toLowerCase()] ?? 1);
    if (!Number.isSafeInteger(tokens)) {
      throw new BudgetStoreError(
        "E_USAGE",
        `--budget: ${JSON.stringify(entry)} is not a whole number of tokens`,
        {
          hint: "use an integer, or a suffix that makes one (1.5k = 1500)",
        },
      );
    }
    if (window !== undefined && !isBudgetWindow(window)) {
      throw new BudgetStoreError(
        "E_USAGE",
        `--budget: ${JSON.stringify(entry)} has an unknown window "${window}"`,
        {
          hint: 'use "none", "daily", "weekly", "monthly" or "<N>d"',
        },
      );
    }
    if (seen.has(provider)) {
      throw new BudgetStoreError("E_USAGE", `--budget: provider "${provider}" is given twice`, {
        hint: "give each provider once",
      });
    }
    seen.add(provider);
    const out: BudgetInput = { scope: "bottle", key: bottle, provider, tokens, source: "flag" };
    if (window !== undefined) out.window = window as BudgetInput["window"];
    return out;
  });
}
