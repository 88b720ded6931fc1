import { Readable, Writable } from "node:stream";

/** The streams and environment an in-process CLI `run(argv, io)` writes to and reads. */
export interface CapturedIo {
  io: { stdout: Writable; stderr: Writable; env: NodeJS.ProcessEnv; stdin: Readable };
  /** Everything written to stdout so far. */
  out: () => string;
  /** Everything written to stderr so far. */
  err: () => string;
}

/**
 * Captures what a CLI writes, for tests that call a bin's `run(argv, io)` in process.
 * The environment is exactly `env` (nothing is inherited from the test process); stdin yields
 * `options.stdin` (empty by default) and is not a TTY.
 */
export function captureIo(
  env: NodeJS.ProcessEnv = {},
  options: { stdin?: string | Uint8Array } = {},
): CapturedIo {
  const out: string[] = [];
  const err: string[] = [];
  const sink = (into: string[]) =>
    new Writable({
      write(chunk, _encoding, callback) {
        into.push(String(chunk));
        callback();
      },
    });
  return {
    io: {
      stdout: sink(out),
      stderr: sink(err),
      env,
      stdin: Readable.from([Buffer.from(options.stdin ?? "")]),
    },
    out: () => out.join(""),
    err: () => err.join(""),
  };
}
