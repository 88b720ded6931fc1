const guarded = new WeakSet<NodeJS.WritableStream>();

/**
 * Makes writes to `streams` (default: process stdout and stderr) safe when the reader goes away,
 * as with `cmd | head`: an EPIPE ends the process quietly with exit code 0 instead of an
 * unhandled 'error' event and a stack. Other stream errors are rethrown. Idempotent.
 */
export function guardPipes(
  streams: readonly NodeJS.WritableStream[] = [process.stdout, process.stderr],
  onClosed: () => void = () => process.exit(process.exitCode ?? 0),
): void {
  for (const stream of streams) {
    if (guarded.has(stream)) continue;
    guarded.add(stream);
    stream.on("error", (error: NodeJS.ErrnoException) => {
      if (error.code === "EPIPE" || error.code === "ERR_STREAM_DESTROYED") {
        onClosed();
        return;
      }
      throw error;
    });
  }
}

/** Writes one JSON document and a newline (the `--json` contract: stdout carries exactly this). */
export function writeJson(stream: NodeJS.WritableStream, value: unknown, pretty = true): void {
  stream.write(`${JSON.stringify(value, null, pretty ? 2 : undefined)}\n`);
}
