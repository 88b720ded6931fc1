/**
 * POSIX-style word splitting for `match` / `not_match` examples (the same rules Codex applies
 * through the `shlex` crate). Returns undefined on unbalanced quotes or a trailing backslash.
 * Linear in the input.
 */
export function shlexSplit(input: string): string[] | undefined {
  const words: string[] = [];
  let i = 0;
  const n = input.length;
  while (i < n) {
    const c = input[i] as string;
    if (c === " " || c === "\t" || c === "\n") {
      i++;
      continue;
    }
    if (c === "#") {
      while (i < n && input[i] !== "\n") i++;
      continue;
    }
    let word = "";
    while (i < n) {
      const ch = input[i] as string;
      if (ch === " " || ch === "\t" || ch === "\n") break;
      if (ch === "\\") {
        if (i + 1 >= n) return undefined;
        if (input[i + 1] !== "\n") word += input[i + 1];
        i += 2;
      } else if (ch === "'") {
        const end = input.indexOf("'", i + 1);
        if (end < 0) return undefined;
        word += input.slice(i + 1, end);
        i = end + 1;
      } else if (ch === '"') {
        i++;
        for (;;) {
          if (i >= n) return undefined;
          const d = input[i] as string;
          if (d === '"') {
            i++;
            break;
          }
          if (d === "\\" && i + 1 < n && '$`"\\\n'.includes(input[i + 1] as string)) {
            if (input[i + 1] !== "\n") word += input[i + 1];
            i += 2;
          } else {
            word += d;
            i++;
          }
        }
      } else {
        word += ch;
        i++;
      }
    }
    words.push(word);
  }
  return words;
}
