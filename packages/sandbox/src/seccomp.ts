import { SandboxError } from "./errors.ts";

/**
 * The agent's seccomp filter, assembled here from a readable rule table into classic BPF bytes
 * (`struct sock_filter[]`, 8 bytes per instruction, little-endian) for `bwrap --seccomp FD`.
 * No libseccomp and no binary blob: the bytes are a pure function of the table below, so the
 * filter is reproducible and reviewable.
 *
 * Policy (default allow, a short deny list — the sandbox's other walls are namespaces):
 * - another architecture's ABI (e.g. i386 `int 0x80` on x86_64) → killed;
 * - the x32 ABI (syscall numbers with bit 30 set on x86_64) → EPERM;
 * - `socket(AF_UNIX, …)` → EPERM: a host unix socket (a tmux server's, the controller's) is a way
 *   out of every namespace, since the file system is visible read-only;
 * - `socketpair(AF_UNIX, SOCK_DGRAM, …)` → EPERM: a datagram socket can `sendto()` any named
 *   socket path. Stream socketpairs stay allowed (Python and libuv child processes need them);
 * - `io_uring_setup`, `io_uring_enter`, `io_uring_register` → EPERM: io_uring performs socket
 *   and file operations without passing through the syscall filter.
 */

export type SeccompArch = "x64" | "arm64";

interface ArchTable {
  /** AUDIT_ARCH_* value found in `seccomp_data.arch`. */
  auditArch: number;
  /** Syscall numbers the rules name. */
  nr: {
    socket: number;
    socketpair: number;
    ioUringSetup: number;
    ioUringEnter: number;
    ioUringRegister: number;
  };
  /** x86_64 only: the x32 ABI marker bit. */
  x32Bit?: number;
}

/** Syscall numbers per architecture (from the kernel's syscall tables). */
export const ARCH_TABLES: Readonly<Record<SeccompArch, ArchTable>> = {
  x64: {
    auditArch: 0xc000003e, // AUDIT_ARCH_X86_64
    nr: { socket: 41, socketpair: 53, ioUringSetup: 425, ioUringEnter: 426, ioUringRegister: 427 },
    x32Bit: 0x40000000, // __X32_SYSCALL_BIT
  },
  arm64: {
    auditArch: 0xc00000b7, // AUDIT_ARCH_AARCH64
    nr: {
      socket: 198,
      socketpair: 199,
      ioUringSetup: 425,
      ioUringEnter: 426,
      ioUringRegister: 427,
    },
  },
};

const AF_UNIX = 1;
const SOCK_DGRAM = 2;
/** Low bits of socket()'s type argument; the rest are SOCK_NONBLOCK / SOCK_CLOEXEC flags. */
const SOCK_TYPE_MASK = 0xf;
const EPERM = 1;

const SECCOMP_RET_KILL_PROCESS = 0x80000000;
const SECCOMP_RET_ERRNO = 0x00050000;
const SECCOMP_RET_ALLOW = 0x7fff0000;

/** Offsets in `struct seccomp_data`: nr (u32), arch (u32), ip (u64), args[6] (u64 each). */
const OFF_NR = 0;
const OFF_ARCH = 4;
/** Low 32 bits of args[n] (little-endian); family and type are C ints. */
const offArgLow = (n: number): number => 16 + 8 * n;

// Classic BPF opcodes.
const BPF_LD_W_ABS = 0x20;
const BPF_ALU_AND_K = 0x54;
const BPF_JMP_JEQ_K = 0x15;
const BPF_JMP_JGE_K = 0x35;
const BPF_RET_K = 0x06;

/** One instruction before jump resolution; jumps name labels so the table stays readable. */
type Insn =
  | { op: "load"; offset: number; note: string }
  | { op: "and"; k: number; note: string }
  | { op: "jeq" | "jge"; k: number; yes: string; no: string; note: string }
  | { op: "ret"; value: number; note: string }
  | { op: "label"; name: string };

export interface SeccompRule {
  /** What the rule is for, printed by `describeSeccomp`. */
  why: string;
  program: (t: ArchTable) => Insn[];
}

const next = "next";
const errno = (note: string): Insn => ({ op: "ret", value: SECCOMP_RET_ERRNO | EPERM, note });
const allow: Insn = { op: "ret", value: SECCOMP_RET_ALLOW, note: "allow" };

