import { styleText } from "node:util";

type Style = Parameters<typeof styleText>[0];

/**
 * Whether to colour output written to `stream`: never with NO_COLOR (any non-empty value) or
 * TERM=dumb; always with FORCE_COLOR (non-empty, not "0"); otherwise only on a TTY.
 */
export function colorEnabled(
  stream: NodeJS.WritableStream,
  env: Readonly<Record<string, string | undefined>>,
): boolean {
  if (env["NO_COLOR"] !== undefined && env["NO_COLOR"] !== "") return false;
  const force = env["FORCE_COLOR"];
  if (force !== undefined && force !== "" && force !== "0") return true;
  if (env["TERM"] === "dumb") return false;
  return (stream as { isTTY?: boolean }).isTTY === true;
}

export type Paint = (style: Style, text: string) => string;

/** A painter bound to one stream's colour decision. */
export function painter(
  stream: NodeJS.WritableStream,
  env: Readonly<Record<string, string | undefined>>,
): Paint {
  if (!colorEnabled(stream, env)) return (_style, text) => text;
  return (style, text) => styleText(style, text, { validateStream: false });
}
