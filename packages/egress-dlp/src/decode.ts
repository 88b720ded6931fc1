import type * as Zlib from "node:zlib";
import { once } from "@bottlekit/diagnostics";
import { type Budget, charge, INFLATE_CALL_COST, stop } from "./budget.ts";

/**
 * Binary decoders for bytes found inside a body or inside a decoded layer: gzip, zlib and raw
 * deflate streams, zip entries (stored or deflated) and UTF-16 text (LE/BE, with or without a
 * BOM). Each call is charged to the scan's budget (a fixed cost per decompressor call plus every
 * byte produced), all decompressed output of one scan shares one cap, and a truncated stream
 * still yields what it holds (sync flush), so cutting a blob short hides nothing.
 *
 * Bound: each decoder is linear in its input and output; output is capped by the budget.
 */

export interface BinaryLayer {
  kind: string;
  /** Decoded text: latin1 (one character per byte) or, for UTF-16, the decoded characters. */
  text: string;
}

/** Share of printable ASCII (and tab/CR/LF) in the first 4 KiB; binary garbage is not rescanned. */
export function mostlyPrintable(text: string): boolean {
  if (text.length === 0) return false;
  let ok = 0;
  const n = Math.min(text.length, 4096);
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if ((c >= 32 && c < 127) || c === 9 || c === 10 || c === 13) ok++;
  }
  return ok >= n * 0.85;
}

/** `mostlyPrintable` of bytes read one character per byte, without making them a string first. */
export function mostlyPrintableBytes(bytes: Uint8Array): boolean {
  if (bytes.length === 0) return false;
  let ok = 0;
  const n = Math.min(bytes.length, 4096);
  for (let i = 0; i < n; i++) {
    const c = bytes[i] as number;
    if ((c >= 32 && c < 127) || c === 9 || c === 10 || c === 13) ok++;
  }
  return ok >= n * 0.85;
}

type Inflate = typeof Zlib.inflateSync;
/**
 * node:zlib, required by the first blob that looks compressed rather than at import (about 3 ms
 * and 120 fresh pages, which `bottle run` paid before its agent started and rarely used). A
 * built-in cannot fail to load; if it ever threw, the scan would throw, and its caller refuses.
 */
export const zlib = once(() => process.getBuiltinModule("node:zlib"));

/** Reads bits least-significant first, as deflate packs them, from `bytes[from, end)`. */
class BitReader {
  /** The next bit's index in `bytes` (bit 0 of byte 0 is 0). */
  private pos = 0;
  /** The first bit index past the bytes that may be read. */
  private limit = 0;
  private bytes: Uint8Array = new Uint8Array(0);
  /** Reads `bytes` from byte `from` up to byte `end`, from its first bit. */
  reset(bytes: Uint8Array, from: number, end: number): this {
    this.bytes = bytes;
    this.pos = from * 8;
    this.limit = end * 8;
    return this;
  }
  /** The next `count` bits (at most 17) as a number, first bit lowest; -1 past the end. */
  bits(count: number): number {
    if (count === 0) return 0;
    const pos = this.pos;
    if (pos + count > this.limit) {
      this.pos = this.limit;
      return -1;
    }
    const b = this.bytes;
    const k = pos >> 3;
    const word = (b[k] as number) | ((b[k + 1] ?? 0) << 8) | ((b[k + 2] ?? 0) << 16);
    this.pos = pos + count;
    return (word >>> (pos & 7)) & ((1 << count) - 1);
  }
  /** One bit at a time, most significant first (Huffman codes). */
  bit(): number {
    return this.bits(1);
  }
}

const READER = new BitReader();

/** Fixed and dynamic blocks alike: length symbols 257-285 and distance codes 0-29. */
const LENGTH_BASE = [
  3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131,
  163, 195, 227, 258,
];
const LENGTH_EXTRA = [
  0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0,
];
const DISTANCE_BASE = [
  1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049,
  3073, 4097, 6145, 8193, 12289, 16385, 24577,
];
const DISTANCE_EXTRA = [
  0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13,
];

/** The order in which a dynamic block lists its code-length code lengths. */
const CL_ORDER = [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15];
const CL_LENGTHS = new Uint8Array(19);
const CODE_LENGTHS = new Uint8Array(320);