/** The rule table, in evaluation order. Each rule falls through to the next one when it does not decide. */
export const SECCOMP_RULES: readonly SeccompRule[] = [
  {
    why: "a foreign architecture (e.g. i386 int 0x80 on x86_64) is killed",
    program: (t) => [
      { op: "load", offset: OFF_ARCH, note: "A = arch" },
      { op: "jeq", k: t.auditArch, yes: next, no: "kill", note: "native arch?" },
    ],
  },
  {
    why: "the x32 ABI is refused (EPERM)",
    program: (t) =>
      t.x32Bit === undefined
        ? [{ op: "load", offset: OFF_NR, note: "A = nr" }]
        : [
            { op: "load", offset: OFF_NR, note: "A = nr" },
            { op: "jge", k: t.x32Bit, yes: "deny", no: next, note: "x32 syscall?" },
          ],
  },
  {
    why: "io_uring_setup / io_uring_enter / io_uring_register are refused (EPERM)",
    program: (t) => [
      { op: "jeq", k: t.nr.ioUringSetup, yes: "deny", no: next, note: "io_uring_setup?" },
      { op: "jeq", k: t.nr.ioUringEnter, yes: "deny", no: next, note: "io_uring_enter?" },
      { op: "jeq", k: t.nr.ioUringRegister, yes: "deny", no: next, note: "io_uring_register?" },
    ],
  },
  {
    why: "socket(AF_UNIX, …) is refused (EPERM)",
    program: (t) => [
      { op: "jeq", k: t.nr.socket, yes: next, no: "not_socket", note: "socket?" },
      { op: "load", offset: offArgLow(0), note: "A = family" },
      { op: "jeq", k: AF_UNIX, yes: "deny", no: "allow", note: "AF_UNIX?" },
      { op: "label", name: "not_socket" },
    ],
  },
  {
    why: "socketpair(AF_UNIX, SOCK_DGRAM, …) is refused (EPERM); stream pairs are allowed",
    program: (t) => [
      { op: "jeq", k: t.nr.socketpair, yes: next, no: "allow", note: "socketpair?" },
      { op: "load", offset: offArgLow(0), note: "A = family" },
      { op: "jeq", k: AF_UNIX, yes: next, no: "allow", note: "AF_UNIX?" },
      { op: "load", offset: offArgLow(1), note: "A = type" },
      { op: "and", k: SOCK_TYPE_MASK, note: "A &= SOCK_TYPE_MASK" },
      { op: "jeq", k: SOCK_DGRAM, yes: "deny", no: "allow", note: "SOCK_DGRAM?" },
    ],
  },
];

const TAIL: Insn[] = [
  { op: "label", name: "allow" },
  allow,
  { op: "label", name: "deny" },
  errno("errno EPERM"),
  { op: "label", name: "kill" },
  { op: "ret", value: SECCOMP_RET_KILL_PROCESS, note: "kill process" },
];

/** The architecture this Node process runs on, or an error when the filter has no table for it. */
export function currentSeccompArch(arch: string = process.arch): SeccompArch {
  if (arch === "x64" || arch === "arm64") return arch;
  throw new SandboxError("E_UNSUPPORTED_PLATFORM", `the sandbox is not supported on ${arch} CPUs`, {
    hint: "bottlekit's seccomp filter covers x64 and arm64",
  });
}

interface Resolved {
  code: number;
  jt: number;
  jf: number;
  k: number;
  note: string;
}

function assemble(arch: SeccompArch): Resolved[] {
  const table = ARCH_TABLES[arch];
  const insns: Insn[] = [];
  for (const rule of SECCOMP_RULES) insns.push(...rule.program(table));
  insns.push(...TAIL);
  // Labels: "next" means the instruction right after; named labels point at their position.
  const labels = new Map<string, number>();
  const real: Exclude<Insn, { op: "label" }>[] = [];
  for (const insn of insns) {
    if (insn.op === "label") labels.set(insn.name, real.length);
    else real.push(insn);
  }
  const target = (name: string, at: number): number => {
    const to = name === next ? at + 1 : labels.get(name);
    if (to === undefined) throw new Error(`seccomp: unknown label ${name}`);
    const offset = to - at - 1;
    if (offset < 0 || offset > 255) throw new Error(`seccomp: jump to ${name} out of range`);
    return offset;
  };
  return real.map((insn, at): Resolved => {
    switch (insn.op) {
      case "load":
        return { code: BPF_LD_W_ABS, jt: 0, jf: 0, k: insn.offset, note: insn.note };
      case "and":
        return { code: BPF_ALU_AND_K, jt: 0, jf: 0, k: insn.k, note: insn.note };
      case "jeq":
      case "jge":
        return {
          code: insn.op === "jeq" ? BPF_JMP_JEQ_K : BPF_JMP_JGE_K,
          jt: target(insn.yes, at),
          jf: target(insn.no, at),
          k: insn.k,
          note: insn.note,
        };
      default:
        return { code: BPF_RET_K, jt: 0, jf: 0, k: insn.value, note: insn.note };
    }
  });
}

