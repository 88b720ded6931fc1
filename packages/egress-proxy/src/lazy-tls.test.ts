/**
 * What `bottle run` pays before its agent starts: registering a session (its bottle's CA made
 * already) and answering the sandbox's probe (a CONNECT to an undeclared host) load neither
 * node:tls nor node:https; the first intercepted connection loads what it needs and works.
 * Counted in a fresh process (`process.moduleLoadList`), since a module once loaded stays loaded.
 * Then the CA bundle's stamp, which lets an open skip Node's root store.
 */
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import {
  chmodSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  unlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { BottleCa } from "./index.ts";

const dir = mkdtempSync(join(tmpdir(), "bk-lazy-tls-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface ChildReport {
  afterRegister: string[];
  afterProbe: string[];
  probe: string;
  intercepted: string;
}

/** Runs the script (an ES module, on the sources) in a fresh Node process; parses its last line. */
function fresh<T>(script: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      ["--import", "tsx", "--conditions=@bottlekit/source", "--input-type=module", "-e", script],
      { cwd: fileURLToPath(new URL("..", import.meta.url)), stdio: ["ignore", "pipe", "pipe"] },
    );
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on("data", (d: Buffer) => {
      stderr += d.toString();
    });
    child.on("error", reject);
    child.on("close", (code) => {
      const last = stdout.trim().split("\n").at(-1);
      if (code !== 0 || !last) reject(new Error(`exit ${code}: ${stderr}`));
      else resolve(JSON.parse(last) as T);
    });
  });
}

const TLS_MODULES = ["NativeModule tls", "NativeModule https", "NativeModule _tls_wrap"];

describe("start-up without node:tls", () => {
  it("registers and answers the probe's CONNECT without node:tls or node:https; the first intercepted connection loads them and works", async () => {
    const home = join(dir, "home");
    // the bottle's CA exists already, as for every run but the first
    await BottleCa.open(join(home, "state"), "lazy");
    const index = fileURLToPath(new URL("./index.ts", import.meta.url));
    const script = `
import { connect } from "node:net";
// What the builtins this package imports load by themselves: on Node 24 an ESM import of
// node:http loads node:tls (a require of it, as in the bundled bin, does not).
await import("node:http");
const builtin = process.moduleLoadList.slice();
const { createProxyHost } = await import(${JSON.stringify(index)});
const tlsLoaded = () => process.moduleLoadList.filter((m) => ${JSON.stringify(TLS_MODULES)}.includes(m) && !builtin.includes(m));
const ask = (path, text) => new Promise((resolve, reject) => {
  const s = connect(path);
  let buf = "";
  s.setEncoding("latin1");
  s.once("error", reject);
  s.on("data", function onData(c) {
    buf += c;
    const end = buf.indexOf("\\r\\n\\r\\n");
    if (end === -1) return;
    s.off("data", onData);
    resolve({ head: buf.slice(0, end), socket: s });
  });
  s.write(text);
});
const host = createProxyHost({
  home: ${JSON.stringify(home)},
  credentialSource: () => "ghp_4U3LSowpDx8XvYE7A8GH56oxU5aWnY2mzIbV",
  llmHandler: (_req, res) => { res.writeHead(200, { "content-type": "text/plain" }); res.end("handled\\n"); },
  deferSessionScanners: true,
});
const reg = await host.register({
  bottle: "lazy",
  routes: [],
  credentials: [{ name: "GITHUB_TOKEN" }],
  llmHosts: ["api.lazy.test"],
});
const afterRegister = tlsLoaded();
const probe = await ask(reg.proxySocketPath, "CONNECT bottle-probe-1.invalid:443 HTTP/1.1\\r\\nHost: bottle-probe-1.invalid:443\\r\\n\\r\\n");
probe.socket.destroy();
const afterProbe = tlsLoaded();
const tunnel = await ask(reg.proxySocketPath, "CONNECT api.lazy.test:443 HTTP/1.1\\r\\nHost: api.lazy.test:443\\r\\n\\r\\n");
tunnel.socket.removeAllListeners("data");
const { certPem } = await host.ca("lazy");
const tls = await import("node:tls");
const intercepted = await new Promise((resolve, reject) => {
  const s = tls.connect({ socket: tunnel.socket, servername: "api.lazy.test", ca: certPem });
  let body = "";
  s.setEncoding("utf8");
  s.once("error", reject);
  s.on("data", (c) => { body += c; });
  s.once("end", () => resolve(body));
  s.write("GET /v1/x HTTP/1.1\\r\\nHost: api.lazy.test\\r\\nConnection: close\\r\\n\\r\\n");
});
await host.close();
console.log(JSON.stringify({ afterRegister, afterProbe, probe: probe.head.split("\\r\\n")[0], intercepted: intercepted.split("\\r\\n")[0] }));
`;
    const report = await fresh<ChildReport>(script);
    expect(report.afterRegister).toEqual([]);
    expect(report.probe).toMatch(/^HTTP\/1\.1 403/);
    expect(report.afterProbe).toEqual([]);
    expect(report.intercepted).toBe("HTTP/1.1 200 OK");
  }, 60_000);
});

