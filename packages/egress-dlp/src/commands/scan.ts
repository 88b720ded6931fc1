import { readFile } from "node:fs/promises";
import { EgressDlpError } from "../errors.ts";
import { createInjectionScanner } from "../injection.ts";
import type { KnownSecret } from "../known.ts";
import { createScanner, type Finding } from "../scan.ts";

export interface ScanCommandOptions {
  inbound?: boolean;
  knownSecretEnv?: string[];
  json?: boolean;
}

export interface ScanIo {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  env: NodeJS.ProcessEnv;
  stdin?: NodeJS.ReadableStream;
}

async function readStdin(stdin: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stdin)
    chunks.push(typeof chunk === "string" ? Buffer.from(chunk) : (chunk as Buffer));
  return Buffer.concat(chunks);
}

function decode(bytes: Buffer): string {
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    return bytes.toString("latin1");
  }
}

function lineCol(text: string, offset: number): string {
  let line = 1;
  let last = -1;
  for (let i = text.indexOf("\n"); i !== -1 && i < offset; i = text.indexOf("\n", i + 1)) {
    line++;
    last = i;
  }
  return `${line}:${offset - last}`;
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
  const inputs = files.length === 0 ? ["-"] : files;
  const findings: (Finding & { text: string })[] = [];
  for (const file of inputs) {
    let bytes: Buffer;
    if (file === "-") {
      bytes = await readStdin(io.stdin ?? process.stdin);
    } else {
      try {
        bytes = await readFile(file);
      } catch (error) {
        throw new EgressDlpError(
          "E_INVALID_INPUT",
          `cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? "error"}`,
          {
            hint: "pass readable files, or - for stdin",
          },
        );
      }
    }
    const text = decode(bytes);
    for (const f of scanner.scan(text, file === "-" ? "stdin" : file).findings)
      findings.push({ ...f, text });
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
  return blocked ? 3 : 0;
}
