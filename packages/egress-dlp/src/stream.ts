import type { Finding, ScanResult } from "./scan.ts";

/**
 * Incremental scanning with carry-over: each scanned piece is scanned together with the last
 * `carry` characters of what came before, so a secret (or a phrase pair) split across writes is
 * still found. Findings carry absolute offsets and are reported once.
 *
 * Small writes are collected until `minScan` characters are pending (or `flush()`/`end()` is
 * called), so the cost per character is about the same whatever the write size: every character
 * is scanned at most 1 + carry/minScan times (with minScan 4096 and the default carry, 5 times;
 * 1-character writes then cost within a small factor of 64 KiB writes instead of thousands of
 * times more). The price: a write shorter than `minScan` is reported when enough text has
 * followed it, or at `flush()`. The default, minScan 0, scans every write at once.
 * The dedupe set only keeps findings that can still be seen again (those ending in the tail).
 */

export interface TextScanner {
  scan(text: string, surface?: string): ScanResult;
}

export interface StreamScanner {
  /** Scans one more chunk; returns findings not reported before. */
  write(chunk: string | Uint8Array): Finding[];
  /** Scans what is pending now, however short, and returns its findings. */
  flush(): Finding[];
  /** Flushes the decoder and returns any last findings. */
  end(): Finding[];
  /** True once any blocking finding has been reported. */
  readonly blocked: boolean;
  /** Characters received so far (scanned or pending). */
  readonly offset: number;
  /** Characters received but not scanned yet (less than `minScan`). */
  readonly pending: number;
}

export interface StreamOptions {
  surface?: string;
  /** Characters kept from previous chunks. Default 16 384 (longer than every token rule and variant window). */
  carry?: number;
  /**
   * Characters collected before a scan runs. Default 0: every write is scanned at once (what a
   * caller that forwards each write right after scanning it needs). Set it (e.g. min(4096,
   * carry / 2)) to make small writes cost about the same per character as large ones, and call
   * `flush()` where text must not wait.
   */
  minScan?: number;
}

export function createStreamScanner(
  scanner: TextScanner,
  options: StreamOptions = {},
): StreamScanner {
  const surface = options.surface ?? "body";
  const carry = options.carry ?? 16_384;
  const minScan = options.minScan ?? 0;
  let pending = "";
  let received = 0;
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

  function flush(): Finding[] {
    const text = pending;
    pending = "";
    return feed(text);
  }

  return {
    write(chunk) {
      const text = typeof chunk === "string" ? chunk : decoder.decode(chunk, { stream: true });
      received += text.length;
      pending += text;
      return pending.length >= minScan ? flush() : [];
    },
    flush,
    end() {
      const last = decoder.decode();
      received += last.length;
      pending += last;
      return flush();
    },
    get blocked() {
      return blocked;
    },
    get offset() {
      return received;
    },
    get pending() {
      return pending.length;
    },
  };
}
