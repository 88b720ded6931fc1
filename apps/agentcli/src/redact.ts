/**
 * Redaction for what agentcli records (audit log, --json): egress-dlp's scanner with the known
 * secrets of this run (the gateway or API key, and every environment value whose name says it is
 * a credential) plus its token patterns. Found ranges become `[REDACTED:<rule>]`.
 */
import type { Scanner } from "@bottlekit/egress-dlp";

const SECRET_NAME = /KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL|AUTH|COOKIE|SESSION/i;

export class Redactor {
  readonly #scanner: Scanner;
  readonly #known: { name: string; value: string }[];

  private constructor(scanner: Scanner, known: { name: string; value: string }[]) {
    this.#scanner = scanner;
    this.#known = known;
  }

  static async create(env: NodeJS.ProcessEnv, extra: string[] = []): Promise<Redactor> {
    const known: { name: string; value: string }[] = [];
    for (const [name, value] of Object.entries(env)) {
      if (
        value !== undefined &&
        value.length >= 8 &&
        (SECRET_NAME.test(name) || extra.includes(name))
      ) {
        known.push({ name, value });
      }
    }
    const { createScanner } = await import("@bottlekit/egress-dlp");
    return new Redactor(createScanner({ knownSecrets: known, maxMs: 500 }), known);
  }

  /** The text with every secret replaced; fails closed (everything replaced) when the scan is over budget. */
  text(text: string): string {
    if (text.length === 0) return text;
    let out = text;
    for (const k of this.#known) out = out.split(k.value).join(`[REDACTED:${k.name}]`);
    const r = this.#scanner.scan(out, "audit");
    if (r.findings.some((f) => f.detector === "budget")) return "[REDACTED:unscannable]";
    const spans = r.findings.filter((f) => f.end > f.start).sort((a, b) => b.start - a.start);
    let lastStart = Number.POSITIVE_INFINITY;
    for (const f of spans) {
      const end = Math.min(f.end, lastStart);
      if (end <= f.start) continue;
      out = `${out.slice(0, f.start)}[REDACTED:${f.rule}]${out.slice(end)}`;
      lastStart = f.start;
    }
    return out;
  }

  argv(argv: readonly string[]): string[] {
    return argv.map((a) => this.text(a));
  }
}
