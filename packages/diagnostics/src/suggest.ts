/** Edit distance (insert, delete, substitute): O(a·b) time, O(b) memory. */
export function editDistance(a: string, b: string): number {
  if (a === b) return 0;
  if (!a.length) return b.length;
  if (!b.length) return a.length;
  let prev = new Array<number>(b.length + 1);
  let cur = new Array<number>(b.length + 1);
  for (let j = 0; j <= b.length; j++) prev[j] = j;
  for (let i = 1; i <= a.length; i++) {
    cur[0] = i;
    const ca = a.charCodeAt(i - 1);
    for (let j = 1; j <= b.length; j++) {
      const cost = ca === b.charCodeAt(j - 1) ? 0 : 1;
      cur[j] = Math.min(
        (prev[j] as number) + 1,
        (cur[j - 1] as number) + 1,
        (prev[j - 1] as number) + cost,
      );
    }
    [prev, cur] = [cur, prev];
  }
  return prev[b.length] as number;
}

/**
 * Up to `limit` candidates close to `input`, best first: case-insensitive edit distance within a
 * third of the input's length (at least 2); a candidate that starts with the input (or the input
 * with it) ranks as if it were at the edge of that budget. Candidates far longer or shorter than
 * the budget allows are skipped before any distance is computed.
 */
export function suggest(input: string, candidates: Iterable<string>, limit = 3): string[] {
  const needle = input.toLowerCase();
  const budget = Math.max(2, Math.floor(needle.length / 3));
  const scored: { c: string; d: number }[] = [];
  const seen = new Set<string>();
  for (const c of candidates) {
    if (seen.has(c) || c === input) continue;
    seen.add(c);
    const lc = c.toLowerCase();
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
