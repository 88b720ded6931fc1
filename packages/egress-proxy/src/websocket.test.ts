import { mkdtempSync, rmSync } from "node:fs";
import { request as httpRequest } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type TLSSocket, connect as tlsConnect } from "node:tls";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startUpstreams, type Upstreams } from "../test/upstream.ts";
import { type AuditEvent, createProxyHost, type ProxyHost, type RegisterResult } from "./index.ts";
import {
  encodeFrame,
  OP_BINARY,
  OP_CLOSE,
  OP_CONTINUATION,
  OP_PING,
  OP_TEXT,
  type WsFrame,
  WsFrameParser,
  WsMessageAssembler,
  WsProtocolError,
} from "./websocket.ts";

const SECRET = "AKIAZ7QW3ERT5YUI8OPA";

/** A frame with any FIN/opcode (encodeFrame always sets FIN). */
function frame(fin: boolean, opcode: number, payload: Buffer): Buffer {
  const f = encodeFrame(opcode, payload, true);
  f[0] = (fin ? 0x80 : 0) | opcode;
  return f;
}

function parseAll(parser: WsFrameParser, chunks: Buffer[]): WsFrame[] | number {
  const out: WsFrame[] = [];
  try {
    for (const c of chunks) out.push(...parser.push(c));
  } catch (error) {
    if (error instanceof WsProtocolError) return error.closeCode;
    throw error;
  }
  return out;
}

function splitAt(bytes: Buffer, cuts: number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const parts: Buffer[] = [];
  let from = 0;
  for (const p of points) {
    parts.push(bytes.subarray(from, p));
    from = p;
  }
  parts.push(bytes.subarray(from));
  return parts;
}

const view = (r: WsFrame[] | number) =>
  typeof r === "number"
    ? r
    : r.map((f) => ({
        fin: f.fin,
        opcode: f.opcode,
        payload: f.payload.toString("hex"),
        raw: f.raw.toString("hex"),
      }));

// a stream of valid messages: each data message in 1-3 fragments, pings between fragments
const messageArb = fc.record({
  parts: fc.array(fc.uint8Array({ maxLength: 300 }), { minLength: 1, maxLength: 3 }),
  pings: fc.array(fc.boolean(), { minLength: 3, maxLength: 3 }),
  big: fc.boolean(),
});

describe("WebSocket frame parser (property)", () => {
  it("any split of a valid stream parses to the same frames and messages", () => {
    fc.assert(
      fc.property(
        fc.array(messageArb, { minLength: 1, maxLength: 5 }),
        fc.array(fc.nat(), { maxLength: 12 }),
        (messages, cuts) => {
          const bytes: Buffer[] = [];
          const expected: string[] = [];
          for (const m of messages) {
            const parts = m.parts.map((p, i) =>
              m.big && i === 0
                ? Buffer.concat([Buffer.from(p), Buffer.alloc(70_000, 7)])
                : Buffer.from(p),
            );
            expected.push(Buffer.concat(parts).toString("hex"));
            parts.forEach((p, i) => {
              const op = i === 0 ? OP_BINARY : OP_CONTINUATION;
              bytes.push(frame(i === parts.length - 1, op, p));
              if (m.pings[i]) bytes.push(frame(true, OP_PING, Buffer.from("p")));
            });
          }
          const all = Buffer.concat(bytes);
          const whole = parseAll(new WsFrameParser(1 << 20), [all]);
          const split = parseAll(new WsFrameParser(1 << 20), splitAt(all, cuts));
          expect(view(split)).toEqual(view(whole));
          expect(typeof whole).not.toBe("number");
          const asm = new WsMessageAssembler(1 << 20);
          const got: string[] = [];
          for (const f of whole as WsFrame[]) {
            const ev = asm.push(f);
            if (ev.kind === "message") got.push(ev.payload.toString("hex"));
          }
          expect(got).toEqual(expected);
          // the raw frames are exactly the input bytes
          expect(Buffer.concat((whole as WsFrame[]).map((f) => f.raw)).equals(all)).toBe(true);
        },
      ),
      { numRuns: 60 },
    );
  });

  it("any split of arbitrary bytes gives the same frames or the same error", () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 400 }),
        fc.array(fc.nat(), { maxLength: 10 }),
        (bytes, cuts) => {
          const all = Buffer.from(bytes);
          const whole = parseAll(new WsFrameParser(200), [all]);
          const split = parseAll(new WsFrameParser(200), splitAt(all, cuts));
          expect(view(split)).toEqual(view(whole));
        },
      ),
      { numRuns: 500 },
    );
  });

  it("refuses what RFC 6455 forbids a client to send (fail closed)", () => {
    const err = (chunks: Buffer[], max = 1024) => parseAll(new WsFrameParser(max), chunks);
    const unmasked = Buffer.from([0x81, 0x02, 0x68, 0x69]);
    expect(err([unmasked])).toBe(1002);
    const rsv = frame(true, OP_TEXT, Buffer.from("x"));
    rsv[0] = (rsv[0] as number) | 0x40; // RSV1 (permessage-deflate) never negotiated
    expect(err([rsv])).toBe(1002);
    expect(err([frame(true, 3, Buffer.from("x"))])).toBe(1002);
    expect(err([frame(false, OP_PING, Buffer.from("x"))])).toBe(1002);
    expect(err([frame(true, OP_CLOSE, Buffer.alloc(126))])).toBe(1002);
    // a frame declaring more than the cap fails on its header, before the payload arrives
    expect(err([frame(true, OP_BINARY, Buffer.alloc(2000)).subarray(0, 8)])).toBe(1009);
    const asm = new WsMessageAssembler(10);
    const p = new WsFrameParser(100);
    const [cont] = p.push(frame(true, OP_CONTINUATION, Buffer.from("x")));
    expect(() => asm.push(cont as WsFrame)).toThrow(WsProtocolError);
    const a2 = new WsMessageAssembler(10);
    const [f1, f2] = new WsFrameParser(100).push(
      Buffer.concat([
        frame(false, OP_TEXT, Buffer.alloc(6)),
        frame(true, OP_CONTINUATION, Buffer.alloc(6)),
      ]),
    );
    expect(a2.push(f1 as WsFrame).kind).toBe("partial");
    expect(() => a2.push(f2 as WsFrame)).toThrow(/size cap/);
    const [bad] = new WsFrameParser(100).push(frame(true, OP_TEXT, Buffer.from([0xff, 0xfe])));
    expect(() => new WsMessageAssembler(100).push(bad as WsFrame)).toThrow(/UTF-8/);
  });
});

