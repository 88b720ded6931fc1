/** Edit distance (insert, delete, substitute), O(a·b) time, O(b) memory. */
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
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + cost);
    }
    [prev, cur] = [cur, prev];
  }
  return prev[b.length]!;
}

/**
 * Up to `limit` candidates close to `input`, best first: case-insensitive edit distance within a
 * third of the input's length (at least 2), with prefix/substring matches ranked in too.
 */
export function suggest(input: string, candidates: Iterable<string>, limit = 3): string[] {
  const needle = input.toLowerCase();
  const budget = Math.max(2, Math.floor(needle.length / 3));
  const scored: { c: string; d: number }[] = [];
  const seen = new Set<string>();
  for (const c of candidates) {
    if (seen.has(c)) continue;
    seen.add(c);
    const lc = c.toLowerCase();
    if (
      Math.abs(lc.length - needle.length) > budget &&
      !lc.includes(needle) &&
      !needle.includes(lc)
    ) {
      continue;
    }
    let d = editDistance(needle, lc);
    if (d > budget && (lc.startsWith(needle) || needle.startsWith(lc))) d = budget;
    if (d <= budget) scored.push({ c, d });
  }
  scored.sort((x, y) => x.d - y.d || x.c.length - y.c.length || (x.c < y.c ? -1 : 1));
  return scored.slice(0, limit).map((s) => s.c);
}

/** "did you mean a, b or c?" or "" */
export function didYouMean(suggestions: readonly string[]): string {
  if (!suggestions.length) return "";
  if (suggestions.length === 1) return `did you mean "${suggestions[0]}"?`;
  const quoted = suggestions.map((s) => `"${s}"`);
  return `did you mean ${quoted.slice(0, -1).join(", ")} or ${quoted.at(-1)}?`;
}
