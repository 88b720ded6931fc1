import {
  createHash,
  createPrivateKey,
  X509Certificate as NativeX509,
  randomBytes,
  webcrypto,
} from "node:crypto";
import {
  chmodSync,
  closeSync,
  fstatSync,
  mkdirSync,
  openSync,
  readFileSync,
  readSync,
  renameSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { isIP } from "node:net";
import { dirname, join } from "node:path";
import type { SecureContext } from "node:tls";
import type * as X509 from "@peculiar/x509";
import { EgressProxyError } from "./errors.ts";
import { tls } from "./lazy-node.ts";

/**
 * The per-bottle certificate authority: a P-256 key and a self-signed CA certificate created on
 * first use under `<state>/egress-proxy/ca/<bottle>/` (key 0600, certificates 0644), and leaf
 * certificates minted per host with @peculiar/x509 and cached as SecureContexts.
 *
 * All leaves of one CA share one P-256 key generated in memory at load (mitmproxy does the same):
 * minting is then one signature. Cost: one ECDSA signature + one SecureContext per new host;
 * O(1) per cached host; the cache is bounded (least recently minted is dropped first).
 */

type X509Module = typeof X509;
let x509Loading: Promise<X509Module> | undefined;

/** @peculiar/x509 needs a Reflect polyfill loaded before it; loaded lazily so tunnels never pay for it. */
function loadX509(): Promise<X509Module> {
  x509Loading ??= (async () => {
    await import("reflect-metadata");
    const x509 = await import("@peculiar/x509");
    (x509.cryptoProvider as { set(crypto: unknown): void }).set(webcrypto);
    return x509;
  })();
  return x509Loading;
}

type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;

const ALG = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" } as const;
const BOTTLE_NAME = /^[A-Za-z0-9._-]{1,64}$/;
const LEAF_DAYS = 30;
const CA_YEARS = 10;
const CACHE_LIMIT = 2048;

function pem(label: string, der: ArrayBuffer): string {
  const b64 = Buffer.from(der).toString("base64");
  return `-----BEGIN ${label}-----\n${b64.replace(/.{64}/g, "$&\n").replace(/\n?$/, "\n")}-----END ${label}-----\n`;
}

function unpem(text: string): Buffer {
  return Buffer.from(text.replace(/-----[^-]+-----/g, "").replace(/\s+/g, ""), "base64");
}

const sha256 = (data: string): string => createHash("sha256").update(data).digest("hex");

/**
 * What `bundle.stamp` (beside `bundle.pem`) records when the bundle was last written or found to
 * hold what it should: the Node version whose root store it holds, the digest of the CA
 * certificate, and the size and digest of the bundle.
 */
interface BundleStamp {
  node: string;
  cert: string;
  size: number;
  bundle: string;
}

function readStamp(path: string): BundleStamp | undefined {
  try {
    const v = JSON.parse(readFileSync(path, "utf8")) as Partial<BundleStamp> | null;
    return typeof v?.node === "string" &&
      typeof v.cert === "string" &&
      typeof v.size === "number" &&
      typeof v.bundle === "string"
      ? (v as BundleStamp)
      : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The SHA-256 of `path` when it is a regular file of `size` bytes and permission bits `mode`,
 * read through one small buffer (the bundle is about 200 KB: a buffer or string of all of it is
 * fresh memory, which is what costs here); undefined otherwise or when it cannot be read.
 */
function fileDigest(path: string, size: number, mode: number): string | undefined {
  let fd: number;
  try {
    fd = openSync(path, "r");
  } catch {
    return undefined;
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile() || (st.mode & 0o777) !== mode || st.size !== size) return undefined;
    const hash = createHash("sha256");
    const chunk = Buffer.allocUnsafe(Math.min(size, 32 * 1024) || 1);
    for (let n = readSync(fd, chunk); n > 0; n = readSync(fd, chunk)) {
      hash.update(chunk.subarray(0, n));
    }
    return hash.digest("hex");
  } catch {
    return undefined;
  } finally {
    closeSync(fd);
  }
}

/** Writes `text` to `path` (permission bits `mode`) through a temporary file and a rename. */
function replaceFile(path: string, text: string, mode: number): void {
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, text, { mode });
  chmodSync(tmp, mode);
  renameSync(tmp, path);
}

/**
 * Makes `bundle.pem` hold the CA certificate followed by Node's root store, with mode 0644, as
 * the sandbox reads it (`SSL_CERT_FILE` and friends replace the default roots).
 *
 * Node's roots (`tls.rootCertificates`) need node:tls, and the bundle built from them is about
 * 200 KB of strings, compared with as much read from the file: most of what opening a CA cost
 * before its first leaf. So a bundle is taken as it is when `bundle.stamp` says it was written (or
 * found right) for this Node version and this CA certificate, and the file still has the size and
 * digest the stamp gives: its content is then exactly what would be written. Anything else (no
 * stamp, another Node, a new CA, a bundle changed, truncated or chmod-ed since) is checked
 * against the roots and rewritten when it differs, as before, and the stamp written again.
 */
function ensureBundle(bundlePath: string, certPem: string): void {
  const stampPath = join(dirname(bundlePath), "bundle.stamp");
  const cert = sha256(certPem);
  const stamp = readStamp(stampPath);
  if (
    stamp !== undefined &&
    stamp.node === process.version &&
    stamp.cert === cert &&
    fileDigest(bundlePath, stamp.size, 0o644) === stamp.bundle
  ) {
    return;
  }
  const bundle = `${certPem}\n${tls().rootCertificates.join("\n")}\n`;
  if (!fileHolds(bundlePath, bundle, 0o644)) replaceFile(bundlePath, bundle, 0o644);
  const next: BundleStamp = {
    node: process.version,
    cert,
    size: Buffer.byteLength(bundle),
    bundle: sha256(bundle),
  };
  replaceFile(stampPath, `${JSON.stringify(next)}\n`, 0o644);
}

/** Whether `path` is a regular file with exactly `text` (UTF-8) and permission bits `mode`. */
function fileHolds(path: string, text: string, mode: number): boolean {
  try {
    const st = statSync(path);
    if (!st.isFile() || (st.mode & 0o777) !== mode || st.size !== Buffer.byteLength(text)) {
      return false;
    }
    return readFileSync(path, "utf8") === text;
  } catch {
    return false;
  }
}

function serial(): string {
  const b = randomBytes(16);
  b[0] = (b[0] as number) & 0x7f; // positive
  return b.toString("hex");
}

export function assertBottleName(bottle: string): void {
  if (!BOTTLE_NAME.test(bottle) || bottle === "." || bottle === "..") {
    throw new EgressProxyError(
      "E_INVALID_INPUT",
      `bottle: ${JSON.stringify(bottle)} is not a valid bottle name`,
      {
        hint: "use 1-64 characters from A-Z a-z 0-9 . _ - (the bottle manifest's name)",
      },
    );
  }
}

export interface LeafStats {
  minted: number;
  cacheHits: number;
}

/**
 * What minting a leaf needs beyond the CA key: @peculiar/x509, the CA certificate parsed by it,
 * the leaves' shared key pair and the authority key identifier. Loaded by the first mint, not by
 * `open`: the module and its ASN.1 parse of the certificate were a large part of `bottle run`'s
 * start-up, and a session whose routes are all plain tunnels never mints a leaf.
 */
interface MintKit {
  x509: X509Module;
  caCert: X509.X509Certificate;
  leafKeys: CryptoKeyPair;
  leafKeyPem: string;
  aki: X509.Extension;
}

async function loadMintKit(
  certPem: string,
  parsed?: { x509: X509Module; caCert: X509.X509Certificate },
): Promise<MintKit> {
  const x509 = parsed?.x509 ?? (await loadX509());
  const caCert = parsed?.caCert ?? new x509.X509Certificate(certPem);
  const leafKeys = (await webcrypto.subtle.generateKey(ALG, true, [
    "sign",
    "verify",
  ])) as CryptoKeyPair;
  const leafKeyPem = pem(
    "PRIVATE KEY",
    await webcrypto.subtle.exportKey("pkcs8", leafKeys.privateKey),
  );
  const aki = await x509.AuthorityKeyIdentifierExtension.create(caCert);
  return { x509, caCert, leafKeys, leafKeyPem, aki };
}

export class BottleCa {
  readonly certPath: string;
  readonly bundlePath: string;
  readonly certPem: string;
  private readonly contexts = new Map<string, SecureContext>();
  private readonly pending = new Map<string, Promise<SecureContext>>();
  private kit: Promise<MintKit> | undefined;
  readonly stats: LeafStats = { minted: 0, cacheHits: 0 };

  /**
   * The CA key as WebCrypto signs with it: imported from the PKCS#8 file by the first mint (the
   * import, WebCrypto's first use in the process, cost a few ms of `open`; `open` has checked the
   * key with Node's own parser already). A failed import fails that mint and is tried again.
   */
  private caKeyLoading: Promise<CryptoKey> | undefined;
  /** The key file's PKCS#8 bytes until imported (undefined for a CA created by this process). */
  private readonly caKeyDer: Buffer | undefined;

  private constructor(
    caKey: CryptoKey | { pkcs8: Buffer },
    certPem: string,
    certPath: string,
    kit?: Promise<MintKit>,
  ) {
    this.certPath = certPath;
    this.certPem = certPem;
    this.kit = kit;
    this.caKeyLoading = "pkcs8" in caKey ? undefined : Promise.resolve(caKey);
    this.caKeyDer = "pkcs8" in caKey ? caKey.pkcs8 : undefined;
    this.bundlePath = join(dirname(certPath), "bundle.pem");
    ensureBundle(this.bundlePath, certPem);
  }

  private caKey(): Promise<CryptoKey> {
    if (this.caKeyLoading !== undefined) return this.caKeyLoading;
    const der = this.caKeyDer as Buffer;
    const loading = webcrypto.subtle.importKey("pkcs8", der, ALG, false, ["sign"]);
    loading.catch(() => {
      if (this.caKeyLoading === loading) this.caKeyLoading = undefined;
    });
    this.caKeyLoading = loading;
    return loading;
  }

  private mintKit(): Promise<MintKit> {
    if (this.kit !== undefined) return this.kit;
    const kit = loadMintKit(this.certPem);
    // A failed load (it cannot fail for a certificate `open` parsed, but a module can) is tried
    // again by the next mint; that mint fails meanwhile, so its connection is refused.
    kit.catch(() => {
      if (this.kit === kit) this.kit = undefined;
    });
    this.kit = kit;
    return kit;
  }

  /** Loads the bottle's CA from `stateDir`, creating it on first use. */
  static async open(stateDir: string, bottle: string): Promise<BottleCa> {
    assertBottleName(bottle);
    const dir = join(stateDir, "egress-proxy", "ca", bottle);
    const keyPath = join(dir, "ca.key");
    const certPath = join(dir, "ca.crt");
    // the directory stays traversable: the sandbox user must read ca.crt and bundle.pem; the key
    // itself is 0600
    mkdirSync(dir, { recursive: true, mode: 0o755 });
    chmodSync(dir, 0o755);
    let keyText: string | undefined;
    let certText: string | undefined;
    try {
      const st = statSync(keyPath);
      if ((st.mode & 0o077) !== 0) {
        throw new EgressProxyError(
          "E_CA",
          `${keyPath}: CA private key is readable by group or others`,
          {
            hint: `chmod 600 ${keyPath} (or delete the directory to mint a new CA)`,
          },
        );
      }
      keyText = readFileSync(keyPath, "utf8");
      certText = readFileSync(certPath, "utf8");
    } catch (error) {
      if (error instanceof EgressProxyError) throw error;
      if ((error as NodeJS.ErrnoException).code !== "ENOENT") {
        throw new EgressProxyError("E_CA", `${dir}: cannot read the bottle CA`, { cause: error });
      }
    }
    let caKey: CryptoKey | { pkcs8: Buffer };
    let certPem: string;
    let kit: Promise<MintKit> | undefined;
    if (keyText !== undefined && certText !== undefined) {
      try {
        // Node's own parser checks the files here (fast, native): the key as the PKCS#8 P-256
        // key WebCrypto imports by the first mint, the certificate as a CA of that key.
        // @peculiar/x509 parses the certificate again when the first leaf is minted.
        const pkcs8 = unpem(keyText);
        const key = createPrivateKey({ key: pkcs8, format: "der", type: "pkcs8" });
        if (
          key.asymmetricKeyType !== "ec" ||
          key.asymmetricKeyDetails?.namedCurve !== "prime256v1"
        ) {
          throw new Error("ca.key is not a P-256 (ECDSA) key");
        }
        const cert = new NativeX509(certText);
        if (!cert.ca || !cert.checkPrivateKey(key)) {
          throw new Error("ca.crt is not a CA certificate of ca.key");
        }
        caKey = { pkcs8 };
        certPem = cert.toString();
      } catch (error) {
        throw new EgressProxyError("E_CA", `${dir}: the bottle CA files cannot be parsed`, {
          cause: error,
          hint: "delete the directory to mint a new CA (sandboxes must then get the new ca.crt)",
        });
      }
    } else {
      const x509 = await loadX509();
      const keys = (await webcrypto.subtle.generateKey(ALG, true, [
        "sign",
        "verify",
      ])) as CryptoKeyPair;
      const now = Date.now();
      const caCert = await x509.X509CertificateGenerator.createSelfSigned({
        serialNumber: serial(),
        name: `CN=bottlekit CA for ${bottle}, O=bottlekit`,
        notBefore: new Date(now - 3600_000),
        notAfter: new Date(now + CA_YEARS * 365 * 86400_000),
        keys,
        signingAlgorithm: ALG,
        extensions: [
          new x509.BasicConstraintsExtension(true, 0, true),
          new x509.KeyUsagesExtension(
            x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign,
            true,
          ),
          await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
        ],
      });
      const keyDer = await webcrypto.subtle.exportKey("pkcs8", keys.privateKey);
      const tmpKey = `${keyPath}.${process.pid}.tmp`;
      writeFileSync(tmpKey, pem("PRIVATE KEY", keyDer), { mode: 0o600, flag: "wx" });
      chmodSync(tmpKey, 0o600);
      const tmpCert = `${certPath}.${process.pid}.tmp`;
      writeFileSync(tmpCert, caCert.toString("pem"), { mode: 0o644 });
      chmodSync(tmpCert, 0o644);
      // cert first: a reader that finds the key always finds its certificate
      renameSync(tmpCert, certPath);
      renameSync(tmpKey, keyPath);
      caKey = keys.privateKey;
      certPem = new NativeX509(caCert.toString("pem")).toString();
      // The module is loaded and the certificate parsed already: the kit costs little more now.
      kit = loadMintKit(certPem, { x509, caCert });
      await kit;
    }
    return new BottleCa(caKey, certPem, certPath, kit);
  }

  /** The SecureContext presenting a leaf for `host` (minted once, then cached). */
  contextFor(host: string): Promise<SecureContext> {
    const hit = this.contexts.get(host);
    if (hit) {
      this.stats.cacheHits++;
      return Promise.resolve(hit);
    }
    let p = this.pending.get(host);
    if (!p) {
      p = this.mint(host).finally(() => this.pending.delete(host));
      this.pending.set(host, p);
    }
    return p;
  }

  /** The cached SecureContext for `host`, if minted already (synchronous path for SNICallback). */
  cached(host: string): SecureContext | undefined {
    const hit = this.contexts.get(host);
    if (hit) this.stats.cacheHits++;
    return hit;
  }

  /** Mints a leaf certificate (PEM) for `host`; exposed for the bench and tests. */
  async mintLeafPem(host: string): Promise<string> {
    const kit = await this.mintKit();
    const x = kit.x509;
    const now = Date.now();
    const notAfter = Math.min(now + LEAF_DAYS * 86400_000, kit.caCert.notAfter.getTime());
    const san = isIP(host)
      ? { type: "ip" as const, value: host }
      : { type: "dns" as const, value: host };
    const cert = await x.X509CertificateGenerator.create({
      serialNumber: serial(),
      subject: isIP(host) ? "CN=bottlekit leaf" : `CN=${host}`,
      issuer: kit.caCert.subject,
      notBefore: new Date(now - 3600_000),
      notAfter: new Date(notAfter),
      signingAlgorithm: ALG,
      publicKey: kit.leafKeys.publicKey,
      signingKey: await this.caKey(),
      extensions: [
        new x.BasicConstraintsExtension(false, undefined, true),
        new x.KeyUsagesExtension(x.KeyUsageFlags.digitalSignature, true),
        new x.ExtendedKeyUsageExtension([x.ExtendedKeyUsage.serverAuth]),
        new x.SubjectAlternativeNameExtension([san]),
        kit.aki,
      ],
    });
    return cert.toString("pem");
  }

  private async mint(host: string): Promise<SecureContext> {
    const leaf = await this.mintLeafPem(host);
    const { leafKeyPem } = await this.mintKit();
    const ctx = tls().createSecureContext({ key: leafKeyPem, cert: leaf, minVersion: "TLSv1.2" });
    this.stats.minted++;
    if (this.contexts.size >= CACHE_LIMIT) {
      const oldest = this.contexts.keys().next().value;
      if (oldest !== undefined) this.contexts.delete(oldest);
    }
    this.contexts.set(host, ctx);
    return ctx;
  }
}
