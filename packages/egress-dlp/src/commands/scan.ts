import { open } from "node:fs/promises";
import { lineColAt } from "@bottlekit/diagnostics";
import { decodeUtf16 } from "../decode.ts";
import { EgressDlpError } from "../errors.ts";
import { createInjectionScanner } from "../injection.ts";
import type { KnownSecret } from "../known.ts";
import { budgetFinding, createScanner, type Finding } from "../scan.ts";

export interface ScanCommandOptions {
  inbound?: boolean;
  knownSecretEnv?: string[];
  json?: boolean;
  /** Largest file scanned whole, in bytes (a string from the command line). Default 16 MiB. */
  maxBytes?: string | number;
}

const DEFAULT_MAX_BYTES = 16 * 1024 * 1024;

export interface ScanIo {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  env: NodeJS.ProcessEnv;
  stdin?: NodeJS.ReadableStream;
}

/** Reads stdin up to `cap` bytes; `total` is how much there was. */
async function readStdin(
  stdin: NodeJS.ReadableStream,
  cap: number,
): Promise<{ bytes: Buffer; total: number }> {
  const chunks: Buffer[] = [];
  let kept = 0;
  let total = 0;
  for await (const chunk of stdin) {
    const b = typeof chunk === "string" ? Buffer.from(chunk) : (chunk as Buffer);
    total += b.length;
    if (kept < cap) {
      const part = b.subarray(0, cap - kept);
      chunks.push(part);
      kept += part.length;
    }
  }
  return { bytes: Buffer.concat(chunks), total };
}

/** Reads a file up to `cap` bytes without loading the rest. */
async function readCapped(file: string, cap: number): Promise<{ bytes: Buffer; total: number }> {
  const handle = await open(file, "r");
  try {
    const { size } = await handle.stat();
    const length = Math.min(size, cap);
    const bytes = Buffer.alloc(length);
    let at = 0;
    while (at < length) {
      const { bytesRead } = await handle.read(bytes, at, length - at, at);
      if (bytesRead === 0) break;
      at += bytesRead;
    }
    return { bytes: bytes.subarray(0, at), total: size };
  } finally {
    await handle.close();
  }
}

/**
 * Text of a file: UTF-16 (with a BOM, or ASCII-range text with NULs in every other byte) is
 * decoded as such; then UTF-8; anything else byte for byte (latin1), so every byte stays visible.
 */
export function decodeFileText(bytes: Buffer): string {
  const units = Math.min(64, bytes.length >> 1);
  let le = 0;
  let be = 0;
  for (let k = 0; k < units; k++) {
    if (bytes[2 * k + 1] === 0 && bytes[2 * k] !== 0) le++;
    else if (bytes[2 * k] === 0 && bytes[2 * k + 1] !== 0) be++;
  }
  const bomLe = bytes[0] === 0xff && bytes[1] === 0xfe;
  const bomBe = bytes[0] === 0xfe && bytes[1] === 0xff;
  if (bomLe || bomBe || (units >= 4 && (le >= units * 0.8 || be >= units * 0.8))) {
    return decodeUtf16(bytes, bomLe || (!bomBe && le >= be) ? "le" : "be");
  }
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    return bytes.toString("latin1");
  }
}

function parseMaxBytes(value: string | number | undefined): number {
  if (value === undefined) return DEFAULT_MAX_BYTES;
  const n = typeof value === "number" ? value : Number(value);
  if (!Number.isSafeInteger(n) || n < 1) {
    throw new EgressDlpError("E_USAGE", `--max-bytes ${String(value)}: not a positive integer`, {
      hint: "pass a size in bytes, e.g. --max-bytes 1048576",
    });
  }
  return n;
}

function lineCol(text: string, offset: number): string {
  const { line, col } = lineColAt(text, offset);
  return `${line}:${col}`;
}

/** `egress-dlp scan [FILE…|-]`: exit 0 clean, 3 when a blocking finding exists, 2 on bad input. */
export async function runScan(
  files: string[],
  options: ScanCommandOptions,
  io: ScanIo,
): Promise<number> {
  const known: KnownSecret[] = [];
  for (const name of options.knownSecretEnv ?? []) {
    const value = io.env[name];
    if (value === undefined || value === "") {
      throw new EgressDlpError(
        "E_USAGE",
        `--known-secret-env ${name}: the environment variable is not set`,
        {
          hint: "export the variable first; secret values are never read from arguments",
        },
      );
    }
    known.push({ name, value });
  }
  const key = io.env.EGRESS_DLP_FINGERPRINT_KEY;
  const scanner = options.inbound
    ? createInjectionScanner(key ? { fingerprintKey: key } : {})
    : createScanner({
        detectors: known.length > 0 ? ["token_patterns", "known_secrets"] : ["token_patterns"],
        knownSecrets: known,
        ...(key ? { fingerprintKey: key } : {}),
      });
  const maxBytes = parseMaxBytes(options.maxBytes);
  const inputs = files.length === 0 ? ["-"] : files;
  const findings: (Finding & { text: string })[] = [];
  /** Files that could not be read: reported, and the others still scanned (exit: the worst). */
  const unreadable: { file: string; code: string }[] = [];
  for (const file of inputs) {
    let read: { bytes: Buffer; total: number };
    try {
      read =
        file === "-"
          ? await readStdin(io.stdin ?? process.stdin, maxBytes)
          : await readCapped(file, maxBytes);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? "error";
      unreadable.push({ file, code });
      io.stderr.write(`egress-dlp: cannot read ${file}: ${code}\n`);
      continue;
    }
    const text = decodeFileText(read.bytes);
    const surface = file === "-" ? "stdin" : file;
    for (const f of scanner.scan(text, surface).findings) findings.push({ ...f, text });
    if (read.total > maxBytes) {
      // scanned up to the cap; the rest was not: fail closed with a blocking finding
      io.stderr.write(
        `egress-dlp: ${surface}: not scanned: too large (${read.total} bytes, cap ${maxBytes}); the first ${maxBytes} bytes were scanned\n`,
      );
      findings.push({ ...budgetFinding(surface, "bytes", text.length), text });
    }
  }
  const blocked = findings.some((f) => f.severity === "block");
  if (options.json) {
    const doc = {
      findings: findings.map(({ detector, rule, surface, start, end, severity, fingerprint }) => ({
        detector,
        rule,
        surface,
        start,
        end,
        severity,
        fingerprint,
      })),
      ...(unreadable.length > 0 ? { unreadable } : {}),
    };
    io.stdout.write(`${JSON.stringify(doc)}\n`);
  } else {
    for (const f of findings) {
      io.stdout.write(
        `${f.surface}:${lineCol(f.text, f.start)}\t${f.severity}\t${f.detector}\t${f.rule}\tfingerprint=${f.fingerprint}\n`,
      );
    }
    io.stderr.write(
      findings.length === 0
        ? "egress-dlp: no findings\n"
        : `egress-dlp: ${findings.length} finding(s), ${blocked ? "blocking" : "warnings only"}\n`,
    );
  }
  if (unreadable.length > 0) {
    io.stderr.write("hint: pass readable files, or - for stdin\n");
  }
  // the worst outcome wins: a blocking finding (3) over an unreadable file (2) over clean (0)
  return blocked ? 3 : unreadable.length > 0 ? 2 : 0;
}
