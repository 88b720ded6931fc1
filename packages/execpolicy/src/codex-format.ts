/**
 * Renders matches exactly as `codex execpolicy check` prints them (compact JSON, fixed key order,
 * no `decision` key when nothing matched).
 */
import type { RuleMatch } from "./policy.ts";
import { decisionOf } from "./policy.ts";

export function renderCodex(matches: readonly RuleMatch[], pretty = false): string {
  const matchedRules = matches.map((m) => {
    const inner: Record<string, unknown> = { matchedPrefix: m.matchedPrefix, decision: m.decision };
    if (m.resolvedProgram !== undefined) inner.resolvedProgram = m.resolvedProgram;
    if (m.justification !== undefined) inner.justification = m.justification;
    return { prefixRuleMatch: inner };
  });
  const decision = decisionOf(matches);
  const out: Record<string, unknown> = { matchedRules };
  if (decision !== undefined) out.decision = decision;
  return pretty ? JSON.stringify(out, null, 2) : JSON.stringify(out);
}