// ---- through the proxy ----

const HOSTS = ["ws-block.example.com", "ws-redact.example.com", "ws-open.example.com"];
let up: Upstreams;
let home: string;
let host: ProxyHost;
let session: RegisterResult;
const events: AuditEvent[] = [];

beforeAll(async () => {
  up = await startUpstreams(HOSTS);
  home = mkdtempSync(join(tmpdir(), "bk-pxws-"));
  host = createProxyHost({
    home,
    onAudit: (e) => events.push(e),
    resolve: () => ({ host: "127.0.0.1", port: up.tlsPort }),
    upstreamCa: up.caPem,
    maxBodyBytes: 64 * 1024,
  });
  const ALL = [{ paths: [{ type: "prefix" as const, value: "/" }] }];
  session = await host.register({
    bottle: "ws-bottle",
    routes: [
      { host: "ws-block.example.com", matches: ALL, dlp: { outbound_on_match: "block" } },
      { host: "ws-redact.example.com", matches: ALL, dlp: { outbound_on_match: "redact" } },
      { host: "ws-open.example.com", matches: ALL },
    ],
  });
});

afterAll(async () => {
  await host?.close();
  await up?.close();
  rmSync(home, { recursive: true, force: true });
});

interface Ws {
  tls: TLSSocket;
  /** Everything the proxy sent after the 101 head. */
  received: () => Buffer;
  closed: Promise<void>;
}

function openWs(target: string, extra = "", upgrade = "websocket"): Promise<Ws | string> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({
      socketPath: session.proxySocketPath,
      method: "CONNECT",
      path: `${target}:443`,
    });
    req.on("connect", async (_res, socket) => {
      const ca = (await host.ca("ws-bottle")).certPem;
      const tls = tlsConnect({ socket, servername: target, ca: [ca] }, () => {
        tls.write(
          `GET /chat HTTP/1.1\r\nHost: ${target}\r\nUpgrade: ${upgrade}\r\nConnection: Upgrade\r\n` +
            `Sec-WebSocket-Key: dGVzdA==\r\nSec-WebSocket-Version: 13\r\n${extra}\r\n`,
        );
      });
      let buf = Buffer.alloc(0);
      let headDone = false;
      const closed = new Promise<void>((r) => tls.once("close", () => r()));
      tls.on("error", () => undefined);
      tls.on("data", (c: Buffer) => {
        buf = Buffer.concat([buf, c]);
        if (headDone) return;
        const end = buf.indexOf("\r\n\r\n");
        if (end === -1) return;
        headDone = true;
        const head = buf.subarray(0, end).toString("latin1");
        if (!head.startsWith("HTTP/1.1 101")) {
          closed.then(() => resolve(buf.toString("latin1")));
          return;
        }
        buf = buf.subarray(end + 4);
        resolve({ tls, received: () => buf, closed });
      });
      tls.on("error", reject);
    });
    req.end();
  });
}

/** Data payloads (text) the upstream got since index `from` of wsReceived. */
function upstreamMessages(from: number): { data: string[]; close: number[] } {
  const frames = new WsFrameParser(1 << 20).push(Buffer.concat(up.wsReceived.slice(from)));
  const asm = new WsMessageAssembler(1 << 20);
  const data: string[] = [];
  const close: number[] = [];
  for (const f of frames) {
    const ev = asm.push(f);
    if (ev.kind === "message") data.push(ev.payload.toString("utf8"));
    if (ev.kind === "control" && f.opcode === OP_CLOSE) close.push(f.payload.readUInt16BE(0));
  }
  return { data, close };
}

/**
 * The close code the proxy sent the agent: its last frame (unmasked). What comes before it may be
 * the test upstream's echo, which is not framed.
 */
