import { Readable, Writable } from "node:stream";
import type { CliIo } from "../src/cli.ts";

/** Captures stdout/stderr of an in-process CLI run. */
export function capture(stdinText?: string, cwd?: string) {
  const out: string[] = [];
  const err: string[] = [];
  const sink = (into: string[]) =>
    new Writable({
      write(chunk, _enc, cb) {
        into.push(String(chunk));
        cb();
      },
    });
  const io: CliIo = { stdout: sink(out), stderr: sink(err), env: { HOME: "/nonexistent-home" } };
  if (stdinText !== undefined) io.stdin = Readable.from([stdinText]);
  if (cwd !== undefined) io.cwd = cwd;
  return { io, out: () => out.join(""), err: () => err.join("") };
}
