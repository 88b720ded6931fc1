import { isUtf8 } from "node:buffer";
import { randomBytes } from "node:crypto";

/**
 * RFC 6455 frames from the agent (client → server), parsed incrementally so each text or binary
 * message can be scanned before any of it goes upstream. No extension is ever negotiated (the
 * proxy strips `Sec-WebSocket-Extensions` from the upgrade request), so a frame with an RSV bit
 * set, an unknown opcode, an unmasked client frame, a control frame that is fragmented or longer
 * than 125 bytes, a continuation with nothing to continue, a text message that is not UTF-8, or a
 * message over the cap is an error: the connection is closed (fail closed), nothing more is sent.
 */

export interface WsFrame {
  fin: boolean;
  opcode: number;
  /** The payload, unmasked. */
  payload: Buffer;
  /** The frame exactly as received (what is forwarded when the message is allowed). */
  raw: Buffer;
}

export type WsCloseCode = 1002 | 1007 | 1008 | 1009;

/** A protocol violation or an oversized frame/message: `closeCode` is what both sides are sent. */
export class WsProtocolError extends Error {
  constructor(
    readonly closeCode: WsCloseCode,
    message: string,
  ) {
    super(message);
    this.name = "WsProtocolError";
  }
}

export const OP_CONTINUATION = 0;
export const OP_TEXT = 1;
export const OP_BINARY = 2;
export const OP_CLOSE = 8;
export const OP_PING = 9;
export const OP_PONG = 10;

/** Incremental frame parser: any split of the same bytes yields the same frames (or error). */
export class WsFrameParser {
  private chunks: Buffer[] = [];
  private length = 0;
  private failed: WsProtocolError | undefined;

  constructor(
    private readonly maxFrameBytes: number,
    private readonly requireMask = true,
  ) {}

  /** Adds bytes; returns the frames completed by them. Throws `WsProtocolError` (and keeps failing). */
  push(chunk: Buffer): WsFrame[] {
    if (this.failed) throw this.failed;
    if (chunk.length > 0) {
      this.chunks.push(chunk);
      this.length += chunk.length;
    }
    const frames: WsFrame[] = [];
    try {
      for (;;) {
        const frame = this.next();
        if (!frame) break;
        frames.push(frame);
      }
    } catch (error) {
      this.failed =
        error instanceof WsProtocolError ? error : new WsProtocolError(1002, String(error));
      throw this.failed;
    }
    return frames;
  }

  /** Bytes received but not yet part of a complete frame. */
  get buffered(): number {
    return this.length;
  }

  private peek(n: number): Buffer {
    if (this.chunks[0] && this.chunks[0].length >= n) return this.chunks[0].subarray(0, n);
    // merge just enough leading chunks (a large frame arriving in pieces is joined once, in take)
    let k = 0;
    let got = 0;
    while (got < n) got += (this.chunks[k++] as Buffer).length;
    const merged = Buffer.concat(this.chunks.slice(0, k), got);
    this.chunks.splice(0, k, merged);
    return merged.subarray(0, n);
  }

  private take(n: number): Buffer {
    const head = this.peek(n);
    const first = this.chunks[0] as Buffer;
    if (first.length === n) this.chunks.shift();
    else this.chunks[0] = first.subarray(n);
    this.length -= n;
    return Buffer.from(head); // a copy: the caller may keep it
  }