/**
 * The literal/length and distance code lengths of a dynamic block, read with its code-length
 * code: they must not overrun their count, a repeat needs a length before it, the literal/length
 * code must give end-of-block (256) a code and be a complete prefix code. Random bytes that
 * passed the code-length code's own check fail here nearly always; a header cut short by the
 * end of the bytes is given the benefit of the doubt (zlib decides).
 */
function plausibleCodeLengths(
  r: BitReader,
  clLens: Uint8Array,
  nlit: number,
  ndist: number,
): boolean {
  // canonical code of the code-length alphabet: codes by length, then by symbol
  const count = new Int32Array(8);
  for (let s = 0; s < 19; s++) {
    const len = clLens[s] as number;
    count[len] = (count[len] as number) + 1;
  }
  count[0] = 0;
  const first = new Int32Array(8);
  let code = 0;
  for (let len = 1; len <= 7; len++) {
    code = (code + (count[len - 1] as number)) << 1;
    first[len] = code;
  }
  const total = nlit + ndist;
  const lens = CODE_LENGTHS;
  lens.fill(0, 0, total);
  let n = 0;
  while (n < total) {
    // one symbol: its code read most significant bit first, one bit at a time
    let c = 0;
    let symbol = -1;
    for (let len = 1; len <= 7 && symbol === -1; len++) {
      const b = r.bit();
      if (b < 0) return true;
      c = (c << 1) | b;
      const offset = c - (first[len] as number);
      if (offset >= 0 && offset < (count[len] as number)) {
        // the offset-th symbol with this length
        let k = 0;
        for (let s = 0; s < 19; s++) {
          if (clLens[s] === len) {
            if (k === offset) {
              symbol = s;
              break;
            }
            k++;
          }
        }
      }
    }
    if (symbol === -1) return false;
    if (symbol < 16) {
      lens[n++] = symbol;
      continue;
    }
    let repeat: number;
    let value = 0;
    if (symbol === 16) {
      if (n === 0) return false;
      value = lens[n - 1] as number;
      const extra = r.bits(2);
      if (extra < 0) return true;
      repeat = 3 + extra;
    } else if (symbol === 17) {
      const extra = r.bits(3);
      if (extra < 0) return true;
      repeat = 3 + extra;
    } else {
      const extra = r.bits(7);
      if (extra < 0) return true;
      repeat = 11 + extra;
    }
    if (n + repeat > total) return false;
    lens.fill(value, n, n + repeat);
    n += repeat;
  }
  if (lens[256] === 0) return false;
  let kraft = 0;
  for (let s = 0; s < nlit; s++) {
    const len = lens[s] as number;
    if (len > 0) kraft += 2 ** (15 - len);
  }
  return kraft === 2 ** 15;
}

function printableLiteral(symbol: number): boolean {
  return (symbol >= 32 && symbol < 127) || symbol === 9 || symbol === 10 || symbol === 13;
}

/**
 * Cheap check, in JS, that `bytes[from…]` starts like a deflate stream holding text, before any
 * zlib call (a call costs microseconds; floods of look-alike blobs must not buy them): a stored
 * block's LEN/NLEN are complements; a fixed-Huffman block starts with printable literals; a
 * dynamic block's code-length code and code lengths make complete prefix codes. Random bytes pass
 * about 1 in 500.
 * Only `bytes[0, length)` is read (a reused scratch buffer can be passed).
 */
