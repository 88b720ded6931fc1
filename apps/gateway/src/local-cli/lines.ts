/**
 * What the local-CLI event readers share: cutting a CLI's JSON-lines output (split anywhere) into
 * whole lines, in time linear in the output, and parsing each line as one JSON object.
 */
import type { IrEvent } from "../translate/ir.ts";

export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Reads JSON-lines output chunk by chunk; a subclass turns each object into IR events. */
export abstract class JsonLinesReader {
  /** The unfinished last line. */
  private pending = "";
  /** Set once the CLI's final event was read. */
  done = false;
  lastError: string | undefined;

  push(chunk: string): IrEvent[] {
    const out: IrEvent[] = [];
    let from = 0;
    for (let i = chunk.indexOf("\n"); i !== -1; i = chunk.indexOf("\n", from)) {
      // Only the first line of a chunk joins what came before: each byte is copied at most twice.
      const line = (from === 0 ? this.pending + chunk.slice(0, i) : chunk.slice(from, i)).trim();
      if (from === 0) this.pending = "";
      from = i + 1;
      if (line) out.push(...this.parse(line));
    }
    this.pending += chunk.slice(from);
    return out;
  }

  private parse(line: string): IrEvent[] {
    let e: unknown;
    try {
      e = JSON.parse(line);
    } catch {
      return []; // not an event (the CLI printed something else): nothing for the client
    }
    return isRecord(e) ? this.event(e) : [];
  }

  /** The IR events one JSON object of the CLI's output stands for. */
  protected abstract event(e: Record<string, unknown>): IrEvent[];
}
