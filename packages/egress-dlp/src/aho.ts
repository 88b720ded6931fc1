/**
 * Aho-Corasick automaton, case-insensitive for ASCII letters. Keywords are ASCII; every character
 * that occurs in no keyword maps to one "other" symbol, which always leads back to the root.
 *
 * Bound: O(n + hits) per search with a dense table over the compact alphabet, O(1) per character.
 */
export interface AhoTables {
  delta: Uint16Array;
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
  /** state * width + symbol -> next state, with bit 15 set when that state has outputs. */
  private readonly delta: Uint16Array;
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
      delta: this.delta,
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
    const goto: Map<number, number>[] = [new Map()];
    const own: number[][] = [[]];
    patterns.forEach((p, id) => {
      let s = 0;
      for (const ch of p.toLowerCase()) {
        const c = sym[ch.charCodeAt(0)] as number;
        let next = goto[s]?.get(c);
        if (next === undefined) {
          next = goto.length;
          goto.push(new Map());
          own.push([]);
          goto[s]?.set(c, next);
        }
        s = next;
      }
      own[s]?.push(id);
    });
    const n = goto.length;
    const delta = new Int32Array(n * width);
    const fail = new Int32Array(n);
    const outLists: number[][] = own.map((o) => [...o]);
    const queue: number[] = [];
    for (let c = 1; c < width; c++) {
      const t = goto[0]?.get(c);
      if (t !== undefined) {
        delta[c] = t;
        fail[t] = 0;
        queue.push(t);
      }
    }
    for (let qi = 0; qi < queue.length; qi++) {
      const s = queue[qi] as number;
      const f = fail[s] as number;
      for (const id of outLists[f] ?? []) outLists[s]?.push(id);
      for (let c = 1; c < width; c++) {
        const t = goto[s]?.get(c);
        if (t !== undefined) {
          fail[t] = delta[f * width + c] as number;
          delta[s * width + c] = t;
          queue.push(t);
        } else {
          delta[s * width + c] = delta[f * width + c] as number;
        }
      }
    }
    const outHead = new Int32Array(n).fill(-1);
    const flat: number[] = [];
    outLists.forEach((list, s) => {
      if (list.length === 0) return;
      outHead[s] = flat.length;
      flat.push(...list, -1);
    });
    if (n >= 0x8000) throw new Error("too many keywords for one automaton (32767 states)");
    const packed = new Uint16Array(delta.length);
    for (let k = 0; k < delta.length; k++) {
      const t = delta[k] as number;
      packed[k] = t | ((outHead[t] as number) !== -1 ? 0x8000 : 0);
    }
    this.delta = packed;
    const next = new Int32Array(delta.length);
    for (let k = 0; k < delta.length; k++) {
      const t = delta[k] as number;
      next[k] = (t << shift) | ((outHead[t] as number) !== -1 ? 0x40000000 : 0);
    }
    this.next = next;
    this.outHead = outHead;
    this.outputs = Int32Array.from(flat);
    this.maxOutputs = Math.max(1, ...outLists.map((l) => l.length));
  }

  /** Calls `onHit(patternId, end)` for every occurrence; `end` is exclusive. */
  search(text: string, onHit: (id: number, end: number) => void, from = 0, to = text.length): void {
    const delta = this.delta;
    const outHead = this.outHead;
    const outputs = this.outputs;
    const sym = this.sym;
    const width = this.width;
    let s = 0;
    for (let i = from; i < to; i++) {
      const v = delta[s * width + (sym[text.charCodeAt(i)] as number)] as number;
      s = v & 0x7fff;
      if (v & 0x8000) {
        for (let k = outHead[s] as number; outputs[k] !== -1; k++)
          onHit(outputs[k] as number, i + 1);
      }
    }
  }

  /**
   * Like `search`, but whitespace (space, tab, CR, LF, NBSP) matches a single space in a keyword
   * and runs of it count once. Reports `start` and `end` in the original text. O(n + hits).
   */
  searchCollapsed(text: string, onHit: (id: number, start: number, end: number) => void): void {
    const delta = this.delta;
    const outHead = this.outHead;
    const outputs = this.outputs;
    const lens = this.lengths;
    const sym = this.sym;
    const width = this.width;
    const ring = new Int32Array(256);
    let consumed = 0;
    let s = 0;
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
      const v = delta[s * width + (sym[c] as number)] as number;
      s = v & 0x7fff;
      if (v & 0x8000) {
        for (let k = outHead[s] as number; outputs[k] !== -1; k++) {
          const id = outputs[k] as number;
          onHit(id, ring[(consumed - (lens[id] as number)) & 255] as number, i + 1);
        }
      }
    }
  }
}