function closeCodeFrom(bytes: Buffer): number | undefined {
  for (let i = bytes.length - 4; i >= 0; i--) {
    if (bytes[i] === 0x88 && bytes[i + 1] === bytes.length - i - 2)
      return bytes.readUInt16BE(i + 2);
  }
  return undefined;
}

const waitFor = async (cond: () => boolean) => {
  await expect.poll(cond, { timeout: 60_000 }).toBe(true);
};

describe("WebSocket frames through the proxy", () => {
  it("relays clean messages (fragmented, with pings between fragments) as sent; strips the extension offer", async () => {
    const from = up.wsReceived.length;
    const ws = (await openWs(
      "ws-block.example.com",
      "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n",
    )) as Ws;
    expect(up.seen.at(-1)?.headers["sec-websocket-extensions"]).toBeUndefined();
    ws.tls.write(frame(true, OP_TEXT, Buffer.from("hello")));
    ws.tls.write(frame(false, OP_TEXT, Buffer.from("part one, ")));
    ws.tls.write(frame(true, OP_PING, Buffer.from("p")));
    ws.tls.write(frame(true, OP_CONTINUATION, Buffer.from("part two")));
    await waitFor(() => upstreamMessages(from).data.length === 2);
    expect(upstreamMessages(from).data).toEqual(["hello", "part one, part two"]);
    ws.tls.destroy();
  });

  it("a secret in a message (also split over fragments) is never forwarded: 1008 to both, audited", async () => {
    for (const split of [false, true]) {
      const from = up.wsReceived.length;
      const ws = (await openWs("ws-block.example.com")) as Ws;
      ws.tls.write(frame(true, OP_TEXT, Buffer.from("fine")));
      await waitFor(() => upstreamMessages(from).data.length === 1);
      const before = events.filter((e) => e.decision === "deny_dlp").length;
      const text = `key=${SECRET} ok`;
      if (split) {
        ws.tls.write(frame(false, OP_TEXT, Buffer.from(text.slice(0, 9))));
        ws.tls.write(frame(true, OP_CONTINUATION, Buffer.from(text.slice(9))));
      } else ws.tls.write(frame(true, OP_TEXT, Buffer.from(text)));
      ws.tls.write(frame(true, OP_TEXT, Buffer.from("after")));
      await ws.closed;
      expect(closeCodeFrom(ws.received())).toBe(1008);
      await waitFor(() => upstreamMessages(from).close.includes(1008));
      expect(upstreamMessages(from).data).toEqual(["fine"]);
      const ev = events.filter((e) => e.decision === "deny_dlp");
      expect(ev.length).toBe(before + 1);
      expect(ev.at(-1)?.reason).toMatch(/^websocket_message:/);
      expect(JSON.stringify(events)).not.toContain(SECRET);
    }
  });

  it("a redact route forwards the text message with the secret redacted", async () => {
    const from = up.wsReceived.length;
    const ws = (await openWs("ws-redact.example.com")) as Ws;
    ws.tls.write(frame(true, OP_TEXT, Buffer.from(`key=${SECRET} ok`)));
    await waitFor(() => upstreamMessages(from).data.length === 1);
    const [msg] = upstreamMessages(from).data;
    expect(msg).not.toContain(SECRET);
    expect(msg).toMatch(/^key=.+ ok$/);
    expect(events.some((e) => e.decision === "redact" && e.host === "ws-redact.example.com")).toBe(
      true,
    );
    // a binary message cannot be redacted: blocked
    ws.tls.write(frame(true, OP_BINARY, Buffer.from(`key=${SECRET}`)));
    await ws.closed;
    expect(closeCodeFrom(ws.received())).toBe(1008);
    expect(upstreamMessages(from).data).toHaveLength(1);
  });

  it("malformed frames and oversized messages close both sides; nothing of them is forwarded", async () => {
    const from = up.wsReceived.length;
    const ws = (await openWs("ws-open.example.com")) as Ws;
    ws.tls.write(Buffer.from([0x81, 0x02, 0x68, 0x69])); // unmasked
    await ws.closed;
    expect(closeCodeFrom(ws.received())).toBe(1002);
    expect(
      events.some(
        (e) => e.decision === "deny_bad_request" && e.reason === "websocket_protocol_error",
      ),
    ).toBe(true);
    const big = (await openWs("ws-open.example.com")) as Ws;
    big.tls.write(frame(true, OP_BINARY, Buffer.alloc(100 * 1024, 1)));
    await big.closed;
    expect(closeCodeFrom(big.received())).toBe(1009);
    expect(upstreamMessages(from).data).toEqual([]);
    expect(events.some((e) => e.reason === "websocket_message_too_large")).toBe(true);
  });

  it("only WebSocket upgrades are relayed", async () => {
    const before = up.seen.length;
    const answer = await openWs("ws-open.example.com", "", "h2c");
    expect(answer).toMatch(/^HTTP\/1.1 400/);
    expect(up.seen.length).toBe(before);
    expect(events.at(-1)).toMatchObject({
      decision: "deny_bad_request",
      reason: "upgrade_not_websocket",
    });
  });
});