export function plausibleDeflate(
  bytes: Uint8Array,
  from: number,
  length: number = bytes.length,
): boolean {
  // one reader for every call (the pre-check runs on each run of a text: no allocation)
  const r = READER.reset(bytes, from, length);
  r.bits(1); // BFINAL
  const type = r.bits(2);
  if (type === 0) {
    const at = from + 1;
    if (length < at + 4) return false;
    const len = (bytes[at] as number) | ((bytes[at + 1] as number) << 8);
    const nlen = (bytes[at + 2] as number) | ((bytes[at + 3] as number) << 8);
    return (len ^ nlen) === 0xffff;
  }
  if (type === 1) {
    // Fixed Huffman: text starts with printable literals, and a copy reaches back no further
    // than what came before it (random bytes pass about 1 in 450; every short text with a token
    // passes, its first symbols copies of a repeated first letter included).
    let out = 0;
    for (let s = 0; s < 8; s++) {
      let code = 0;
      for (let k = 0; k < 7; k++) code = (code << 1) | r.bit();
      if (code < 0) return out > 0; // the bytes given end here
      let symbol: number;
      if (code <= 0b0010111) symbol = 256 + code;
      else {
        code = (code << 1) | r.bit();
        if (code < 0) return out > 0; // the bytes given end here
        if (code >= 0b00110000 && code <= 0b10111111) symbol = code - 0b00110000;
        else if (code >= 0b11000000 && code <= 0b11000111) symbol = 280 + code - 0b11000000;
        else {
          code = (code << 1) | r.bit();
          if (code < 0) return out > 0; // the bytes given end here
          symbol = code - 0b110010000 + 144;
        }
      }
      if (symbol < 256) {
        if (!printableLiteral(symbol)) return false;
        out++;
        continue;
      }
      if (symbol === 256) return out > 0;
      if (symbol > 285 || out === 0) return false;
      const lengthExtra = r.bits(LENGTH_EXTRA[symbol - 257] as number);
      if (lengthExtra < 0) return true;
      let d = 0;
      for (let k = 0; k < 5; k++) d = (d << 1) | r.bit();
      if (d < 0) return true;
      if (d >= 30) return false;
      const distanceExtra = r.bits(DISTANCE_EXTRA[d] as number);
      if (distanceExtra < 0) return true;
      if ((DISTANCE_BASE[d] as number) + distanceExtra > out) return false;
      out += (LENGTH_BASE[symbol - 257] as number) + lengthExtra;
    }
    return true;
  }
  if (type === 2) {
    const hlit = r.bits(5);
    const hdist = r.bits(5);
    const hclen = r.bits(4);
    if (hlit < 0 || hlit > 29 || hdist > 29 || hclen < 0) return false;
    let kraft = 0;
    let used = 0;
    const clLens = CL_LENGTHS;
    clLens.fill(0);
    for (let k = 0; k < hclen + 4; k++) {
      const len = r.bits(3);
      if (len < 0) return false;
      clLens[CL_ORDER[k] as number] = len;
      if (len > 0) {
        kraft += 1 << (7 - len);
        used++;
        if (kraft > 128) return false; // over-subscribed: no complete code (most random bytes)
      }
    }
    if (!(kraft === 128 || (used === 1 && kraft === 64))) return false;
    return plausibleCodeLengths(r, clLens, hlit + 257, hdist + 1);
  }
  return false;
}

/** Runs one decompressor within what is left of the scan's inflate allowance. */
function inflateWith(fn: Inflate, bytes: Uint8Array, budget: Budget): Buffer | undefined {
  if (charge(budget, INFLATE_CALL_COST + bytes.length)) return undefined;
  const left = budget.maxInflate - budget.inflated;
  if (left <= 0) {
    stop(budget, "inflate");
    return undefined;
  }
  // zlib reports bad data by throwing; building a stack trace for each of many look-alike blobs
  // cost more than the decompression
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    // Output chunks sized to the input (zlib's default is 16 KiB a call): most blobs tried are
    // small look-alikes that fail at once, and a fresh 16 KiB buffer each was most of their cost.
    const chunkSize = Math.min(16 * 1024, Math.max(1024, bytes.length * 8));
    const out = fn(bytes, {
      maxOutputLength: left,
      finishFlush: zlib().constants.Z_SYNC_FLUSH,
      chunkSize,
    });
    budget.inflated += out.length;
    charge(budget, out.length);
    return out;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ERR_BUFFER_TOO_LARGE") stop(budget, "inflate");
    return undefined;
  } finally {
    Error.stackTraceLimit = limit;
  }
}

function isZlibHeader(b0: number, b1: number): boolean {
  return (b0 & 0x0f) === 8 && b0 >> 4 <= 7 && ((b0 << 8) | b1) % 31 === 0;
}

/** How UTF-16 text lies in bytes: its byte order, and whether one stray byte comes first. */
interface Utf16Layout {
  order: "le" | "be";
  offset: 0 | 1;
}

/**
 * UTF-16 without BOM: at least 80% of the first 64 code units have a zero high (or low) byte,
 * read from the first byte or, after one stray byte (UTF-16 glued to a byte of something else),
 * from the second. From the first byte when its first unit is one of those (then the second
 * byte's reading would cut the last character), else from whichever reading has them.
 */
