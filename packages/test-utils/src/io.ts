import { Writable } from "node:stream";

/** The streams and environment an in-process CLI `run(argv, io)` writes to and reads. */
export interface CapturedIo {
  io: { stdout: Writable; stderr: Writable; env: NodeJS.ProcessEnv };
  /** Everything written to stdout so far. */
  out: () => string;
  /** Everything written to stderr so far. */
  err: () => string;
}

/**
 * Captures what a CLI writes, for tests that call a bin's `run(argv, io)` in process.
 * The environment is exactly `env` (nothing is inherited from the test process).
 */
export function captureIo(env: NodeJS.ProcessEnv = {}): CapturedIo {
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
    io: { stdout: sink(out), stderr: sink(err), env },
    out: () => out.join(""),
    err: () => err.join(""),
  };
}
