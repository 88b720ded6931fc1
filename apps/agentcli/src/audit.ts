/**
 * The NDJSON audit log: one line per event (run start and end, each model call, each tool call).
 * It records names, sizes, decisions and timings, never tool output, never environment values;
 * command lines pass through the Redactor first. The file is created 0600 and appended to.
 */
import { closeSync, mkdirSync, openSync, writeSync } from "node:fs";
import { dirname } from "node:path";

export type AuditEvent = Record<string, unknown> & { event: string };

export class AuditLog {
  readonly path: string;
  #fd: number | undefined;

  constructor(path: string) {
    this.path = path;
  }

  write(ev: AuditEvent): void {
    if (this.#fd === undefined) {
      mkdirSync(dirname(this.path), { recursive: true, mode: 0o700 });
      this.#fd = openSync(this.path, "a", 0o600);
    }
    writeSync(this.#fd, `${JSON.stringify({ ts: new Date().toISOString(), ...ev })}\n`);
  }

  close(): void {
    if (this.#fd !== undefined) closeSync(this.#fd);
    this.#fd = undefined;
  }
}

/** `<home>/audit/agentcli-YYYYMMDD.ndjson` (UTC date). */
export function defaultAuditPath(home: string, now = new Date()): string {
  const d = now.toISOString().slice(0, 10).replaceAll("-", "");
  return `${home}/audit/agentcli-${d}.ndjson`;
}