function utf16Layout(bytes: Uint8Array): Utf16Layout | undefined {
  if (bytes.length < 8) return undefined;
  if (bytes[0] === 0xff && bytes[1] === 0xfe) return { order: "le", offset: 0 };
  if (bytes[0] === 0xfe && bytes[1] === 0xff) return { order: "be", offset: 0 };
  let fallback: Utf16Layout | undefined;
  for (const offset of [0, 1] as const) {
    const units = Math.min(64, (bytes.length - offset) >> 1);
    let le = 0;
    let be = 0;
    for (let k = 0; k < units; k++) {
      const a = bytes[offset + 2 * k] as number;
      const b = bytes[offset + 2 * k + 1] as number;
      if (b === 0 && a !== 0) le++;
      else if (a === 0 && b !== 0) be++;
    }
    const order = le >= units * 0.8 ? "le" : be >= units * 0.8 ? "be" : undefined;
    if (order === undefined) continue;
    const a0 = bytes[offset] as number;
    const b0 = bytes[offset + 1] as number;
    const firstFits = order === "le" ? b0 === 0 && a0 !== 0 : a0 === 0 && b0 !== 0;
    if (firstFits) return { order, offset };
    fallback ??= { order, offset };
  }
  return fallback;
}

export function decodeUtf16(bytes: Uint8Array, order: "le" | "be", offset: 0 | 1 = 0): string {
  const n = bytes.length - offset;
  let b = Buffer.from(bytes.buffer, bytes.byteOffset + offset, n & ~1);
  if (order === "be") b = Buffer.from(b).swap16();
  let text = b.toString("utf16le");
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  // an odd byte left at the end of little-endian text: its last character, high byte cut off
  const tail = n & 1 ? (bytes[bytes.length - 1] as number) : 0;
  if (order === "le" && tail !== 0) text += String.fromCharCode(tail);
  return text;
}

/** Entries of a zip archive, read from its local headers (no central directory needed). */
function zipEntries(bytes: Buffer, budget: Budget, out: BinaryLayer[]): void {
  let at = 0;
  for (let entries = 0; entries < 4096 && at + 30 <= bytes.length; entries++) {
    if (bytes.readUInt32LE(at) !== 0x04034b50) break;
    const flags = bytes.readUInt16LE(at + 6);
    const method = bytes.readUInt16LE(at + 8);
    const size = bytes.readUInt32LE(at + 18);
    const nameLength = bytes.readUInt16LE(at + 26);
    const extraLength = bytes.readUInt16LE(at + 28);
    const dataAt = at + 30 + nameLength + extraLength;
    // With a data descriptor (flag bit 3) the size may be 0 here: read to the end.
    const sized = (flags & 8) === 0 || size > 0;
    const end = sized ? Math.min(bytes.length, dataAt + size) : bytes.length;
    const data = bytes.subarray(dataAt, end);
    if (method === 0) {
      if (charge(budget, data.length)) return;
      out.push({ kind: "zip", text: data.toString("latin1") });
    } else if (method === 8) {
      const inflated = inflateWith(zlib().inflateRawSync, data, budget);
      if (inflated) out.push({ kind: "zip+deflate", text: inflated.toString("latin1") });
    }
    if (budget.exceeded || !sized) return;
    at = end;
  }
}

/**
 * Layers hidden in `bytes` (a decoded base64/hex run, or a body that arrived as bytes). Returns
 * nothing for bytes with no recognised container that do not inflate as raw deflate.
 */
