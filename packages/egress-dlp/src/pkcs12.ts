import { createHash, createHmac } from "node:crypto";

/**
 * Recognises a PKCS#12 key store protected by Google's well-known service-account password
 * `notasecret` (RFC 7292): parse the DER header, derive the MAC key with the PKCS#12 KDF and
 * compare the HMAC. Such a file is as good as an unencrypted private key. Anything malformed,
 * without a MAC, or with more than 10 000 KDF iterations is not reported (bounded work).
 */

interface Tlv {
  tag: number;
  start: number; // content start
  end: number; // content end
}

function readTlv(b: Uint8Array, at: number, limit: number): Tlv | undefined {
  if (at + 2 > limit) return undefined;
  const tag = b[at] as number;
  let len = b[at + 1] as number;
  let p = at + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4 || p + n > limit) return undefined;
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + (b[p + i] as number);
    p += n;
  }
  if (p + len > limit) return undefined;
  return { tag, start: p, end: p + len };
}

function children(b: Uint8Array, t: Tlv): Tlv[] {
  const out: Tlv[] = [];
  let p = t.start;
  while (p < t.end && out.length < 16) {
    const c = readTlv(b, p, t.end);
    if (!c) return [];
    out.push(c);
    p = c.end;
  }
  return out;
}

const HASHES: Record<string, { name: string; v: number; u: number }> = {
  "2b0e03021a": { name: "sha1", v: 64, u: 20 },
  "608648016503040201": { name: "sha256", v: 64, u: 32 },
  "608648016503040202": { name: "sha384", v: 128, u: 48 },
  "608648016503040203": { name: "sha512", v: 128, u: 64 },
};

function hex(b: Uint8Array, t: Tlv): string {
  return Buffer.from(b.subarray(t.start, t.end)).toString("hex");
}

/** RFC 7292 appendix B.2, ID = 3 (MAC key). */
function pkcs12Kdf(
  hash: string,
  v: number,
  u: number,
  password: string,
  salt: Uint8Array,
  iterations: number,
): Buffer {
  const pw = Buffer.alloc((password.length + 1) * 2);
  for (let i = 0; i < password.length; i++) pw.writeUInt16BE(password.charCodeAt(i), i * 2);
  const fill = (src: Uint8Array): Buffer => {
    const len = src.length === 0 ? 0 : v * Math.ceil(src.length / v);
    const out = Buffer.alloc(len);
    for (let i = 0; i < len; i++) out[i] = src[i % src.length] as number;
    return out;
  };
  const I = Buffer.concat([fill(salt), fill(pw)]);
  const D = Buffer.alloc(v, 3);
  let a = createHash(hash).update(D).update(I).digest();
  for (let i = 1; i < iterations; i++) a = createHash(hash).update(a).digest();
  return a.subarray(0, u);
}

export function isDefaultPasswordPkcs12(bytes: Uint8Array, password = "notasecret"): boolean {
  const pfx = readTlv(bytes, 0, bytes.length);
  if (pfx?.tag !== 0x30) return false;
  const [version, authSafe, macData] = children(bytes, pfx);
  if (!version || !authSafe || !macData || version.tag !== 0x02) return false;
  // authSafe ContentInfo: SEQUENCE { OID data, [0] { OCTET STRING content } }
  const [ctype, explicit] = children(bytes, authSafe);
  if (!ctype || !explicit || ctype.tag !== 0x06 || explicit.tag !== 0xa0) return false;
  const [octets] = children(bytes, explicit);
  if (octets?.tag !== 0x04) return false;
  // MacData: SEQUENCE { DigestInfo { AlgorithmIdentifier, OCTET STRING }, salt, iterations }
  const [digestInfo, salt, iter] = children(bytes, macData);
  if (!digestInfo || !salt || salt.tag !== 0x04) return false;
  const [alg, digest] = children(bytes, digestInfo);
  if (!alg || !digest || digest.tag !== 0x04) return false;
  const [oid] = children(bytes, alg);
  if (oid?.tag !== 0x06) return false;
  const h = HASHES[hex(bytes, oid)];
  if (!h) return false;
  let iterations = 1;
  if (iter) {
    if (iter.tag !== 0x02 || iter.end - iter.start > 4) return false;
    iterations = 0;
    for (let i = iter.start; i < iter.end; i++)
      iterations = iterations * 256 + (bytes[i] as number);
  }
  if (iterations < 1 || iterations > 10_000) return false;
  const key = pkcs12Kdf(
    h.name,
    h.v,
    h.u,
    password,
    bytes.subarray(salt.start, salt.end),
    iterations,
  );
  const mac = createHmac(h.name, key).update(bytes.subarray(octets.start, octets.end)).digest();
  return mac.equals(Buffer.from(bytes.subarray(digest.start, digest.end)));
}
