/**
 * Removes, from an OpenAI chat-completions stream, what the gateway added when it asked the
 * upstream for usage on the client's behalf: the final `choices: []` usage chunk and the
 * `"usage":null` field of every other chunk. The client sees the stream it would have got from
 * the provider without `stream_options.include_usage`.
 *
 * Linear in the stream: each byte is decoded once and searched for a frame boundary once (the
 * search resumes where the previous chunk stopped). Frames are split on a blank line.
 */
export class UsageStripper {
  private readonly decoder = new TextDecoder("utf-8");
  private pending = "";

  /** Feeds one upstream chunk; returns the text to forward now (possibly empty). */
  push(chunk: Uint8Array): string {
    this.pending += this.decoder.decode(chunk, { stream: true });
    let out = "";
    let start = 0;
    for (;;) {
      const end = this.pending.indexOf("\n\n", start);
      if (end === -1) break;
      out += stripFrame(this.pending.slice(start, end + 2));
      start = end + 2;
    }
    this.pending = this.pending.slice(start);
    return out;
  }

  /** Flushes whatever is left when the upstream ends (an unterminated last frame passes as is). */
  end(): string {
    const rest = this.pending + this.decoder.decode();
    this.pending = "";
    return rest.length > 0 ? stripFrame(rest) : "";
  }
}

/** One frame in, the frame to forward out ("" to drop it). */
export function stripFrame(frame: string): string {
  if (frame.includes('"usage":{') && frame.includes('"choices":[]')) {
    // Only drop it when it really is the usage-only chunk.
    const data = frame.replace(/^data: ?/m, "").trim();
    try {
      const parsed = JSON.parse(data) as { choices?: unknown[]; usage?: unknown };
      if (Array.isArray(parsed.choices) && parsed.choices.length === 0 && parsed.usage) return "";
    } catch {
      // Not JSON: forward unchanged.
    }
    return frame;
  }
  // Inside a JSON string a quote is always escaped, so this sequence can only be the field.
  return frame.includes(',"usage":null') ? frame.replaceAll(',"usage":null', "") : frame;
}
