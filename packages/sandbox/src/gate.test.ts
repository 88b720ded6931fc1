import { spawn } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import type { Readable, Writable } from "node:stream";
import { afterEach, describe, expect, it } from "vitest";
import { GATE_SCRIPT, GATE_UNIX_PROBE, PROBE_REFUSED_EXIT } from "./scripts.ts";

/**
 * The gate outside any sandbox (no seccomp filter): its AF_UNIX attempt connects, and its report
 * says so — the launcher fails the "socket(AF_UNIX) refused" check on such a report (inside the
 * sandbox, sandbox.test.ts sees it refused). It starts the agent only on "go".
 */
let server: net.Server | undefined;
afterEach(async () => {
  await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
  server = undefined;
  fs.rmSync(GATE_UNIX_PROBE, { force: true });
});

async function runGate(verdict: string, path = process.env["PATH"]) {
  let connections = 0;
  fs.rmSync(GATE_UNIX_PROBE, { force: true });
  server = net.createServer((c) => {
    connections++;
    c.destroy();
  });
  await new Promise<void>((r) => server?.listen(GATE_UNIX_PROBE, () => r()));
  const child = spawn(
    "/bin/sh",
    ["-c", GATE_SCRIPT, "bottle-gate", process.execPath, "/bin/sh", "-c", "echo agent-ran"],
    {
      stdio: ["ignore", "pipe", "pipe", "ignore", "pipe", "pipe"],
      env: { PATH: path, MARKER: "seen-by-the-agent" },
    },
  );
  let report = "";
  let out = "";
  child.stdout?.on("data", (d: Buffer) => {
    out += d.toString();
  });
  const fd4 = (child.stdio as unknown as Readable[])[4] as Readable;
  const fd5 = (child.stdio as unknown as Writable[])[5] as Writable;
  await new Promise<void>((resolve) => {
    fd4.on("data", (d: Buffer) => {
      report += d.toString("latin1");
      if (/(^|\n)end\n/.test(report)) resolve();
    });
    fd4.on("close", () => resolve());
  });
  fd5.end(`${verdict}\n`);
  const code = await new Promise<number>((r) => child.on("close", (c) => r(c ?? 1)));
  return { report, out, code, connections };
}

describe("the stage-2 gate", () => {
  it("reports its AF_UNIX attempt, its /proc status and its environment, then runs the agent on go", async () => {
    const r = await runGate("go");
    expect(r.report).toMatch(/^unix 0 /m);
    expect(r.connections).toBeGreaterThan(0);
    expect(r.report).toMatch(/^Seccomp:\s+0$/m);
    expect(r.report).toMatch(/^Uid:\s+\d+/m);
    const b64 = /^environ (\S*)$/m.exec(r.report)?.[1] ?? "";
    expect(Buffer.from(b64, "base64").toString("utf8").split("\0")).toContain(
      "MARKER=seen-by-the-agent",
    );
    expect(r.out).toBe("agent-ran\n");
    expect(r.code).toBe(0);
  });

  it("puts the whole output of its unix attempt on the unix line (newlines as spaces)", async () => {
    const bin = fs.mkdtempSync(`${os.tmpdir()}/bottle-gate-bin-`);
    try {
      fs.writeFileSync(
        `${bin}/logger`,
        "#!/bin/sh\nprintf 'first line\\nsecond: Operation not permitted\\n\\n'\nexit 1\n",
        { mode: 0o755 },
      );
      const r = await runGate("go", `${bin}:${process.env["PATH"]}`);
      expect(r.report).toMatch(/^unix 1 first line second: Operation not permitted\n/m);
      expect(r.report).toMatch(/^Uid:\s+\d+/m);
      expect(r.code).toBe(0);
    } finally {
      fs.rmSync(bin, { recursive: true, force: true });
    }
  });

  it("exits 3 without running the agent on anything but go", async () => {
    const r = await runGate("stop");
    expect(r.out).toBe("");
    expect(r.code).toBe(PROBE_REFUSED_EXIT);
  });
});
