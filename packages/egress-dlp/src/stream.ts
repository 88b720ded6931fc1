import type { Finding, ScanResult } from "./scan.ts";

/**
 * Incremental scanning with carry-over: each chunk is scanned together with the last `carry`
 * characters of what came before, so a secret (or a phrase pair) split across chunks is still
 * found. Findings carry absolute offsets and are reported once.
 *
 * Bound: every character is scanned at most 1 + carry/chunk times; the dedupe set only keeps
 * findings that can still be seen again (those ending inside the carried tail).
 */

export interface TextScanner {
  scan(text: string, surface?: string): ScanResult;
}

export interface StreamScanner {
  /** Scans one more chunk; returns findings not reported before. */
  write(chunk: string | Uint8Array): Finding[];
  /** Flushes the decoder and returns any last findings. */
  end(): Finding[];
  /** True once any blocking finding has been reported. */
  readonly blocked: boolean;
  /** Characters consumed so far. */
  readonly offset: number;
}

export interface StreamOptions {
  surface?: string;
  /** Characters kept from previous chunks. Default 16 384 (longer than every token rule and variant window). */
  carry?: number;
}

export function createStreamScanner(
  scanner: TextScanner,
  options: StreamOptions = {},
): StreamScanner {
  const surface = options.surface ?? "body";
  const carry = options.carry ?? 16_384;
  const decoder = new TextDecoder("utf-8");
  let tail = "";
  let tailStart = 0; // absolute offset of tail[0]
  let consumed = 0;
  let blocked = false;
  let seen = new Map<string, number>(); // key -> absolute end

  function feed(text: string): Finding[] {
    if (text.length === 0) return [];
    const window = tail + text;
    const base = tailStart;
    const result = scanner.scan(window, surface);
    const fresh: Finding[] = [];
    for (const f of result.findings) {
      const abs = { ...f, start: f.start + base, end: f.end + base };
      // a budget finding is about this window, not a position: always report it
      const key = `${f.detector}\u0000${f.rule}\u0000${abs.start}\u0000${abs.end}`;
      if (f.detector !== "budget" && seen.has(key)) continue;
      seen.set(key, abs.end);
      fresh.push(abs);
      if (abs.severity === "block") blocked = true;
    }
    consumed += text.length;
    const keep = Math.min(carry, window.length);
    tail = window.slice(window.length - keep);
    tailStart = consumed - keep;
    if (seen.size > 1024) {
      const next = new Map<string, number>();
      for (const [k, end] of seen) if (end > tailStart) next.set(k, end);
      seen = next;
    }
    return fresh;
  }

  return {
    write(chunk) {
      return feed(typeof chunk === "string" ? chunk : decoder.decode(chunk, { stream: true }));
    },
    end() {
      return feed(decoder.decode());
    },
    get blocked() {
      return blocked;
    },
    get offset() {
      return consumed;
    },
  };
}
