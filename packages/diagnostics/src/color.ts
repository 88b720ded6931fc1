import { styleText } from "node:util";

export type Env = Readonly<Record<string, string | undefined>>;
export type StyleFormat = Parameters<typeof styleText>[0];

/**
 * Whether to colour what is written to `stream`: never with NO_COLOR (any non-empty value) or
 * TERM=dumb; always with FORCE_COLOR (non-empty, not "0"); otherwise only on a TTY.
 */
export function shouldColor(stream: NodeJS.WritableStream, env: Env = process.env): boolean {
  const noColor = env["NO_COLOR"];
  if (noColor !== undefined && noColor !== "") return false;
  const force = env["FORCE_COLOR"];
  if (force !== undefined && force !== "" && force !== "0") return true;
  if (env["TERM"] === "dumb") return false;
  return (stream as { isTTY?: boolean }).isTTY === true;
}

/** `text` styled for `stream` when {@link shouldColor} says so, otherwise unchanged. */
export function paint(
  format: StyleFormat,
  text: string,
  stream: NodeJS.WritableStream,
  env: Env = process.env,
): string {
  return shouldColor(stream, env) ? styleText(format, text, { validateStream: false }) : text;
}

export type Painter = (format: StyleFormat, text: string) => string;

/** A painter bound to one stream's colour decision (decided once). */
export function painter(stream: NodeJS.WritableStream, env: Env = process.env): Painter {
  if (!shouldColor(stream, env)) return (_format, text) => text;
  return (format, text) => styleText(format, text, { validateStream: false });
}
