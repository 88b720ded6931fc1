import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { stat } from "node:fs/promises";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import { createTempHome, type TempHome } from "@bottlekit/test-utils";
import { afterEach, beforeEach, expect, it } from "vitest";
import { ackFilePath, readAck } from "./index.ts";

const writer = fileURLToPath(new URL("../test/ack-writer.ts", import.meta.url));
const tsxLoader = createRequire(import.meta.url).resolve("tsx");

let home: TempHome;
beforeEach(async () => {
  home = await createTempHome("law-race-");
});
afterEach(async () => {
  await home.cleanup();
});

interface Child {
  proc: ChildProcess;
  output: () => string;
  ready: Promise<void>;
  exit: Promise<number | null>;
}

function start(prefix: string, count: number): Child {
  const proc = spawn(
    process.execPath,
    [
      "--conditions=@bottlekit/source",
      "--import",
      tsxLoader,
      writer,
      home.dir,
      prefix,
      String(count),
    ],
    {
      stdio: ["pipe", "pipe", "pipe"],
    },
  );
  let out = "";
  let err = "";
  const ready = new Promise<void>((resolve, reject) => {
    proc.stdout!.on("data", (chunk: Buffer) => {
      out += chunk.toString();
      if (out.includes("ready\n")) resolve();
    });
    proc.stderr!.on("data", (chunk: Buffer) => {
      err += chunk.toString();
    });
    proc.once("exit", (code) => reject(new Error(`${prefix} exited ${code} before ready: ${err}`)));
  });
  const exit = once(proc, "exit").then(([code]) => code as number | null);
  return { proc, output: () => out + err, ready, exit };
}

it("two processes acknowledging different interfaces at once both get recorded", async () => {
  const count = 25;
  const children = [start("claude-cli", count), start("codex-cli", count)];
  await Promise.all(children.map((c) => c.ready));
  // Release both in the same tick: their read-merge-write cycles now interleave.
  for (const c of children) c.proc.stdin!.end("go\n");
  const codes = await Promise.all(children.map((c) => c.exit));
  expect(codes, children.map((c) => c.output()).join("\n")).toEqual([0, 0]);
  expect(children[0]!.output()).toContain("claude-cli done");
  expect(children[1]!.output()).toContain("codex-cli done");

  const state = await readAck({ home: home.dir });
  const expected = ["claude-cli", "codex-cli"].flatMap((p) => [
    p,
    ...Array.from({ length: count - 1 }, (_, i) => `${p}-${i + 1}`),
  ]);
  expect([...state.keys()].sort()).toEqual(expected.sort());
  expect(state.get("claude-cli")?.binaryPath).toBe("/opt/claude-cli");
  expect(state.get("codex-cli")?.binaryPath).toBe("/opt/codex-cli");
  expect((await stat(ackFilePath({ home: home.dir }))).mode & 0o777).toBe(0o600);
});
