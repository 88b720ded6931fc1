import { randomBytes } from "node:crypto";
import { readlinkSync } from "node:fs";
import { hostname } from "node:os";

/** Where this process runs, as recorded on its owner registration. */
export interface LocalIdentity {
  host: string;
  /**
   * The pid namespace (`pid:[4026531836]` on Linux, "" elsewhere). Two containers on one machine
   * can share a host name, but a pid is only meaningful inside its own namespace.
   */
  pidns: string;
  pid: number;
}

let cached: LocalIdentity | undefined;

export function localIdentity(): LocalIdentity {
  if (cached !== undefined && cached.pid === process.pid) return cached;
  let pidns = "";
  try {
    pidns = readlinkSync("/proc/self/ns/pid");
  } catch {
    // not Linux, or /proc is not mounted
  }
  cached = { host: hostname().slice(0, 200) || "localhost", pidns, pid: process.pid };
  return cached;
}

/** A fresh owner id: `<host>/<pid>/<random>`. */
export function newOwnerId(): string {
  const me = localIdentity();
  return `${me.host}/${me.pid}/${randomBytes(6).toString("hex")}`;
}

/**
 * True only when `owner` ran in this host's pid namespace and its process no longer exists.
 * Any doubt (another host, another namespace, a pid now used by someone else, no permission to
 * signal) answers false: the owner's lease decides instead.
 */
export function isLocalProcessGone(owner: { host: string; pidns: string; pid: number }): boolean {
  const me = localIdentity();
  if (owner.host !== me.host || owner.pidns !== me.pidns) return false;
  if (me.pidns === "" && process.platform === "linux") return false;
  if (owner.pid === me.pid || !Number.isSafeInteger(owner.pid) || owner.pid <= 0) return false;
  try {
    process.kill(owner.pid, 0);
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "ESRCH";
  }
}
