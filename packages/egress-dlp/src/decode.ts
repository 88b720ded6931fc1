import { constants, gunzipSync, inflateRawSync, inflateSync } from "node:zlib";
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

type Inflate = typeof inflateSync;

/** Reads bits least-significant first, as deflate packs them, from `bytes[from, end)`. */
class BitReader {
  private at = 0;
  constructor(
    private readonly bytes: Uint8Array,
    private readonly from: number,
    private readonly end: number,
  ) {}
  bits(count: number): number {
    let v = 0;
    for (let k = 0; k < count; k++) {
      const pos = this.from * 8 + this.at++;
      if (pos >> 3 >= this.end) return -1;
      const byte = this.bytes[pos >> 3] as number;
      v |= ((byte >> (pos & 7)) & 1) << k;
    }
    return v;
  }
  /** One bit at a time, most significant first (Huffman codes). */
  bit(): number {
    return this.bits(1);
  }
}

function printableLiteral(symbol: number): boolean {
  return (symbol >= 32 && symbol < 127) || symbol === 9 || symbol === 10 || symbol === 13;
}

/**
 * Cheap check, in JS, that `bytes[from…]` starts like a deflate stream holding text, before any
 * zlib call (a call costs microseconds; floods of look-alike blobs must not buy them): a stored
 * block's LEN/NLEN are complements; a fixed-Huffman block starts with printable literals; a
 * dynamic block's code-length code is a complete prefix code. Random bytes pass about 1 in 50.
 * Only `bytes[0, length)` is read (a reused scratch buffer can be passed).
 */
export function plausibleDeflate(
  bytes: Uint8Array,
  from: number,
  length: number = bytes.length,
): boolean {
  const r = new BitReader(bytes, from, length);
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
    // fixed Huffman: the first symbols of text are literals (nothing to copy from yet)
    for (let s = 0; s < 5; s++) {
      let code = 0;
      for (let k = 0; k < 7; k++) code = (code << 1) | r.bit();
      if (code < 0) return false;
      if (code <= 0b0010111) return s > 0; // 256-279: end of block or a copy, only after text
      code = (code << 1) | r.bit();
      if (code >= 0b00110000 && code <= 0b10111111) {
        if (!printableLiteral(code - 0b00110000)) return false;
        continue;
      }
      if (code >= 0b11000000 && code <= 0b11000111) return s > 0; // lengths 280-287
      code = (code << 1) | r.bit();
      if (code < 0 || !printableLiteral(code - 0b110010000 + 144)) return false;
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
    for (let k = 0; k < hclen + 4; k++) {
      const len = r.bits(3);
      if (len < 0) return false;
      if (len > 0) {
        kraft += 1 << (7 - len);
        used++;
      }
    }
    return kraft === 128 || (used === 1 && kraft === 64);
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
    const out = fn(bytes, { maxOutputLength: left, finishFlush: constants.Z_SYNC_FLUSH });
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
      const inflated = inflateWith(inflateRawSync, data, budget);
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
    let inflated = inflateWith(gunzipSync, bytes, budget);
    // gunzip refuses bytes after the member that are not another member: the deflate stream
    // alone, after the header, inflates whatever follows it
    const body = inflated || budget.exceeded ? -1 : gzipBodyAt(bytes);
    if (body > 0) inflated = inflateWith(inflateRawSync, bytes.subarray(body), budget);
    if (inflated) out.push({ kind: "gzip", text: inflated.toString("latin1") });
    return out;
  }
  if (bytes.length >= 30 && bytes.readUInt32LE(0) === 0x04034b50) {
    zipEntries(bytes, budget, out);
    return out;
  }
  if (isZlibHeader(b0, b1) && (b1 & 0x20) === 0 && plausibleDeflate(bytes, 2)) {
    const inflated = inflateWith(inflateSync, bytes, budget);
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
    const inflated = inflateWith(inflateRawSync, bytes, budget);
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
