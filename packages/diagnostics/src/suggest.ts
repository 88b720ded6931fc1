/**
 * Edit distance with insert, delete, substitute and the swap of two adjacent characters (the
 * commonest typo) each costing 1 (optimal string alignment). O(a·b) time, O(b) memory.
 */
export function editDistance(a: string, b: string): number {
  if (a === b) return 0;
  if (!a.length) return b.length;
  if (!b.length) return a.length;
  let prev2 = new Array<number>(b.length + 1).fill(0);
  let prev = new Array<number>(b.length + 1);
  let cur = new Array<number>(b.length + 1);
  for (let j = 0; j <= b.length; j++) prev[j] = j;
  for (let i = 1; i <= a.length; i++) {
    cur[0] = i;
    const ca = a.charCodeAt(i - 1);
    for (let j = 1; j <= b.length; j++) {
      const cb = b.charCodeAt(j - 1);
      let v = Math.min(
        (prev[j] as number) + 1,
        (cur[j - 1] as number) + 1,
        (prev[j - 1] as number) + (ca === cb ? 0 : 1),
      );
      if (i > 1 && j > 1 && ca === b.charCodeAt(j - 2) && a.charCodeAt(i - 2) === cb) {
        v = Math.min(v, (prev2[j - 2] as number) + 1);
      }
      cur[j] = v;
    }
    [prev2, prev, cur] = [prev, cur, prev2];
  }
  return prev[b.length] as number;
}

/** Case and `-`/`_` do not make two names different words. */
function normalize(name: string): string {
  return name.toLowerCase().replaceAll("-", "_");
}

/**
 * Up to `limit` candidates close to `input`, best first: edit distance (ignoring case and `-`
 * versus `_`) within a third of the input's length (at least 2); a candidate that starts with the input (or the input
 * with it) ranks as if it were at the edge of that budget. Candidates far longer or shorter than
 * the budget allows are skipped before any distance is computed.
 */
export function suggest(input: string, candidates: Iterable<string>, limit = 3): string[] {
  const needle = normalize(input);
  const budget = Math.max(2, Math.floor(needle.length / 3));
  const scored: { c: string; d: number }[] = [];
  const seen = new Set<string>();
  for (const c of candidates) {
    if (seen.has(c) || c === input) continue;
    seen.add(c);
    const lc = normalize(c);
    const prefix = lc.startsWith(needle) || needle.startsWith(lc);
    if (Math.abs(lc.length - needle.length) > budget && !prefix && !lc.includes(needle)) continue;
    let d = editDistance(needle, lc);
    if (d > budget && (prefix || lc.includes(needle))) d = budget;
    if (d <= budget) scored.push({ c, d });
  }
  scored.sort((x, y) => x.d - y.d || x.c.length - y.c.length || (x.c < y.c ? -1 : 1));
  return scored.slice(0, limit).map((s) => s.c);
}

/** `did you mean "a"?`, `did you mean "a", "b" or "c"?`, or "" when there is nothing to offer. */
export function didYouMean(suggestions: readonly string[]): string {
  if (!suggestions.length) return "";
  const quoted = suggestions.map((s) => `"${s}"`);
  if (quoted.length === 1) return `did you mean ${quoted[0]}?`;
  return `did you mean ${quoted.slice(0, -1).join(", ")} or ${quoted.at(-1)}?`;
}