/** The filter as `struct sock_filter[]` bytes, ready for `bwrap --seccomp FD`. */
export function buildSeccompFilter(arch: SeccompArch = currentSeccompArch()): Uint8Array {
  const program = assemble(arch);
  const bytes = new Uint8Array(program.length * 8);
  const view = new DataView(bytes.buffer);
  program.forEach((insn, i) => {
    view.setUint16(i * 8, insn.code, true);
    view.setUint8(i * 8 + 2, insn.jt);
    view.setUint8(i * 8 + 3, insn.jf);
    view.setUint32(i * 8 + 4, insn.k >>> 0, true);
  });
  return bytes;
}

const built = new Map<SeccompArch, Uint8Array>();

/**
 * The filter for this host's architecture, built once per process and reused by every sandbox it
 * starts (a copy each time: callers may not change the cached bytes).
 */
export function seccompFilter(arch: SeccompArch = currentSeccompArch()): Uint8Array {
  let bytes = built.get(arch);
  if (bytes === undefined) {
    bytes = buildSeccompFilter(arch);
    built.set(arch, bytes);
  }
  return bytes.slice();
}

/** A listing of the filter, one instruction per line (for `--dry-run` and reviews). */
export function describeSeccomp(arch: SeccompArch = currentSeccompArch()): string[] {
  return assemble(arch).map((insn, i) => {
    const hex = `0x${(insn.k >>> 0).toString(16)}`;
    const jumps =
      insn.code === BPF_JMP_JEQ_K || insn.code === BPF_JMP_JGE_K
        ? ` jt ${i + 1 + insn.jt} jf ${i + 1 + insn.jf}`
        : "";
    return `${String(i).padStart(3)}  code 0x${insn.code.toString(16).padStart(2, "0")} k ${hex}${jumps}  ; ${insn.note}`;
  });
}

/**
 * Runs the filter program on one syscall, the way the kernel does (used by tests to check the
 * table, independently of a kernel). Returns the SECCOMP_RET_* action value.
 */
export function evaluateSeccomp(
  filter: Uint8Array,
  call: { arch: number; nr: number; args?: readonly number[] },
): number {
  const view = new DataView(filter.buffer, filter.byteOffset, filter.byteLength);
  const data = new DataView(new ArrayBuffer(64));
  data.setUint32(OFF_NR, call.nr >>> 0, true);
  data.setUint32(OFF_ARCH, call.arch >>> 0, true);
  for (const [n, arg] of (call.args ?? []).entries()) data.setUint32(offArgLow(n), arg >>> 0, true);
  let a = 0;
  let pc = 0;
  const count = filter.byteLength / 8;
  for (let steps = 0; steps <= count; steps++) {
    if (pc >= count) throw new Error("seccomp: fell off the end of the program");
    const code = view.getUint16(pc * 8, true);
    const jt = view.getUint8(pc * 8 + 2);
    const jf = view.getUint8(pc * 8 + 3);
    const k = view.getUint32(pc * 8 + 4, true);
    switch (code) {
      case BPF_LD_W_ABS:
        a = data.getUint32(k, true);
        pc++;
        break;
      case BPF_ALU_AND_K:
        a = (a & k) >>> 0;
        pc++;
        break;
      case BPF_JMP_JEQ_K:
        pc += 1 + (a === k ? jt : jf);
        break;
      case BPF_JMP_JGE_K:
        pc += 1 + (a >= k ? jt : jf);
        break;
      case BPF_RET_K:
        return k;
      default:
        throw new Error(`seccomp: unknown opcode 0x${code.toString(16)}`);
    }
  }
  throw new Error("seccomp: program does not terminate");
}

export const SECCOMP_ACTION = {
  allow: SECCOMP_RET_ALLOW,
  errnoEperm: SECCOMP_RET_ERRNO | EPERM,
  killProcess: SECCOMP_RET_KILL_PROCESS,
} as const;
