import { spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, beforeEach, expect, it } from "vitest";
import { type Sandbox, sandbox, script } from "./helpers.ts";

// Spawns the built bin (turbo's test task builds first).
const BIN = fileURLToPath(new URL("../bin/agentcli.js", import.meta.url));

let sb: Sandbox;
beforeEach(async () => {
  sb = await sandbox();
});
afterEach(async () => {
  await sb.cleanup();
});

function dead(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).startsWith("Z");
  } catch {
    return true;
  }
}

it("SIGINT during a tool call: exit 130, the tool's process group is killed", async () => {
  const kit = join(sb.dir, "kit");
  await script(join(kit, "tools/bin/hang"), "#!/bin/sh\nsleep 300 &\necho $! > child.pid\nwait\n");
  await writeFile(
    join(kit, "tools.json"),
    JSON.stringify({ tools: [{ name: "hang", command: ["./tools/bin/hang"] }] }),
  );
  await writeFile(
    join(sb.dir, "p.rules"),
    'prefix_rule(pattern=["./tools/bin/hang"], decision="allow")\n',
  );
  sb.upstream.enqueue({ toolCalls: [{ id: "h", name: "hang", arguments: "{}" }] });
  const child = spawn(
    process.execPath,
    [
      BIN,
      "-C",
      sb.ws,
      "-m",
      "m",
      "--tools",
      join(kit, "tools.json"),
      "--policy",
      join(sb.dir, "p.rules"),
      "wait",
    ],
    { env: sb.env as NodeJS.ProcessEnv, stdio: ["ignore", "pipe", "pipe"] },
  );
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  const pidFile = join(sb.ws, "child.pid");
  await expect
    .poll(() => existsSync(pidFile) && readFileSync(pidFile, "utf8").trim() !== "", {
      timeout: 60_000,
    })
    .toBe(true);
  const pid = Number(await readFile(pidFile, "utf8"));
  child.kill("SIGINT");
  expect(await exited).toBe(130);
  await expect.poll(() => dead(pid), { timeout: 60_000 }).toBe(true);
  const end = (await sb.auditLines()).at(-1);
  expect(end).toMatchObject({ event: "run.end", status: "interrupted", exitCode: 130 });
});
