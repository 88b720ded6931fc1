import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  ARCH_TABLES,
  buildSeccompFilter,
  describeSeccomp,
  evaluateSeccomp,
  SECCOMP_ACTION,
  type SeccompArch,
} from "./seccomp.ts";

const AF_UNIX = 1;
const AF_INET = 2;
const SOCK_STREAM = 1;
const SOCK_DGRAM = 2;
const SOCK_CLOEXEC = 0o2000000;

describe.each(["x64", "arm64"] as SeccompArch[])("seccomp filter (%s)", (arch) => {
  const t = ARCH_TABLES[arch];
  const filter = buildSeccompFilter(arch);
  const run = (nr: number, args: number[] = []) =>
    evaluateSeccomp(filter, { arch: t.auditArch, nr, args });

  it("is reproducible byte for byte", () => {
    expect(Buffer.from(buildSeccompFilter(arch)).equals(Buffer.from(filter))).toBe(true);
    expect(filter.byteLength % 8).toBe(0);
  });

  it("refuses socket(AF_UNIX) with any type flags, allows other families", () => {
    expect(run(t.nr.socket, [AF_UNIX, SOCK_STREAM])).toBe(SECCOMP_ACTION.errnoEperm);
    expect(run(t.nr.socket, [AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC])).toBe(SECCOMP_ACTION.errnoEperm);
    expect(run(t.nr.socket, [AF_INET, SOCK_STREAM])).toBe(SECCOMP_ACTION.allow);
  });

  it("allows stream socketpairs and refuses datagram ones", () => {
    expect(run(t.nr.socketpair, [AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC])).toBe(SECCOMP_ACTION.allow);
    expect(run(t.nr.socketpair, [AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC])).toBe(
      SECCOMP_ACTION.errnoEperm,
    );
  });

  it("refuses io_uring", () => {
    for (const nr of [t.nr.ioUringSetup, t.nr.ioUringEnter, t.nr.ioUringRegister]) {
      expect(run(nr)).toBe(SECCOMP_ACTION.errnoEperm);
    }
  });

  it("kills a foreign architecture", () => {
    expect(evaluateSeccomp(filter, { arch: 0x40000003, nr: 1 })).toBe(SECCOMP_ACTION.killProcess);
  });

  it("allows every other syscall number (property)", () => {
    const denied = new Set([
      t.nr.socket,
      t.nr.socketpair,
      t.nr.ioUringSetup,
      t.nr.ioUringEnter,
      t.nr.ioUringRegister,
    ]);
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 0x3fffffff }),
        fc.array(fc.nat(), { maxLength: 6 }),
        (nr, args) => {
          fc.pre(!denied.has(nr));
          return run(nr, args) === SECCOMP_ACTION.allow;
        },
      ),
    );
  });

  it("lists one line per instruction", () => {
    expect(describeSeccomp(arch)).toHaveLength(filter.byteLength / 8);
  });
});

describe("x32 ABI", () => {
  it("is refused on x64", () => {
    const filter = buildSeccompFilter("x64");
    const x32 = (ARCH_TABLES.x64.x32Bit ?? 0) | 41;
    expect(
      evaluateSeccomp(filter, { arch: ARCH_TABLES.x64.auditArch, nr: x32, args: [AF_INET] }),
    ).toBe(SECCOMP_ACTION.errnoEperm);
  });
});
