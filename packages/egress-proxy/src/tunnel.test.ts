import { execFileSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { type AddressInfo, connect, createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type AuditEvent, createProxyHost, type ProxyHost, type RegisterResult } from "./index.ts";

/**
 * Bulk transfers through a plain tunnel, both ways, byte for byte: the download side is relayed
 * from the upstream's reads into buffers the tunnel reuses, so what arrives must be exactly what
 * was sent, in order, also when the agent stops reading for a while (backpressure). The same
 * transfers run with the JS relay only, and with the native relay taking the tunnel over after
 * 64 KiB (mid-transfer, with bytes in flight both ways).
 */

const RELAY = fileURLToPath(new URL("../dist/egress-relay", import.meta.url));
const SCRIPT = fileURLToPath(new URL("../scripts/build-relay.mjs", import.meta.url));

const DOWN = randomBytes(6 * 1024 * 1024 + 12_345);
const UP_SIZE = 3 * 1024 * 1024 + 777;

let upstream: Server;
let home: string;
let jsHost: ProxyHost;
let nativeHost: ProxyHost;
let jsSession: RegisterResult;
let nativeSession: RegisterResult;
const events: AuditEvent[] = [];
const received: { hash: string; bytes: number }[] = [];
let upstreamStops = 0;
let holdOpen = false;
/** Bytes the upstream received on connections held open (`holdOpen`). */
let heldBytes = 0;

const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");

beforeAll(async () => {
  // the upstream: hashes what it receives (stopping now and then, so the tunnel's writes to it
  // back up), then sends DOWN and closes
  upstream = createServer((s) => {
    const h = createHash("sha256");
    let n = 0;
    let stops = 0;
    s.on("data", (c: Buffer) => {
      h.update(c);
      n += c.length;
      if (holdOpen) heldBytes += c.length;
      if (stops < 3 && n > (stops + 1) * 1024 * 1024) {
        stops++;
        upstreamStops++;
        s.pause();
        setTimeout(() => s.resume(), 50);
      }
      if (n === UP_SIZE && !holdOpen) {
        received.push({ hash: h.digest("hex"), bytes: n });
        s.end(DOWN);
      }
    });
    s.on("error", () => undefined);
  });
  await new Promise<void>((r) => upstream.listen(0, "127.0.0.1", () => r()));
  const port = (upstream.address() as AddressInfo).port;
  home = mkdtempSync(join(tmpdir(), "bk-pxt-"));
  // the relay is built by `pnpm build`; a test run without a build builds it (and fails without cc)
  if (!existsSync(RELAY)) {
    execFileSync(process.execPath, [SCRIPT], {
      env: { ...process.env, BOTTLEKIT_REQUIRE_NATIVE_RELAY: "1" },
    });
  }
  const common = {
    home,
    onAudit: (e: AuditEvent) => events.push(e),
    resolve: () => ({ host: "127.0.0.1", port }),
  };
  jsHost = createProxyHost({ ...common, nativeRelay: false });
  nativeHost = createProxyHost({ ...common, nativeRelay: { afterBytes: 64 * 1024 } });
  const routes = [{ host: "bulk.example.com" }];
  jsSession = await jsHost.register({ bottle: "bulk", routes });
  nativeSession = await nativeHost.register({ bottle: "bulk", routes });
});

afterAll(async () => {
  await jsHost?.close();
  await nativeHost?.close();
  await new Promise((r) => upstream?.close(r));
  rmSync(home, { recursive: true, force: true });
});

function openTunnel(session: RegisterResult): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect(session.proxySocketPath, () =>
      s.write("CONNECT bulk.example.com:443 HTTP/1.1\r\nHost: bulk.example.com:443\r\n\r\n"),
    );
    s.on("error", reject);
    let head = Buffer.alloc(0);
    const onData = (c: Buffer) => {
      head = Buffer.concat([head, c]);
      const end = head.indexOf("\r\n\r\n");
      if (end === -1) return;
      s.off("data", onData);
      s.pause(); // nothing is emitted until the caller listens and resumes
      const status = head.subarray(0, end).toString("latin1");
      if (!status.startsWith("HTTP/1.1 200")) return reject(new Error(status));
      const rest = head.subarray(end + 4);
      if (rest.length > 0) s.unshift(rest);
      resolve(s);
    };
    s.on("data", onData);
  });
}

