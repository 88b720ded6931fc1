import { type ChildProcess, spawn } from "node:child_process";
import { accessSync, constants } from "node:fs";
import type { Socket } from "node:net";
import { fileURLToPath } from "node:url";

/**
 * The native relay for plain CONNECT tunnels (src/relay.c, compiled into dist/egress-relay by the
 * package build). A tunnel starts in JS (no process per idle tunnel); once it has carried
 * `afterBytes` it is handed over: both sockets' descriptors go to a relay process as its fds 3 and
 * 4, which moves the rest with splice(2) and no user-space copy, and reports the bytes it moved
 * when it exits. The proxy keeps a handle in the session, so cutoff, route replacement and
 * unregister close the tunnel through it (SIGTERM: the relay shuts both sockets down at once).
 */

export interface NativeRelayConfig {
  /** Path of the relay executable; undefined = the JS relay only. */
  binary: string | undefined;
  /** A tunnel is handed to the native relay once it has carried this many bytes (both directions). */
  afterBytes: number;
  /** Tunnels handed over so far. */
  handedOff: number;
}

/** Default hand-over point: see the README (bench (a): set-up cost against the bytes it saves). */
export const NATIVE_RELAY_AFTER_BYTES = 4 * 1024 * 1024;

/** Where the package build puts the relay (the same path from src/ and from dist/). */
export function bundledRelayPath(): string {
  return fileURLToPath(new URL("../dist/egress-relay", import.meta.url));
}

let warned = false;

/** The relay to use: the given or bundled binary when it is executable, else undefined (with one warning). */
export function locateRelay(binary: string | undefined): string | undefined {
  const path = binary ?? bundledRelayPath();
  try {
    accessSync(path, constants.X_OK);
    return path;
  } catch {
    if (!warned) {
      warned = true;
      process.emitWarning(
        `no native tunnel relay at ${path}: plain CONNECT tunnels stay in the JS relay (slower for bulk transfers); build the package with a C compiler (cc) to get it`,
        { code: "BOTTLEKIT_NO_NATIVE_RELAY" },
      );
    }
    return undefined;
  }
}

/** A tunnel running in the relay process, as the session tracks it (closing it = cutoff). */
export class RelayHandle {
  private exited = false;
  constructor(private readonly child: ChildProcess) {
    child.once("exit", () => {
      this.exited = true;
    });
  }
  /** Closes the tunnel at once (both sockets shut down by the relay). */
  destroy(): void {
    if (!this.exited) this.child.kill("SIGTERM");
  }
}

/**
 * Starts the relay on two sockets. Returns undefined when the process could not be started (the
 * caller keeps relaying in JS). `prefix`: bytes already read from the agent, sent upstream first.
 * `onExit` gets the bytes the relay moved (agent → upstream, upstream → agent).
 */
export function startRelay(
  binary: string,
  agent: Socket,
  upstream: Socket,
  prefix: Buffer,
  onExit: (moved: { toUpstream: number; toAgent: number }) => void,
): RelayHandle | undefined {
  let child: ChildProcess;
  try {
    child = spawn(binary, [], {
      stdio: [prefix.length > 0 ? "pipe" : "ignore", "pipe", "ignore", agent, upstream],
      windowsHide: true,
    });
  } catch {
    return undefined;
  }
  if (child.pid === undefined) {
    child.once("error", () => undefined);
    return undefined;
  }
  child.once("error", () => undefined);
  if (prefix.length > 0) {
    child.stdin?.once("error", () => undefined);
    child.stdin?.end(prefix);
  }
  let out = "";
  child.stdout?.setEncoding("latin1");
  child.stdout?.on("data", (s: string) => {
    if (out.length < 64) out += s;
  });
  child.once("close", () => {
    const m = /^(\d+) (\d+)\n/.exec(out);
    onExit({
      toUpstream: m ? Number(m[1]) : 0,
      toAgent: m ? Number(m[2]) : 0,
    });
  });
  return new RelayHandle(child);
}
