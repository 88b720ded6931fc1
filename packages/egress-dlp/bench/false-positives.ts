/**
 * False positives on text that holds no secrets (issue 17): every `.js` file under the
 * repository's node_modules, the lockfiles, and base64 images (PNG files generated here: noise,
 * gradients and stripes, 1 KiB to 512 KiB, as data URLs in chat request bodies). Prints the
 * number of findings per detector and rule, and the files with findings.
 *
 * Run from the package: `pnpm bench:fp` (the repository root is two levels up).
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative, resolve } from "node:path";
import { deflateSync } from "node:zlib";
import { createScanner, type Finding } from "../src/scan.ts";
import { knownSecrets, rng } from "./corpus.ts";

const root = resolve(process.argv[2] ?? "../..");
const out = (s: string) => process.stdout.write(`${s}\n`);
const scanner = createScanner({ knownSecrets: knownSecrets(100), maxMs: 60_000 });

function* walk(dir: string, match: (name: string) => boolean): Generator<string> {
  let entries: import("node:fs").Dirent[];
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return;
  }
  for (const e of entries) {
    const p = join(dir, e.name);
    if (e.isDirectory()) {
      if (e.name === ".git") continue;
      yield* walk(p, match);
    } else if (e.isFile() && match(e.name)) yield p;
  }
}

interface Tally {
  files: number;
  bytes: number;
  byRule: Map<string, number>;
  flagged: string[];
}
const tally = (): Tally => ({ files: 0, bytes: 0, byRule: new Map(), flagged: [] });

function record(t: Tally, name: string, text: string): void {
  t.files++;
  t.bytes += text.length;
  const found: Finding[] = scanner.scan(text, name).findings;
  for (const f of found) {
    const k = `${f.detector}/${f.rule}`;
    t.byRule.set(k, (t.byRule.get(k) ?? 0) + 1);
  }
  if (found.length > 0) {
    t.flagged.push(`${name} (${[...new Set(found.map((f) => f.rule))].join(", ")})`);
  }
}

function report(label: string, t: Tally): void {
  const total = [...t.byRule.values()].reduce((a, b) => a + b, 0);
  out(
    `${label}: ${t.files} files, ${(t.bytes / 1024 / 1024).toFixed(1)} MiB, ${total} findings in ${t.flagged.length} files (${((100 * t.flagged.length) / Math.max(1, t.files)).toFixed(2)}% of files)`,
  );
  for (const [k, v] of [...t.byRule.entries()].sort((a, b) => b[1] - a[1])) out(`  ${k}: ${v}`);
  for (const f of t.flagged.slice(0, 40)) out(`    ${f}`);
  if (t.flagged.length > 40) out(`    … and ${t.flagged.length - 40} more files`);
}

// --- node_modules/**/*.js ---------------------------------------------------------------------
const js = tally();
const started = performance.now();
for (const file of walk(join(root, "node_modules"), (n) => n.endsWith(".js"))) {
  const size = statSync(file).size;
  if (size > 16 * 1024 * 1024) continue;
  record(js, relative(root, file), readFileSync(file, "utf8"));
}
report("node_modules/**/*.js", js);
out(`  (${((performance.now() - started) / 1000).toFixed(1)} s)`);

// --- lockfiles ----------------------------------------------------------------------------------
const locks = tally();
const LOCKS = new Set(["pnpm-lock.yaml", "package-lock.json", "yarn.lock", "npm-shrinkwrap.json"]);
for (const file of walk(root, (n) => LOCKS.has(n))) {
  record(locks, relative(root, file), readFileSync(file, "utf8"));
}
report("lockfiles", locks);

// --- base64 images -------------------------------------------------------------------------------
let crcTable: Int32Array | undefined;
function crc32(bytes: Uint8Array): number {
  if (!crcTable) {
    crcTable = new Int32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c;
    }
  }
  let crc = -1;
  for (const b of bytes) crc = (crcTable[(crc ^ b) & 0xff] as number) ^ (crc >>> 8);
  return (crc ^ -1) >>> 0;
}
function chunk(type: string, data: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, "latin1");
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), data])), 0);
  return Buffer.concat([head, data, crc]);
}
/** A valid RGB PNG of `w`×`h` pixels from a pixel function. */
function png(w: number, h: number, pixel: (x: number, y: number) => [number, number, number]) {
  const raw = Buffer.alloc(h * (1 + 3 * w));
  for (let y = 0; y < h; y++) {
    raw[y * (1 + 3 * w)] = 0;
    for (let x = 0; x < w; x++) {
      const [r, g, b] = pixel(x, y);
      const o = y * (1 + 3 * w) + 1 + 3 * x;
      raw[o] = r;
      raw[o + 1] = g;
      raw[o + 2] = b;
    }
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr[8] = 8;
  ihdr[9] = 2;
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk("IHDR", ihdr),
    chunk("IDAT", deflateSync(raw)),
    chunk("IEND", Buffer.alloc(0)),
  ]);
}
const images = tally();
const r = rng(42);
const kinds: Record<string, (x: number, y: number) => [number, number, number]> = {
  noise: () => [Math.floor(r() * 256), Math.floor(r() * 256), Math.floor(r() * 256)],
  gradient: (x, y) => [x & 255, y & 255, (x + y) & 255],
  stripes: (x, y) => ((x >> 3) % 2 === (y >> 3) % 2 ? [250, 250, 250] : [20, 40, 200]),
  "noisy photo": (x, y) => {
    const n = Math.floor(r() * 24);
    return [(x + n) & 255, (y * 2 + n) & 255, (128 + n) & 255];
  },
};
for (const [kind, pixel] of Object.entries(kinds)) {
  for (const side of [16, 64, 128, 256, 400]) {
    const b64 = png(side, side, pixel).toString("base64");
    const body = JSON.stringify({
      model: "claude-sonnet-4",
      messages: [
        {
          role: "user",
          content: [
            { type: "image", source: { type: "base64", media_type: "image/png", data: b64 } },
            { type: "text", text: "What is in this picture?" },
            { type: "image_url", image_url: { url: `data:image/png;base64,${b64}` } },
          ],
        },
      ],
    });
    record(images, `${kind} ${side}x${side} png (${b64.length} base64 chars)`, body);
  }
}
report("base64 PNG images in chat bodies", images);
