/**
 * A server-sent-events decoder: feed it text as it arrives, get whole events back. Handles
 * `\n`, `\r\n` and `\r` line ends, multi-line `data:`, comments and a frame split anywhere.
 * Linear in the input: every character is looked at a bounded number of times.
 */
export interface SseEvent {
  event: string | undefined;
  data: string;
}

export class SseDecoder {
  #buffer = "";
  #data: string[] = [];
  #event: string | undefined;
  #sawCr = false;

  /** Feeds a chunk; returns the events it completed. */
  push(chunk: string): SseEvent[] {
    const out: SseEvent[] = [];
    let text = chunk;
    if (this.#sawCr && text.startsWith("\n")) text = text.slice(1);
    this.#sawCr = false;
    let start = 0;
    for (let i = 0; i < text.length; i++) {
      const c = text.charCodeAt(i);
      if (c !== 10 && c !== 13) continue;
      const line = this.#buffer + text.slice(start, i);
      this.#buffer = "";
      if (c === 13) {
        if (i + 1 < text.length) {
          if (text.charCodeAt(i + 1) === 10) i++;
        } else this.#sawCr = true;
      }
      start = i + 1;
      this.#line(line, out);
    }
    this.#buffer += text.slice(start);
    return out;
  }

  /** Ends the stream: an unterminated last event is dispatched (as browsers do not, but servers that forget the blank line exist). */
  end(): SseEvent[] {
    const out: SseEvent[] = [];
    if (this.#buffer.length > 0) {
      const line = this.#buffer;
      this.#buffer = "";
      this.#line(line, out);
    }
    this.#line("", out);
    return out;
  }

  #line(line: string, out: SseEvent[]): void {
    if (line.length === 0) {
      if (this.#data.length > 0) out.push({ event: this.#event, data: this.#data.join("\n") });
      this.#data = [];
      this.#event = undefined;
      return;
    }
    if (line.startsWith(":")) return;
    const colon = line.indexOf(":");
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "data") this.#data.push(value);
    else if (field === "event") this.#event = value;
  }
}
