import type { AhoTables } from "./aho.ts";
import { EgressDlpError } from "./errors.ts";

/**
 * Extra per-character work fused into the projection pass (one read of the text instead of
 * two): the keyword automaton's transitions.
 */
export interface FusedPass {
  ac: AhoTables;
  /** Out: keyword hits as (pattern id, end offset) pairs, in text order; `nHits` values used. */
  hits: Int32Array;
  nHits: number;
}

/**
 * Base64-alphabet runs of 16 or more characters, collected by the projection pass for the
 * decoders: [start, end) pairs in `at[0, n)`. A typed buffer with room reserved per block: a
 * flood of short runs pushed into a JS array cost about 100 ns a run (a third of the whole scan).
 */
export interface RunList {
  at: Int32Array;
  n: number;
}

export function createRunList(capacity = 256): RunList {
  return { at: new Int32Array(capacity), n: 0 };
}

/**
 * Known-secret index: every credential the gateway holds (and every canary) is expanded into its
 * encoded variants — raw, base64 (standard and URL-safe, three byte alignments, padded or not),
 * base32 (five alignments), hex (which also covers full percent-encoding), each of them
 * reversed — and all variants go into ONE multi-pattern index.
 *
 * Matching is ASCII case-insensitive on every surface: host labels and header names do not
 * preserve case (DNS exfiltration routinely lowercases), base32 and hex alphabets are
 * case-insensitive by definition, and an agent can change the case of any text it sends. Folding
 * costs one OR per hashed character (`c | 0x20` on a letter or digit is its lowercase form); a
 * finding whose case differs from the variant gets `+casefolded` in its encoding.
 *
 * Matching happens in the alphanumeric projection (every character outside [A-Za-z0-9] dropped)
 * of both the variants and the text, so separators between characters, `+/=-_` alphabet
 * differences, padding and JSON `\/` escaping all disappear. The index maps every q-gram
 * (q = 6) of every projected variant to its positions; the text's projection is sampled every
 * STEP = MIN_RUN - q + 1 = 7 characters, a 2-Mibit Bloom filter rejects most samples, and each
 * remaining hit is verified and extended in both directions. Any common run of at least MIN_RUN
 * (12) projected characters contains a sampled q-gram, so any fragment of a variant worth at least
 * `minChars` secret characters is found. A verified run that is too short moves the sampling past
 * itself, so floods of near-miss fragments cost one verification each.
 *
 * Bound: O(n) projection + O(n / 7) bitset tests + verification bounded by the variant length per
 * candidate. The hash multiplier is random per index, so collisions cannot be planned.
 */

export interface KnownSecret {
  /** A name for findings and logs (e.g. the env var); never the value. */
  name: string;
  value: string;
}

export interface KnownMatch {
  /** Index into the secrets list. */
  secret: number;
  variant: string;
  /** Offsets in the scanned text (UTF-16 code units), end exclusive. */
  start: number;
  end: number;
}

const Q = 6;
/** The Bloom filter's largest size in bits (see KnownSecretIndex.bits). */
const MAX_BITS = 1 << 21;
/** Its smallest: one 4 KiB page. */
const MIN_BITS = 1 << 15;
/** Filter bits per indexed q-gram (two are set for each): about 1 in 1,000 samples passes both. */
const BITS_PER_QGRAM = 64;
/** 1 = letter or digit, 2 = other base64/base64url alphabet character (+ / - _). */
const ALNUM = new Uint8Array(128);
for (let c = 0; c < 128; c++) {
  if ((c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122)) ALNUM[c] = 1;
}
for (const c of [43, 47, 45, 95]) ALNUM[c] = 2;
/** Per UTF-16 unit: bit 0 = letter or digit, bit 1 = base64/base64url alphabet (letters, digits, + / - _). */
const CLASS16 = new Uint8Array(65536);
for (let c = 0; c < 128; c++) {
  if (ALNUM[c] === 1) CLASS16[c] = 3;
  else if (ALNUM[c] === 2) CLASS16[c] = 2;
}
const MIN_RUN = 12;
const STEP = MIN_RUN - Q + 1;

interface Variant {
  secret: number;
  kind: string;
  /** Projected characters. */
  chars: Uint8Array;
  /** Secret characters per variant character (1 raw, 0.75 base64, 0.625 base32, 0.5 hex). */
  ratio: number;
}

function project(text: string): Uint8Array {
  const out = new Uint8Array(text.length);
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if ((c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122)) out[n++] = c;
  }
  return out.subarray(0, n);
}

