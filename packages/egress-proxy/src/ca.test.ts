import { createPrivateKey, X509Certificate } from "node:crypto";
import {
  chmodSync,
  copyFileSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { BottleCa } from "./index.ts";

const dir = mkdtempSync(join(tmpdir(), "bk-ca-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("BottleCa", () => {
  it("creates a P-256 CA on first use with a 0600 key, and reuses it", async () => {
    const a = await BottleCa.open(dir, "b1");
    const keyPath = join(dir, "egress-proxy", "ca", "b1", "ca.key");
    expect(statSync(keyPath).mode & 0o777).toBe(0o600);
    expect(statSync(join(dir, "egress-proxy", "ca", "b1")).mode & 0o777).toBe(0o755);
    expect(statSync(a.certPath).mode & 0o777).toBe(0o644);
    const cert = new X509Certificate(readFileSync(a.certPath));
    expect(cert.ca).toBe(true);
    expect(cert.publicKey.asymmetricKeyDetails?.namedCurve).toBe("prime256v1");
    const b = await BottleCa.open(dir, "b1");
    expect(b.certPem).toBe(a.certPem);
    const other = await BottleCa.open(dir, "b2");
    expect(other.certPem).not.toBe(a.certPem);
    expect(readFileSync(a.bundlePath, "utf8").startsWith(a.certPem)).toBe(true);
    // The bundle is rewritten when it differs or lost its mode, and left alone when it holds.
    const before = statSync(a.bundlePath).ino;
    await BottleCa.open(dir, "b1");
    expect(statSync(a.bundlePath).ino).toBe(before);
    writeFileSync(a.bundlePath, "tampered");
    await BottleCa.open(dir, "b1");
    expect(readFileSync(a.bundlePath, "utf8").startsWith(a.certPem)).toBe(true);
    chmodSync(a.bundlePath, 0o600);
    await BottleCa.open(dir, "b1");
    expect(statSync(a.bundlePath).mode & 0o777).toBe(0o644);
  });

  it("mints leaves for the host that chain to the CA, and caches their contexts", async () => {
    const ca = await BottleCa.open(dir, "b1");
    const leaf = new X509Certificate(await ca.mintLeafPem("api.github.com"));
    const root = new X509Certificate(ca.certPem);
    expect(leaf.verify(root.publicKey)).toBe(true);
    expect(leaf.checkIssued(root)).toBe(true);
    expect(leaf.checkHost("api.github.com")).toBe("api.github.com");
    expect(leaf.checkHost("evil.example.com")).toBeUndefined();
    expect(leaf.ca).toBe(false);
    const ip = new X509Certificate(await ca.mintLeafPem("127.0.0.1"));
    expect(ip.checkIP("127.0.0.1")).toBe("127.0.0.1");
    const first = await ca.contextFor("x.example.com");
    const second = await ca.contextFor("x.example.com");
    expect(second).toBe(first);
    expect(ca.stats.minted).toBe(1);
    expect(ca.stats.cacheHits).toBe(1);
  });

  it("refuses a CA key readable by others, and bad bottle names", async () => {
    await BottleCa.open(dir, "b3");
    const keyPath = join(dir, "egress-proxy", "ca", "b3", "ca.key");
    chmodSync(keyPath, 0o644);
    await expect(BottleCa.open(dir, "b3")).rejects.toMatchObject({ code: "E_CA" });
    await expect(BottleCa.open(dir, "../x")).rejects.toMatchObject({ code: "E_INVALID_INPUT" });
    await expect(BottleCa.open(dir, "")).rejects.toMatchObject({ code: "E_INVALID_INPUT" });
  });

  it("refuses at open a certificate that is not the CA of its key, before any leaf is minted", async () => {
    const a = await BottleCa.open(dir, "b4");
    const b = await BottleCa.open(dir, "b5");
    // b5's certificate beside b4's key: both parse, but they are not a pair.
    copyFileSync(b.certPath, a.certPath);
    await expect(BottleCa.open(dir, "b4")).rejects.toMatchObject({ code: "E_CA" });
    // A leaf certificate in place of the CA certificate (it matches no key here either).
    const leafDir = join(dir, "egress-proxy", "ca", "b5");
    const c = await BottleCa.open(dir, "b5");
    const leaf = await c.mintLeafPem("x.example.com");
    writeFileSync(join(leafDir, "ca.crt"), leaf);
    await expect(BottleCa.open(dir, "b5")).rejects.toMatchObject({ code: "E_CA" });
  });

  it("signs with the key file of a reopened CA, and refuses at open a key not in PKCS#8", async () => {
    const first = await BottleCa.open(dir, "b6");
    const reopened = await BottleCa.open(dir, "b6");
    const leaf = new X509Certificate(await reopened.mintLeafPem("y.example.com"));
    expect(leaf.verify(new X509Certificate(readFileSync(first.certPath)).publicKey)).toBe(true);
    // The same key as SEC1 ("EC PRIVATE KEY"): Node reads it, WebCrypto's PKCS#8 import would not.
    const keyPath = join(dir, "egress-proxy", "ca", "b6", "ca.key");
    const sec1 = createPrivateKey(readFileSync(keyPath, "utf8")).export({
      type: "sec1",
      format: "pem",
    });
    writeFileSync(keyPath, sec1, { mode: 0o600 });
    await expect(BottleCa.open(dir, "b6")).rejects.toMatchObject({ code: "E_CA" });
  });
});