describe.each([
  { relay: "js", pick: () => ({ host: jsHost, session: jsSession }) },
  { relay: "native", pick: () => ({ host: nativeHost, session: nativeSession }) },
])("plain tunnel, bulk, $relay relay", ({ relay, pick }) => {
  it("relays megabytes both ways intact, with the agent and the upstream pausing their reads", async () => {
    const { host, session } = pick();
    events.length = 0;
    upstreamStops = 0;
    const s = await openTunnel(session);
    const chunks: Buffer[] = [];
    let got = 0;
    let pauses = 0;
    const done = new Promise<void>((resolve, reject) => {
      s.on("data", (c: Buffer) => {
        chunks.push(c);
        got += c.length;
        // stop reading now and then so the tunnel's writes to the agent back up
        if (pauses < 3 && got > (pauses + 1) * 1024 * 1024) {
          pauses++;
          s.pause();
          setTimeout(() => s.resume(), 50);
        }
      });
      s.on("end", () => resolve());
      s.on("error", reject);
      s.resume();
    });
    const upload = randomBytes(UP_SIZE);
    s.write(upload);
    await done;
    s.destroy();
    expect(pauses).toBe(3);
    expect(upstreamStops).toBe(3);
    expect(received.at(-1)).toEqual({ hash: sha(upload), bytes: UP_SIZE });
    const all = Buffer.concat(chunks);
    expect(all.length).toBe(DOWN.length);
    expect(sha(all)).toBe(sha(DOWN));
    await expect
      .poll(() => events.filter((e) => e.decision === "tunnel").length, { timeout: 60_000 })
      .toBe(1);
    expect(events.find((e) => e.decision === "tunnel")).toMatchObject({
      host: "bulk.example.com",
      bytesIn: UP_SIZE,
      bytesOut: DOWN.length,
      ...(relay === "native" ? { reason: "native_relay" } : {}),
    });
    const m = await host.metrics();
    expect(m.nativeRelayTunnels).toBe(relay === "native" ? 1 : 0);
    await expect.poll(async () => (await host.metrics()).openTunnels, { timeout: 60_000 }).toBe(0);
  });
});

describe("native relay: cutoff, idle tunnels", () => {
  it("a tunnel under the hand-over point stays in JS; cutoff closes every tunnel, native or not", async () => {
    holdOpen = true;
    heldBytes = 0;
    try {
      const before = (await nativeHost.metrics()).nativeRelayTunnels;
      // three tunnels past the hand-over point (native), two idle ones (JS)
      const busy = await Promise.all([0, 1, 2].map(() => openTunnel(nativeSession)));
      const idle = await Promise.all([0, 1].map(() => openTunnel(nativeSession)));
      for (const s of busy) s.write(randomBytes(256 * 1024));
      await expect
        .poll(async () => (await nativeHost.metrics()).nativeRelayTunnels - before, {
          timeout: 60_000,
        })
        .toBe(3);
      expect((await nativeHost.metrics()).openTunnels).toBe(5);
      // every byte written has reached the upstream before the cutoff (else the tunnels' byte
      // counts below race it)
      await expect.poll(() => heldBytes, { timeout: 60_000 }).toBe(3 * 256 * 1024);
      const closed = [...busy, ...idle].map(
        (s) =>
          new Promise<void>((resolve) => {
            s.on("error", () => undefined);
            s.on("close", () => resolve());
            s.resume();
          }),
      );
      events.length = 0;
      await nativeHost.cutoff({ bottle: "bulk" });
      await Promise.all(closed);
      expect(events.filter((e) => e.decision === "closed_by_cutoff")).toHaveLength(5);
      await expect
        .poll(() => events.filter((e) => e.decision === "tunnel").length, { timeout: 60_000 })
        .toBe(5);
      const relayed = events.filter((e) => e.decision === "tunnel" && e.reason === "native_relay");
      expect(relayed).toHaveLength(3);
      for (const e of relayed) expect(e.bytesIn).toBe(256 * 1024);
      expect((await nativeHost.metrics()).openTunnels).toBe(0);
    } finally {
      holdOpen = false;
      await nativeHost.restore({ bottle: "bulk" });
    }
  });
});

describe("native relay: a hand-over that cannot drain", () => {
  it("waits while the agent does not read, carries on in JS, and hands over once it reads; bytes intact", async () => {
    const down = randomBytes(4 * 1024 * 1024 + 3);
    const upload = randomBytes(3 * 1024 * 1024 + 5);
    let upHash = "";
    // this upstream sends at once, whatever the agent does
    const srv = createServer((s) => {
      s.write(down);
      const h = createHash("sha256");
      let n = 0;
      s.on("data", (c: Buffer) => {
        h.update(c);
        n += c.length;
        if (n === upload.length) {
          upHash = h.digest("hex");
          s.end();
        }
      });
      s.on("error", () => undefined);
    });
    await new Promise<void>((r) => srv.listen(0, "127.0.0.1", () => r()));
    const port = (srv.address() as AddressInfo).port;
    const h2 = createProxyHost({
      home,
      resolve: () => ({ host: "127.0.0.1", port }),
      // past the socket buffers: when the hand-over starts, writes to the agent are backed up
      nativeRelay: { afterBytes: 1024 * 1024 },
    });
    try {
      const s2 = await h2.register({ bottle: "drain", routes: [{ host: "bulk.example.com" }] });
      const s = await openTunnel(s2);
      // not reading (openTunnel leaves it paused): the proxy's writes to the agent back up
      s.write(upload);
      await new Promise((r) => setTimeout(r, 800)); // hand-over attempts give up meanwhile
      const chunks: Buffer[] = [];
      await new Promise<void>((resolve, reject) => {
        s.on("data", (c: Buffer) => chunks.push(c));
        s.on("end", () => resolve());
        s.on("error", reject);
        s.resume();
      });
      s.destroy();
      expect(sha(Buffer.concat(chunks))).toBe(sha(down));
      expect(upHash).toBe(sha(upload));
      expect((await h2.metrics()).nativeRelayTunnels).toBe(1);
    } finally {
      await h2.close();
      await new Promise((r) => srv.close(r));
    }
  });
});