const B32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
function base32(bytes: Uint8Array): string {
  let out = "";
  let bits = 0;
  let value = 0;
  for (const b of bytes) {
    value = (value << 8) | b;
    bits += 8;
    while (bits >= 5) {
      out += B32[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
    value &= (1 << bits) - 1;
  }
  return out; // trailing partial character dropped: it depends on the bytes after the secret
}

/** Characters of an encoding that depend only on the secret's own bytes, at each alignment. */
function alignedEncodings(bytes: Uint8Array): { kind: string; text: string; ratio: number }[] {
  const out: { kind: string; text: string; ratio: number }[] = [];
  for (let a = 0; a < 3; a++) {
    // Prepend `a` filler bytes, encode, drop the group touched by the filler and the trailing
    // partial group (which depends on what follows the secret).
    const skip = a === 0 ? 0 : 3 - a;
    const body = bytes.subarray(skip);
    const whole = body.subarray(0, body.length - (body.length % 3));
    out.push({ kind: `base64@${a}`, text: Buffer.from(whole).toString("base64"), ratio: 0.75 });
  }
  for (let a = 0; a < 5; a++) {
    const skip = a === 0 ? 0 : 5 - a;
    const body = bytes.subarray(skip);
    out.push({ kind: `base32@${a}`, text: base32(body), ratio: 0.625 });
  }
  const hex = Buffer.from(bytes).toString("hex");
  out.push({ kind: "hex", text: hex, ratio: 0.5 }); // upper and mixed case: matching folds case
  return out;
}

/**
 * Rewrites matches' projected offsets (`start` = first, `end` = last projected index) into text
 * offsets (end exclusive) with one forward walk: O(n + matches). Only runs when something matched.
 */
function mapToText(text: string, matches: KnownMatch[]): void {
  const wanted: [number, KnownMatch, "start" | "end"][] = [];
  for (const m of matches) wanted.push([m.start, m, "start"], [m.end, m, "end"]);
  wanted.sort((x, y) => x[0] - y[0]);
  let p = -1;
  let w = 0;
  for (let t = 0; t < text.length && w < wanted.length; t++) {
    if (((CLASS16[text.charCodeAt(t)] as number) & 1) === 0) continue;
    p++;
    while (w < wanted.length && (wanted[w] as [number, KnownMatch, string])[0] === p) {
      const [, m, field] = wanted[w] as [number, KnownMatch, "start" | "end"];
      m[field] = field === "start" ? t : t + 1;
      w++;
    }
  }
}

/**
 * Pass 1, branch-free: every character is written and the output index only advances for letters
 * and digits (text alternates between classes unpredictably, so branches would mispredict).
 * Collects base64-alphabet runs of 16+ characters and, when fused, the keyword automaton's hits.
 * Separate small functions per variant keep each loop simple for the JIT.
 */
function projectText(text: string, proj: Uint8Array, runs?: RunList, fused?: FusedPass): number {
  if (fused && runs) return projectFused(text, proj, runs, fused);
  if (runs) return projectRuns(text, proj, runs);
  const n = text.length;
  let m = 0;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    proj[m] = c;
    m += (CLASS16[c] as number) & 1;
  }
  return m;
}

function projectRuns(text: string, proj: Uint8Array, runs: RunList): number {
  const n = text.length;
  let at = runs.at;
  let nr = 0;
  let m = 0;
  let runLen = 0;
  for (let from = 0; from < n; from += BLOCK) {
    const to = Math.min(n, from + BLOCK);
    at = withRoom(at, nr + RUN_ROOM);
    for (let i = from; i < to; i++) {
      const c = text.charCodeAt(i);
      const cl = CLASS16[c] as number;
      proj[m] = c;
      m += cl & 1;
      const inRun = cl >> 1;
      if (runLen >= 16 && inRun === 0) {
        at[nr++] = i - runLen;
        at[nr++] = i;
      }
      runLen = (runLen + 1) & -inRun;
    }
  }
  at = withRoom(at, nr + 2);
  if (runLen >= 16) {
    at[nr++] = n - runLen;
    at[nr++] = n;
  }
  runs.at = at;
  runs.n = nr;
  return m;
}

/** Characters per block of the projection passes: the hit and run buffers are sized once per block. */
const BLOCK = 4096;
/** Run values one block can add: a run of 16+ ends at most once per 17 characters, two values each. */
const RUN_ROOM = 2 * Math.ceil(BLOCK / 17) + 4;

/** `hits` itself when it has room for `need` values, else a larger copy. */
function withRoom(hits: Int32Array, need: number): Int32Array {
  if (need <= hits.length) return hits;
  const grown = new Int32Array(Math.max(need, hits.length * 2));
  grown.set(hits);
  return grown;
}

/**
 * The fused pass reads the text a block at a time from a UTF-16 copy (one native write per block
 * on little-endian machines) instead of `charCodeAt`: the scanner hands this loop one-byte,
 * two-byte, sliced and flat strings, and polymorphic character reads slowed the loop.
 */
const UNITS_A_BYTES = Buffer.alloc(2 * BLOCK);
const UNITS_A = new Uint16Array(UNITS_A_BYTES.buffer, UNITS_A_BYTES.byteOffset, BLOCK);
const UNITS_B_BYTES = Buffer.alloc(2 * BLOCK);
const UNITS_B = new Uint16Array(UNITS_B_BYTES.buffer, UNITS_B_BYTES.byteOffset, BLOCK);
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Copies text[from, to) into `units` (at most BLOCK units). */
function fillUnits(
  text: string,
  from: number,
  to: number,
  bytes: Buffer,
  units: Uint16Array,
): void {
  if (LITTLE_ENDIAN) {
    bytes.write(from === 0 && to === text.length ? text : text.slice(from, to), 0, "utf16le");
    return;
  }
  for (let i = from; i < to; i++) units[i - from] = text.charCodeAt(i);
}

/**
 * Where one stream of the fused pass is: its projected count, automaton row, base64 run length,
 * and its hit and run buffers. Loops copy it into locals and back.
 */
interface Stream {
  proj: Uint8Array;
  m: number;
  row: number;
  runLen: number;
  hits: Int32Array;
  nh: number;
  at: Int32Array;
  nr: number;
}

/** The fused pass over text[from, to) for one stream (positions recorded are text offsets). */
function fusedRange(text: string, from: number, to: number, st: Stream, ac: AhoTables): void {
  const { next, sym, outHead, outputs, maxOutputs, shift } = ac;
  const proj = st.proj;
  const units = UNITS_A;
  let { m, row, runLen, hits, nh, at, nr } = st;
  for (let b = from; b < to; b += BLOCK) {
    const e = Math.min(to, b + BLOCK);
    hits = withRoom(hits, nh + 2 * maxOutputs * (e - b));
    at = withRoom(at, nr + RUN_ROOM);
    fillUnits(text, b, e, UNITS_A_BYTES, units);
    for (let i = b, u = 0; i < e; i++, u++) {
      const c = units[u] as number;
      const cl = CLASS16[c] as number;
      proj[m] = c;
      m += cl & 1;
      const inRun = cl >> 1;
      if (runLen >= 16 && inRun === 0) {
        at[nr++] = i - runLen;
        at[nr++] = i;
      }
      runLen = (runLen + 1) & -inRun;
      const v = next[row | (sym[c] as number)] as number;
      row = v & 0x3fffffff;
      if (v & 0x40000000) {
        for (let k = outHead[row >> shift] as number; outputs[k] !== -1; k++) {
          hits[nh++] = outputs[k] as number;
          hits[nh++] = i + 1;
        }
      }
    }
  }
  st.m = m;
  st.row = row;
  st.runLen = runLen;
  st.hits = hits;
  st.nh = nh;
  st.at = at;
  st.nr = nr;
}

/**
 * The fused pass over text[0, len) as stream A and text[h, h + len) as stream B in one loop. The
 * automaton's next state depends on the one before (a load per character on one dependency
 * chain); two independent chains in one loop let the processor overlap them.
 */
function fusedPair(
  text: string,
  h: number,
  len: number,
  a: Stream,
  b: Stream,
  ac: AhoTables,
): void {
  const { next, sym, outHead, outputs, maxOutputs, shift } = ac;
  const projA = a.proj;
  const projB = b.proj;
  const ua = UNITS_A;
  const ub = UNITS_B;
  let mA = a.m;
  let rowA = a.row;
  let runA = a.runLen;
  let hitsA = a.hits;
  let nhA = a.nh;
  let atA = a.at;
  let nrA = a.nr;
  let mB = b.m;
  let rowB = b.row;
  let runB = b.runLen;
  let hitsB = b.hits;
  let nhB = b.nh;
  let atB = b.at;
  let nrB = b.nr;
  for (let k = 0; k < len; k += BLOCK) {
    const e = Math.min(len, k + BLOCK);
    hitsA = withRoom(hitsA, nhA + 2 * maxOutputs * (e - k));
    hitsB = withRoom(hitsB, nhB + 2 * maxOutputs * (e - k));
    atA = withRoom(atA, nrA + RUN_ROOM);
    atB = withRoom(atB, nrB + RUN_ROOM);
    fillUnits(text, k, e, UNITS_A_BYTES, ua);
    fillUnits(text, h + k, h + e, UNITS_B_BYTES, ub);
    for (let i = k, u = 0; i < e; i++, u++) {
      const c = ua[u] as number;
      const d = ub[u] as number;
      const v = next[rowA | (sym[c] as number)] as number;
      const w = next[rowB | (sym[d] as number)] as number;
      rowA = v & 0x3fffffff;
      rowB = w & 0x3fffffff;
      const cl = CLASS16[c] as number;
      const dl = CLASS16[d] as number;
      projA[mA] = c;
      mA += cl & 1;
      projB[mB] = d;
      mB += dl & 1;
      const inA = cl >> 1;
      const inB = dl >> 1;
      if ((runA >= 16 && inA === 0) || (runB >= 16 && inB === 0)) {
        if (runA >= 16 && inA === 0) {
          atA[nrA++] = i - runA;
          atA[nrA++] = i;
        }
        if (runB >= 16 && inB === 0) {
          atB[nrB++] = h + i - runB;
          atB[nrB++] = h + i;
        }
      }
      runA = (runA + 1) & -inA;
      runB = (runB + 1) & -inB;
      if ((v | w) & 0x40000000) {
        if (v & 0x40000000) {
          for (let o = outHead[rowA >> shift] as number; outputs[o] !== -1; o++) {
            hitsA[nhA++] = outputs[o] as number;
            hitsA[nhA++] = i + 1;
          }
        }
        if (w & 0x40000000) {
          for (let o = outHead[rowB >> shift] as number; outputs[o] !== -1; o++) {
            hitsB[nhB++] = outputs[o] as number;
            hitsB[nhB++] = h + i + 1;
          }
        }
      }
    }
  }
  a.m = mA;
  a.row = rowA;
  a.runLen = runA;
  a.hits = hitsA;
  a.nh = nhA;
  a.at = atA;
  a.nr = nrA;
  b.m = mB;
  b.row = rowB;
  b.runLen = runB;
  b.hits = hitsB;
  b.nh = nhB;
  b.at = atB;
  b.nr = nrB;
}

/** Texts shorter than this run as one stream. */
export const PAIR_MIN = 4 * BLOCK;
/** How far from the middle the split point is looked for. */
const SPLIT_REACH = BLOCK;
/** Stream B's buffers, reused; dropped after a scan that grew them past SCRATCH_B_KEEP. */
const SCRATCH_B_KEEP = 4 * 1024 * 1024;
let projB: Uint8Array = new Uint8Array(0);
let hitsB: Int32Array = new Int32Array(1024);
let atB: Int32Array = new Int32Array(1024);

/**
 * A split point near the middle of the text whose previous character is outside the base64
 * alphabet (so no base64 run crosses it), or -1.
 */
function splitPoint(text: string): number {
  const n = text.length;
  const mid = n >> 1;
  for (let h = mid; h < mid + SPLIT_REACH && h < n; h++) {
    if ((CLASS16[text.charCodeAt(h - 1)] as number) < 2) return h;
  }
  for (let h = mid - 1; h > mid - SPLIT_REACH && h > 0; h--) {
    if ((CLASS16[text.charCodeAt(h - 1)] as number) < 2) return h;
  }
  return -1;
}

/** A stream at the start of its range (one construction site: every stream has one shape). */
function newStream(proj: Uint8Array, hits: Int32Array, at: Int32Array): Stream {
  return { proj, m: 0, row: 0, runLen: 0, hits, nh: 0, at, nr: 0 };
}

let pairPrimed = false;

/**
 * Runs fusedPair once on a few characters, before its first long call in the process. V8
 * compiles a long loop on stack replacement while it runs; compiled before the code after the loop
 * had ever run, the loop deoptimised on its way out ("insufficient type feedback" at the stores
 * back into the streams), and in some processes V8 kept entering that compiled loop on every
 * call: one deoptimisation per scan and the process at about half its throughput (`--trace-opt
 * --trace-deopt`: 48 and 52 deoptimisations in 50 scans, chat bodies 81-87 instead of 150-165 MB/s,
 * in 2 of 11 traced processes). With the way out run once, the compiled loop leaves without one
 * (0 or 1 deoptimisation of fusedPair per process, 16 of 16 processes).
 */
function primePair(ac: AhoTables): void {
  pairPrimed = true;
  const text = "prime the pair pass: key=eyJhbGciOiJub25lIn0 abcdefghijklmnopqrstuvwx ".repeat(2);
  const half = text.length >> 1;
  const scratch = () => newStream(new Uint8Array(half), new Int32Array(64), new Int32Array(64));
  fusedPair(text, half, half, scratch(), scratch(), ac);
}

/**
 * Projection, base64 runs and keyword hits in one read of the text. A long text runs as two
 * streams, [0, h) and [h, n), in one loop (see fusedPair); stream B starts with the automaton
 * state at h, found by reading the longest keyword's length of text before h, so it reports
 * exactly the hits ending after h and stream A those ending at or before h. Stream B's
 * projection, runs and hits are appended to stream A's: the same values in the same order as
 * one stream over the whole text.
 */
export function projectFused(
  text: string,
  proj: Uint8Array,
  runs: RunList,
  fused: FusedPass,
): number {
  const ac = fused.ac;
  const n = text.length;
  const a = newStream(proj, fused.hits, runs.at);
  const h = n >= PAIR_MIN ? splitPoint(text) : -1;
  if (h === -1) {
    fusedRange(text, 0, n, a, ac);
  } else {
    if (!pairPrimed) primePair(ac);
    if (projB.length < n - h) projB = new Uint8Array(n - h);
    const b = newStream(projB, hitsB, atB);
    // the automaton's row at h: read the text before h from the root, recording nothing
    const { next, sym } = ac;
    let row = 0;
    for (let i = Math.max(0, h - ac.maxLength); i < h; i++) {
      row = (next[row | (sym[text.charCodeAt(i)] as number)] as number) & 0x3fffffff;
    }
    b.row = row;
    const len = Math.min(h, n - h);
    fusedPair(text, h, len, a, b, ac);
    if (h > len) fusedRange(text, len, h, a, ac);
    if (n - h > len) fusedRange(text, h + len, n, b, ac);
    // stream A ends on a character outside the base64 alphabet: its last run is closed
    a.proj.set(b.proj.subarray(0, b.m), a.m);
    a.m += b.m;
    a.hits = withRoom(a.hits, a.nh + b.nh);
    a.hits.set(b.hits.subarray(0, b.nh), a.nh);
    a.nh += b.nh;
    a.at = withRoom(a.at, a.nr + b.nr);
    a.at.set(b.at.subarray(0, b.nr), a.nr);
    a.nr += b.nr;
    a.runLen = b.runLen;
    const big = 4 * (b.hits.length + b.at.length) + projB.length > SCRATCH_B_KEEP;
    projB = big ? new Uint8Array(0) : projB;
    hitsB = big ? new Int32Array(1024) : b.hits;
    atB = big ? new Int32Array(1024) : b.at;
  }
  // A run that reaches the end of the text, without a branch only such texts take: code with
  // no type feedback after this loop deoptimised on every 1 MiB base64 body, and left every later
  // scan in the process about 1.5× slower. Both values are always written; the count keeps them.
  const at = withRoom(a.at, a.nr + 2);
  at[a.nr] = n - a.runLen;
  at[a.nr + 1] = n;
  runs.at = at;
  runs.n = a.nr + (a.runLen >= 16 ? 2 : 0);
  fused.hits = a.hits;
  fused.nHits = a.nh;
  return a.m;
}

/**
 * The bitset is a Bloom filter with two bits per q-gram hash: with 100 secrets (2,000 variants,
 * about 133,000 bits of 2 Mi set) one bit let 6.3% of a text's samples through to a probe of the
 * 8 MiB hash table (a cache miss each), two bits let about 1.4% through. The second bit comes from
 * top bits of another multiply (21 of them at the largest size), so it does not follow from the
 * first. sampleQgrams inlines both.
 */
function firstBit(h: number, bitCount: number): number {
  return (h ^ (h >>> 13)) & (bitCount - 1);
}
function secondBit(h: number, bitCount: number): number {
  // bitCount is a power of two, 2^k: the top k bits (clz32(2^k) + 1 = 32 - k)
  return Math.imul(h, 0x9e3779b1) >>> (Math.clz32(bitCount) + 1);
}

/**
 * Pass 2 of KnownSecretIndex.scan: hashes every STEP-th q-gram of the projection (the arithmetic
 * of KnownSecretIndex.hash, inlined) and tests it against a cache-resident bitset before the
 * caller touches the hash table; writes (position, hash) pairs and returns how many values. Its
 * own function: V8 compiles a long loop on stack replacement before the code after it has run,
 * and the candidate loop that followed it in the same function left that code on every scan (a
 * deoptimisation at its first property read, then the interpreter for the rest of the scan).
 */
function sampleQgrams(
  proj: Uint8Array,
  m: number,
  mult: number,
  mult2: number,
  bits: Int32Array,
  candidates: Int32Array,
): number {
  let nc = 0;
  const mask = (bits.length << 5) - 1;
  const shift = Math.clz32(bits.length << 5) + 1;
  for (let p = 0; p + Q <= m; p += STEP) {
    const lo =
      ((proj[p] as number) |
        ((proj[p + 1] as number) << 8) |
        ((proj[p + 2] as number) << 16) |
        ((proj[p + 3] as number) << 24) |
        0x20202020) >>>
      0;
    const hi = (proj[p + 4] as number) | ((proj[p + 5] as number) << 8) | 0x2020;
    let h = Math.imul(lo, mult) ^ Math.imul(hi, mult2);
    h = Math.imul(h ^ (h >>> 16), 0x45d9f3b);
    h ^= h >>> 16;
    const k = h === 0 ? 1 : h;
    const b = (k ^ (k >>> 13)) & mask;
    if ((bits[b >>> 5] as number) & (1 << (b & 31))) {
      // second bit (see secondBit): only the few samples that pass the first pay for it
      const b2 = Math.imul(k, 0x9e3779b1) >>> shift;
      if ((bits[b2 >>> 5] as number) & (1 << (b2 & 31))) {
        candidates[nc++] = p;
        candidates[nc++] = k;
      }
    }
  }
  return nc;
}

export interface KnownIndexOptions {
  /** Shortest fragment of a secret that counts, in secret characters. Default 12. */
  minChars?: number;
  /** The Bloom filter's size in bits, a power of two (tests); sized by the q-grams when omitted. */
  filterBits?: number;
}

export class KnownSecretIndex {
  readonly secrets: readonly KnownSecret[];
  private readonly variants: Variant[] = [];
  private readonly mult: number;
  private readonly mult2: number;
  private readonly mask: number;
  /**
   * Open addressing, 4 ints per slot: hash key (0 = empty; hash 0 is remapped to 1), the first
   * entry inline (pool position, variant), then the head of the overflow chain in `ent` (-1 = none).
   */
  private readonly table: Int32Array;
  /** Overflow entries as triples: pool position, variant, next (-1 ends the chain). */
  private readonly ent: Int32Array;
  /** Every variant's projected characters, case-folded, back to back (small enough to stay in cache). */
  private readonly pool: Uint8Array;
  /** The same characters with their original case (only read to label a match). */
  private readonly poolExact: Uint8Array;
  private readonly vStart: Int32Array;
  private readonly vEnd: Int32Array;
  private readonly minChars: number;
  /**
   * Bloom filter over q-gram hashes (two bits per hash): most text q-grams are rejected without a
   * table probe. BITS_PER_QGRAM bits per indexed q-gram, a power of two from MIN_BITS to MAX_BITS:
   * the 2 Mi bits (256 KiB) a large index needs were 64 fresh pages for every scanner, however few
   * its secrets (three scanners for one `bottle run`). Its size only changes how many samples
   * reach the table, never what matches.
   */
  private readonly bits: Int32Array;
  private proj = new Uint8Array(0);
  private cand: Int32Array = new Int32Array(3072);

  constructor(secrets: readonly KnownSecret[], options: KnownIndexOptions = {}) {
    this.secrets = secrets;
    this.minChars = options.minChars ?? 12;
    if (this.minChars < MIN_RUN) {
      throw new EgressDlpError("E_INVALID_INPUT", `minChars must be at least ${MIN_RUN}`);
    }
    this.mult = (Math.floor(Math.random() * 0x3fffffff) << 1) | 1;
    this.mult2 = (Math.floor(Math.random() * 0x3fffffff) << 1) | 1;

    secrets.forEach((s, i) => {
      const raw = project(s.value);
      if (raw.length < MIN_RUN) {
        throw new EgressDlpError(
          "E_INVALID_INPUT",
          `known secret ${s.name} has fewer than ${MIN_RUN} letters and digits`,
          {
            hint: "use longer credentials or canaries; short values cannot be told apart from text",
          },
        );
      }
      const bytes = Buffer.from(s.value, "utf8");
      const forms = [{ kind: "raw", text: s.value, ratio: 1 }, ...alignedEncodings(bytes)];
      for (const f of forms) {
        const chars = project(f.text);
        if (chars.length < MIN_RUN) continue;
        this.variants.push({ secret: i, kind: f.kind, chars, ratio: f.ratio });
        this.variants.push({
          secret: i,
          kind: `${f.kind}+reversed`,
          chars: chars.slice().reverse(),
          ratio: f.ratio,
        });
      }
    });
    let total = 0;
    let poolSize = 0;
    for (const v of this.variants) {
      total += Math.max(0, v.chars.length - Q + 1);
      poolSize += v.chars.length;
    }
    this.pool = new Uint8Array(poolSize);
    this.poolExact = new Uint8Array(poolSize);
    this.vStart = new Int32Array(this.variants.length);
    this.vEnd = new Int32Array(this.variants.length);
    let at = 0;
    this.variants.forEach((v, vi) => {
      this.poolExact.set(v.chars, at);
      for (let k = 0; k < v.chars.length; k++) this.pool[at + k] = (v.chars[k] as number) | 0x20;
      this.vStart[vi] = at;
      at += v.chars.length;
      this.vEnd[vi] = at;
    });
    let bitCount = MIN_BITS;
    while (bitCount < total * BITS_PER_QGRAM && bitCount < MAX_BITS) bitCount <<= 1;
    if (options.filterBits !== undefined) bitCount = options.filterBits;
    this.bits = new Int32Array(bitCount >>> 5);
    let size = 16;
    while (size < total * 2) size <<= 1;
    this.mask = size - 1;
    this.table = new Int32Array(size * 4);
    this.ent = new Int32Array(total * 3);
    let e = 0;
    this.variants.forEach((v, vi) => {
      for (let o = 0; o + Q <= v.chars.length; o++) {
        const h = this.hash(v.chars, o);
        const b = firstBit(h, bitCount);
        this.bits[b >>> 5] = (this.bits[b >>> 5] as number) | (1 << (b & 31));
        const b2 = secondBit(h, bitCount);
        this.bits[b2 >>> 5] = (this.bits[b2 >>> 5] as number) | (1 << (b2 & 31));
        const slot = this.slotFor(h);
        const poolPos = (this.vStart[vi] as number) + o;
        if (this.table[slot * 4 + 1] === -2) {
          this.table[slot * 4 + 1] = poolPos;
          this.table[slot * 4 + 2] = vi;
        } else {
          this.ent[e * 3] = poolPos;
          this.ent[e * 3 + 1] = vi;
          this.ent[e * 3 + 2] = this.table[slot * 4 + 3] as number;
          this.table[slot * 4 + 3] = e;
          e++;
        }
      }
    });
  }

  get size(): number {
    return this.variants.length;
  }

  /** The Bloom filter's size in bits. */
  get filterBits(): number {
    return this.bits.length << 5;
  }

  /**
   * The q-gram's hash: its six case-folded characters packed into two words, each multiplied by
   * its own random odd number, then mixed. Two independent multiplications instead of a chain of
   * six (the scan's sampling pass spent most of its time waiting on that chain). The scan's
   * sampling loop inlines the same arithmetic.
   */
  private hash(chars: Uint8Array, at: number): number {
    const lo =
      ((chars[at] as number) |
        ((chars[at + 1] as number) << 8) |
        ((chars[at + 2] as number) << 16) |
        ((chars[at + 3] as number) << 24) |
        0x20202020) >>>
      0;
    const hi = (chars[at + 4] as number) | ((chars[at + 5] as number) << 8) | 0x2020;
    let h = Math.imul(lo, this.mult) ^ Math.imul(hi, this.mult2);
    h = Math.imul(h ^ (h >>> 16), 0x45d9f3b);
    h ^= h >>> 16;
    return h === 0 ? 1 : h;
  }

  private slotFor(h: number): number {
    let slot = (h ^ (h >>> 15)) & this.mask;
    for (;;) {
      const k = this.table[slot * 4] as number;
      if (k === h) return slot;
      if (k === 0) {
        this.table[slot * 4] = h;
        this.table[slot * 4 + 1] = -2; // no inline entry yet
        this.table[slot * 4 + 3] = -1;
        return slot;
      }
      slot = (slot + 1) & this.mask;
    }
  }

  /**
   * Finds every fragment of a known secret (any variant) in `text`. When `runs` is given, the same
   * pass also collects [start, end) pairs of base64-alphabet runs of 16+ characters (decoder input).
   */
  scan(text: string, runs?: RunList, fused?: FusedPass): KnownMatch[] {
    const n = text.length;
    if (this.proj.length < n) this.proj = new Uint8Array(n);
    const proj = this.proj;
    const mult = this.mult;
    const mult2 = this.mult2;
    const bits = this.bits;
    let candidates = this.cand;
    let nc = 0;
    // Pass 1, branch-free: every character is written, the output index only advances for letters
    // and digits (text alternates between classes unpredictably, so branches would mispredict).
    const m = projectText(text, proj, runs, fused);
    // Room for every sample up front (two ints each): no growth path inside the loop (see BLOCK).
    candidates = withRoom(candidates, 2 * (Math.floor(m / STEP) + 1));
    this.cand = candidates;
    // Pass 2, in its own function (see sampleQgrams)
    nc = sampleQgrams(proj, m, mult, mult2, bits, candidates);
    const matches: KnownMatch[] = [];
    let coveredTo = 0;
    const table = this.table;
    const ent = this.ent;
    const mask = this.mask;
    const pool = this.pool;
    const vStart = this.vStart;
    const vEnd = this.vEnd;
    const variants = this.variants;
    const minChars = this.minChars;
    for (let ci = 0; ci < nc; ci += 2) {
      const p = candidates[ci] as number;
      const hk = candidates[ci + 1] as number;
      if (p < coveredTo) continue;
      let slot = (hk ^ (hk >>> 15)) & mask;
      let found = -1;
      for (;;) {
        const key = table[slot * 4] as number;
        if (key === hk) {
          found = slot;
          break;
        }
        if (key === 0) break;
        slot = (slot + 1) & mask;
      }
      if (found === -1) continue;
      let best: { a: number; b: number; variant: number; at: number } | undefined;
      let reach = 0;
      // the inline entry first, then the overflow chain
      let e = -1;
      let o = table[found * 4 + 1] as number;
      let vi = table[found * 4 + 2] as number;
      for (;;) {
        const vs = vStart[vi] as number;
        const ve = vEnd[vi] as number;
        let ok = true;
        for (let k = 0; k < Q; k++) {
          if (pool[o + k] !== ((proj[p + k] as number) | 0x20)) {
            ok = false;
            break;
          }
        }
        if (ok) {
          let left = 0;
          while (
            o - left - 1 >= vs &&
            p - left - 1 >= 0 &&
            pool[o - left - 1] === ((proj[p - left - 1] as number) | 0x20)
          )
            left++;
          let right = Q;
          while (
            o + right < ve &&
            p + right < m &&
            pool[o + right] === ((proj[p + right] as number) | 0x20)
          )
            right++;
          const run = left + right;
          if (p + right > reach) reach = p + right;
          const ratio = (variants[vi] as Variant).ratio;
          const whole = run === ve - vs && ratio === 1;
          if (run >= MIN_RUN && (whole || run * ratio >= minChars - 1)) {
            if (!best || run > best.b - best.a)
              best = { a: p - left, b: p + right, variant: vi, at: o - left };
          }
        }
        e = e === -1 ? (table[found * 4 + 3] as number) : (ent[e * 3 + 2] as number);
        if (e === -1) break;
        o = ent[e * 3] as number;
        vi = ent[e * 3 + 1] as number;
      }
      if (!best) {
        // Verified but too short: later samples inside this run would only find it again, so an
        // adversary repeating near-miss fragments pays one verification per fragment.
        coveredTo = reach;
        continue;
      }
      {
        const v = this.variants[best.variant] as Variant;
        let exact = true;
        for (let k = 0; k < best.b - best.a && exact; k++)
          exact = this.poolExact[best.at + k] === proj[best.a + k];
        // projected offsets for now; mapped to text offsets below in one pass
        matches.push({
          secret: v.secret,
          variant: exact ? v.kind : `${v.kind}+casefolded`,
          start: best.a,
          end: best.b - 1,
        });
        coveredTo = best.b;
      }
    }
    if (matches.length > 0) mapToText(text, matches);
    return matches;
  }
}
