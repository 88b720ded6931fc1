/**
 * Aho-Corasick automaton, case-insensitive for ASCII letters. Keywords are ASCII; every character
 * that occurs in no keyword maps to one "other" symbol, which always leads back to the root.
 *
 * Bound: O(n + hits) per search with a dense table over the compact alphabet, O(1) per character.
 */
export interface AhoTables {
  sym: Uint8Array;
  width: number;
  /** log2(width). */
  shift: number;
  outHead: Int32Array;
  outputs: Int32Array;
  /** The most keywords that can end at one character (longest output list). */
  maxOutputs: number;
  /**
   * The same transitions indexed and valued by row offsets: `next[row | sym]` is the next state's
   * row (`state << shift`), with bit 30 set when that state has outputs. A loop following it skips
   * one shift per character on its serial dependency chain.
   */
  next: Int32Array;
  /** The longest keyword: the automaton's state at any offset depends on this many characters before it. */
  maxLength: number;
}

export class AhoCorasick {
  /** UTF-16 unit -> symbol; 0 for every character that appears in no keyword (case folded). */
  private readonly sym: Uint8Array;
  private readonly width: number;
  private readonly shift: number;
  /** Per state: index into `outputs`, or -1. */
  private readonly outHead: Int32Array;
  /** Flattened output lists: pattern ids, each list terminated by -1. */
  private readonly outputs: Int32Array;
  private readonly maxOutputs: number;
  private readonly next: Int32Array;
  readonly patterns: readonly string[];
  private readonly lengths: Int32Array;

  /** The raw tables, for loops that fuse the automaton with other per-character work. */
  tables(): AhoTables {
    return {
      sym: this.sym,
      width: this.width,
      shift: this.shift,
      outHead: this.outHead,
      outputs: this.outputs,
      maxOutputs: this.maxOutputs,
      next: this.next,
      maxLength: Math.max(0, ...this.lengths),
    };
  }

  constructor(patterns: readonly string[]) {
    this.patterns = patterns;
    this.lengths = Int32Array.from(patterns, (p) => {
      if (p.length > 255)
        throw new Error(`keyword longer than 255 characters: ${p.slice(0, 20)}...`);
      return p.length;
    });
    // Compact alphabet: only characters that occur in keywords get their own symbol, so the
    // transition table stays small enough to live in cache.
    const sym = new Uint8Array(65536);
    let width = 1;
    for (const p of patterns) {
      for (const ch of p.toLowerCase()) {
        const c = ch.charCodeAt(0);
        if (c >= 128) throw new Error(`keyword ${JSON.stringify(p)} must be ASCII`);
        if (sym[c] === 0) {
          if (width >= 255) throw new Error("too many distinct keyword characters");
          sym[c] = width;
          if (c >= 97 && c <= 122) sym[c - 32] = width;
          width++;
        }
      }
    }
    this.sym = sym;
    // Row width rounded up to a power of two so a transition index is a shift and an or.
    let shift = 0;
    while (1 << shift < width) shift++;
    width = 1 << shift;
    this.width = width;
    this.shift = shift;
    // The trie as a dense table (state * width + symbol -> child, 0 = none: the root is no
    // child), with each state's children listed, so the breadth-first pass below copies a state's
    // failure row natively and then writes only its own children over it. The pass turns the
    // table into `next` in place, one row at a time (a second table of the same size was 80 of
    // the token keywords' fresh pages).
    let maxStates = 1;
    for (const p of patterns) maxStates += p.length;
    const goto = new Int32Array(maxStates * width);
    const children: number[][] = [[]];
    const own: number[][] = [[]];
    patterns.forEach((p, id) => {
      let s = 0;
      for (const ch of p.toLowerCase()) {
        const c = sym[ch.charCodeAt(0)] as number;
        let child = goto[s * width + c] as number;
        if (child === 0) {
          child = own.length;
          own.push([]);
          children.push([]);
          goto[s * width + c] = child;
          children[s]?.push(c);
        }
        s = child;
      }
      own[s]?.push(id);
    });
    const n = own.length;
    if (n >= 0x8000) throw new Error("too many keywords for one automaton (32767 states)");
    // The row-offset table (`next`) is built over the trie: a state's failure row is copied
    // natively, then its own children are written over it. A row is still the trie's until its
    // state is taken from the queue, and every row read as a failure row is already converted:
    // a failure state is shallower, so it was taken before. Whether a state has outputs (its own,
    // or its failure state's) is known when it is first reached, for the same reason.
    const next = goto.subarray(0, n * width);
    /** The children of the state being converted, read from its trie row before it is overwritten. */
    const kids = new Int32Array(width);
    const fail = new Int32Array(n);
    const hasOut = new Uint8Array(n);
    hasOut[0] = (own[0]?.length ?? 0) > 0 ? 1 : 0;
    const outLists: number[][] = own.map((o) => [...o]);
    const queue: number[] = [];
    const reach = (t: number, f: number): number => {
      fail[t] = f;
      hasOut[t] = (own[t]?.length ?? 0) > 0 || hasOut[f] === 1 ? 1 : 0;
      queue.push(t);
      return (t << shift) | (hasOut[t] === 1 ? 0x40000000 : 0);
    };
    for (const c of children[0] ?? []) next[c] = reach(goto[c] as number, 0);
    for (let qi = 0; qi < queue.length; qi++) {
      const s = queue[qi] as number;
      const f = fail[s] as number;
      for (const id of outLists[f] ?? []) outLists[s]?.push(id);
      // every symbol goes where the failure state goes, except the state's own children
      const cs = children[s] ?? [];
      for (let k = 0; k < cs.length; k++) kids[k] = goto[s * width + (cs[k] as number)] as number;
      next.copyWithin(s * width, f * width, f * width + width);
      for (let k = 0; k < cs.length; k++) {
        const c = cs[k] as number;
        const t = kids[k] as number;
        next[s * width + c] = reach(t, ((next[f * width + c] as number) & 0x3fffffff) >>> shift);
      }
    }
    const outHead = new Int32Array(n).fill(-1);
    const flat: number[] = [];
    outLists.forEach((list, s) => {
      if (list.length === 0) return;
      outHead[s] = flat.length;
      flat.push(...list, -1);
    });
    this.next = next;
    this.outHead = outHead;
    this.outputs = Int32Array.from(flat);
    this.maxOutputs = Math.max(1, ...outLists.map((l) => l.length));
  }