  private next(): WsFrame | undefined {
    if (this.length < 2) return undefined;
    const h = this.peek(2);
    const b0 = h[0] as number;
    const b1 = h[1] as number;
    const fin = (b0 & 0x80) !== 0;
    if ((b0 & 0x70) !== 0) throw new WsProtocolError(1002, "RSV bit set (no extension negotiated)");
    const opcode = b0 & 0x0f;
    if (opcode > OP_BINARY && opcode < OP_CLOSE) throw new WsProtocolError(1002, "reserved opcode");
    if (opcode > OP_PONG) throw new WsProtocolError(1002, "reserved opcode");
    const masked = (b1 & 0x80) !== 0;
    if (this.requireMask && !masked) throw new WsProtocolError(1002, "unmasked client frame");
    let len = b1 & 0x7f;
    let header = 2;
    if (opcode >= OP_CLOSE) {
      if (!fin) throw new WsProtocolError(1002, "fragmented control frame");
      if (len > 125) throw new WsProtocolError(1002, "control frame longer than 125 bytes");
    }
    if (len === 126) {
      if (this.length < 4) return undefined;
      len = this.peek(4).readUInt16BE(2);
      header = 4;
    } else if (len === 127) {
      if (this.length < 10) return undefined;
      const big = this.peek(10).readBigUInt64BE(2);
      if (big > BigInt(Number.MAX_SAFE_INTEGER)) throw new WsProtocolError(1009, "frame too large");
      len = Number(big);
      header = 10;
    }
    if (len > this.maxFrameBytes) throw new WsProtocolError(1009, "frame over the size cap");
    const maskBytes = masked ? 4 : 0;
    const total = header + maskBytes + len;
    if (this.length < total) return undefined;
    const raw = this.take(total);
    const payload = Buffer.from(raw.subarray(header + maskBytes));
    if (masked) {
      const key = raw.subarray(header, header + 4);
      for (let i = 0; i < payload.length; i++)
        payload[i] = (payload[i] as number) ^ (key[i & 3] as number);
    }
    return { fin, opcode, payload, raw };
  }
}

export type WsEvent =
  | { kind: "control"; frame: WsFrame }
  | { kind: "partial" }
  | { kind: "message"; opcode: typeof OP_TEXT | typeof OP_BINARY; payload: Buffer; raw: Buffer[] };

/** Joins data frames into messages (control frames may come between fragments). */
export class WsMessageAssembler {
  private opcode: number | undefined;
  private parts: Buffer[] = [];
  private raw: Buffer[] = [];
  private size = 0;

  constructor(private readonly maxMessageBytes: number) {}

  push(frame: WsFrame): WsEvent {
    if (frame.opcode >= OP_CLOSE) return { kind: "control", frame };
    if (frame.opcode === OP_CONTINUATION) {
      if (this.opcode === undefined)
        throw new WsProtocolError(1002, "continuation frame with no message to continue");
    } else {
      if (this.opcode !== undefined)
        throw new WsProtocolError(1002, "new message before the previous one ended");
      this.opcode = frame.opcode;
    }
    this.size += frame.payload.length;
    if (this.size > this.maxMessageBytes)
      throw new WsProtocolError(1009, "message over the size cap");
    this.parts.push(frame.payload);
    this.raw.push(frame.raw);
    if (!frame.fin) return { kind: "partial" };
    const opcode = this.opcode as typeof OP_TEXT | typeof OP_BINARY;
    const payload = Buffer.concat(this.parts, this.size);
    const raw = this.raw;
    this.opcode = undefined;
    this.parts = [];
    this.raw = [];
    this.size = 0;
    if (opcode === OP_TEXT && !isUtf8(payload))
      throw new WsProtocolError(1007, "text message is not UTF-8");
    return { kind: "message", opcode, payload, raw };
  }
}

/** Encodes one frame (FIN set). `mask` true for client → server frames. */
export function encodeFrame(opcode: number, payload: Buffer, mask: boolean): Buffer {
  const len = payload.length;
  const ext = len < 126 ? 0 : len <= 0xffff ? 2 : 8;
  const head = Buffer.alloc(2 + ext + (mask ? 4 : 0));
  head[0] = 0x80 | opcode;
  head[1] = (mask ? 0x80 : 0) | (ext === 0 ? len : ext === 2 ? 126 : 127);
  if (ext === 2) head.writeUInt16BE(len, 2);
  if (ext === 8) head.writeBigUInt64BE(BigInt(len), 2);
  if (!mask) return Buffer.concat([head, payload]);
  const key = randomBytes(4);
  key.copy(head, 2 + ext);
  const body = Buffer.from(payload);
  for (let i = 0; i < body.length; i++) body[i] = (body[i] as number) ^ (key[i & 3] as number);
  return Buffer.concat([head, body]);
}

/** A close frame with a status code and a short reason. */
export function closeFrame(code: number, reason: string, mask: boolean): Buffer {
  const text = Buffer.from(reason.slice(0, 100), "utf8");
  const payload = Buffer.alloc(2 + text.length);
  payload.writeUInt16BE(code, 0);
  text.copy(payload, 2);
  return encodeFrame(OP_CLOSE, payload, mask);
}