export function binaryLayers(bytes: Buffer, budget: Budget, tryRawDeflate: boolean): BinaryLayer[] {
  const out: BinaryLayer[] = [];
  if (bytes.length < 2 || budget.exceeded) return out;
  const b0 = bytes[0] as number;
  const b1 = bytes[1] as number;
  if (b0 === 0x1f && b1 === 0x8b) {
    // method 8; with no optional header fields the deflate stream starts at byte 10
    if (bytes[2] !== 8 || (bytes[3] === 0 && !plausibleDeflate(bytes, 10))) return out;
    let inflated = inflateWith(zlib().gunzipSync, bytes, budget);
    // gunzip refuses bytes after the member that are not another member: the deflate stream
    // alone, after the header, inflates whatever follows it
    const body = inflated || budget.exceeded ? -1 : gzipBodyAt(bytes);
    if (body > 0) inflated = inflateWith(zlib().inflateRawSync, bytes.subarray(body), budget);
    if (inflated) out.push({ kind: "gzip", text: inflated.toString("latin1") });
    return out;
  }
  if (bytes.length >= 30 && bytes.readUInt32LE(0) === 0x04034b50) {
    zipEntries(bytes, budget, out);
    return out;
  }
  if (isZlibHeader(b0, b1) && (b1 & 0x20) === 0 && plausibleDeflate(bytes, 2)) {
    const inflated = inflateWith(zlib().inflateSync, bytes, budget);
    if (inflated) {
      out.push({ kind: "zlib", text: inflated.toString("latin1") });
      return out;
    }
  }
  const layout = utf16Layout(bytes);
  if (layout) {
    if (charge(budget, bytes.length)) return out;
    const { order, offset } = layout;
    out.push({ kind: `utf16${order}`, text: decodeUtf16(bytes, order, offset) });
    return out;
  }
  if (tryRawDeflate && bytes.length >= 20 && plausibleDeflate(bytes, 0)) {
    const inflated = inflateWith(zlib().inflateRawSync, bytes, budget);
    // judged on the bytes: garbage that happens to inflate is not made a string first
    if (inflated && mostlyPrintableBytes(inflated)) {
      out.push({ kind: "deflate", text: inflated.toString("latin1") });
      return out;
    }
  }
  // A gzip or zip behind other bytes (`(echo hi; gzip -c f) | base64`): found by a native
  // search for its magic. More candidates than EMBEDDED_MAX is a blocking finding, so that
  // decoys cannot push the real one out of reach (random bytes hold one in about 16 MiB).
  if (tryRawDeflate && out.length === 0) {
    let candidates = 0;
    for (const magic of EMBEDDED_MAGIC) {
      for (let k = bytes.indexOf(magic, 1); k !== -1; k = bytes.indexOf(magic, k + 1)) {
        if (++candidates > EMBEDDED_MAX) {
          stop(budget, "work");
          return out;
        }
        if (charge(budget, 64)) return out;
        for (const layer of binaryLayers(bytes.subarray(k), budget, false)) {
          out.push({ kind: `embedded+${layer.kind}`, text: layer.text });
        }
        if (budget.exceeded) return out;
      }
    }
  }
  return out;
}

/** Magic numbers of the containers searched for behind other bytes: gzip (deflate), zip. */
const EMBEDDED_MAGIC = [Buffer.from([0x1f, 0x8b, 0x08]), Buffer.from([0x50, 0x4b, 0x03, 0x04])];
/** Embedded container candidates opened per blob at most (see binaryLayers). */
const EMBEDDED_MAX = 16;

/** Where the deflate stream of the gzip member `bytes` starts (after its optional fields), or -1. */
function gzipBodyAt(bytes: Uint8Array): number {
  if (bytes.length < 10) return -1;
  const flags = bytes[3] as number;
  let at = 10;
  if (flags & 4) {
    if (at + 2 > bytes.length) return -1;
    at += 2 + ((bytes[at] as number) | ((bytes[at + 1] as number) << 8));
  }
  for (const bit of [8, 16]) {
    if (flags & bit) {
      while (at < bytes.length && bytes[at] !== 0) at++;
      at++;
    }
  }
  if (flags & 2) at += 2;
  return at < bytes.length ? at : -1;
}

/** True when `text` (one character per byte) starts like a container `binaryLayers` opens. */
export function startsLikeBinary(text: string): boolean {
  if (text.length < 8) return false;
  const b0 = text.charCodeAt(0);
  const b1 = text.charCodeAt(1);
  if (b0 === 0x1f && b1 === 0x8b) return true;
  if (text.startsWith("PK\u0003\u0004")) return true;
  if (b0 === 0xff && b1 === 0xfe) return true;
  if (b0 === 0xfe && b1 === 0xff) return true;
  if (isZlibHeader(b0, b1) && b1 < 0x80 && !mostlyPrintable(text.slice(0, 64))) return true;
  // UTF-16 read as one character per byte: NULs at every other position
  let zeros = 0;
  const units = Math.min(32, text.length >> 1);
  for (let k = 0; k < units; k++) {
    if (text.charCodeAt(2 * k) === 0 || text.charCodeAt(2 * k + 1) === 0) zeros++;
  }
  return zeros >= units * 0.8;
}

/** `text` as bytes (characters above 0xFF, which a byte string never holds, are dropped). */
export function latin1Bytes(text: string): Buffer {
  return Buffer.from(text, "latin1");
}
