/** A policy decision. Ordered from most to least permissive: `allow < prompt < forbidden`. */
export type Decision = "allow" | "prompt" | "forbidden";

const RANK: Record<Decision, number> = { allow: 0, prompt: 1, forbidden: 2 };

/** The strictest of two decisions (strictest wins). */
export function stricter(a: Decision, b: Decision): Decision {
  return RANK[a] >= RANK[b] ? a : b;
}

/** True when `a` is at least as strict as `b`. */
export function atLeast(a: Decision, b: Decision): boolean {
  return RANK[a] >= RANK[b];
}

export function isDecision(value: unknown): value is Decision {
  return value === "allow" || value === "prompt" || value === "forbidden";
}