  /** Calls `onHit(patternId, end)` for every occurrence; `end` is exclusive. */
  search(text: string, onHit: (id: number, end: number) => void, from = 0, to = text.length): void {
    const next = this.next;
    const outHead = this.outHead;
    const outputs = this.outputs;
    const sym = this.sym;
    const shift = this.shift;
    let row = 0;
    for (let i = from; i < to; i++) {
      const v = next[row | (sym[text.charCodeAt(i)] as number)] as number;
      row = v & 0x3fffffff;
      if (v & 0x40000000) {
        for (let k = outHead[row >>> shift] as number; outputs[k] !== -1; k++)
          onHit(outputs[k] as number, i + 1);
      }
    }
  }

  /**
   * Like `search`, but whitespace (space, tab, CR, LF, NBSP) matches a single space in a keyword
   * and runs of it count once. Reports `start` and `end` in the original text. O(n + hits).
   */
  searchCollapsed(text: string, onHit: (id: number, start: number, end: number) => void): void {
    const next = this.next;
    const outHead = this.outHead;
    const outputs = this.outputs;
    const lens = this.lengths;
    const sym = this.sym;
    const shift = this.shift;
    const ring = new Int32Array(256);
    let consumed = 0;
    let row = 0;
    let lastSpace = true;
    for (let i = 0; i < text.length; i++) {
      let c = text.charCodeAt(i);
      if (c === 32 || c === 9 || c === 10 || c === 13 || c === 160) {
        if (lastSpace) continue;
        lastSpace = true;
        c = 32;
      } else {
        lastSpace = false;
      }
      ring[consumed & 255] = i;
      consumed++;
      const v = next[row | (sym[c] as number)] as number;
      row = v & 0x3fffffff;
      if (v & 0x40000000) {
        for (let k = outHead[row >>> shift] as number; outputs[k] !== -1; k++) {
          const id = outputs[k] as number;
          onHit(id, ring[(consumed - (lens[id] as number)) & 255] as number, i + 1);
        }
      }
    }
  }
}