describe("bundle.pem and bundle.stamp", () => {
  const stateDir = join(dir, "stamp-state");
  const caDir = join(stateDir, "egress-proxy", "ca", "s1");
  const stampPath = join(caDir, "bundle.stamp");
  const expected = (ca: BottleCa) => readFileSync(ca.bundlePath, "utf8");

  it("writes a stamp with the bundle, and rewrites a bundle the stamp does not vouch for", async () => {
    const ca = await BottleCa.open(stateDir, "s1");
    const good = expected(ca);
    expect(good.startsWith(ca.certPem)).toBe(true);
    const stamp = JSON.parse(readFileSync(stampPath, "utf8")) as Record<string, unknown>;
    expect(stamp).toMatchObject({ node: process.version, size: Buffer.byteLength(good) });
    expect(statSync(stampPath).mode & 0o777).toBe(0o644);

    // left alone when it holds
    const ino = statSync(ca.bundlePath).ino;
    await BottleCa.open(stateDir, "s1");
    expect(statSync(ca.bundlePath).ino).toBe(ino);

    // one byte changed, same size: the digest differs
    const i = good.length - 100;
    writeFileSync(
      ca.bundlePath,
      `${good.slice(0, i)}${good[i] === "A" ? "B" : "A"}${good.slice(i + 1)}`,
    );
    await BottleCa.open(stateDir, "s1");
    expect(expected(ca)).toBe(good);

    // truncated, or another mode
    writeFileSync(ca.bundlePath, good.slice(0, 10));
    await BottleCa.open(stateDir, "s1");
    expect(expected(ca)).toBe(good);
    chmodSync(ca.bundlePath, 0o600);
    await BottleCa.open(stateDir, "s1");
    expect(statSync(ca.bundlePath).mode & 0o777).toBe(0o644);

    // a stamp that vouches for a tampered bundle but was written by another Node, or for another
    // CA certificate, vouches for nothing: the bundle is checked against the roots and rewritten
    const tampered = `${ca.certPem}\nnot the roots\n`;
    const sha256 = (text: string) => createHash("sha256").update(text).digest("hex");
    const forged = (over: Record<string, unknown>) => {
      writeFileSync(ca.bundlePath, tampered);
      writeFileSync(
        stampPath,
        JSON.stringify({
          ...stamp,
          size: Buffer.byteLength(tampered),
          bundle: sha256(tampered),
          ...over,
        }),
      );
    };
    forged({ node: "v0.0.1" });
    await BottleCa.open(stateDir, "s1");
    expect(expected(ca)).toBe(good);
    forged({ cert: "0".repeat(64) });
    await BottleCa.open(stateDir, "s1");
    expect(expected(ca)).toBe(good);

    // no stamp (or an unreadable one): checked and rewritten, and the stamp written again
    writeFileSync(ca.bundlePath, tampered);
    unlinkSync(stampPath);
    await BottleCa.open(stateDir, "s1");
    expect(expected(ca)).toBe(good);
    expect(JSON.parse(readFileSync(stampPath, "utf8"))).toEqual(stamp);
    writeFileSync(stampPath, "{");
    writeFileSync(ca.bundlePath, tampered);
    await BottleCa.open(stateDir, "s1");
    expect(expected(ca)).toBe(good);

    // a new CA (the directory's files deleted): the old stamp's certificate digest does not match
    rmSync(join(caDir, "ca.key"));
    rmSync(join(caDir, "ca.crt"));
    const renewed = await BottleCa.open(stateDir, "s1");
    expect(renewed.certPem).not.toBe(ca.certPem);
    expect(expected(renewed).startsWith(renewed.certPem)).toBe(true);
  });
});
