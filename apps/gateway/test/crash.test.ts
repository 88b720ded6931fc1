import { type ChildProcess, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { openStore } from "@bottlekit/budget-store";
import { createFakeUpstream, createTempHome } from "@bottlekit/test-utils";
import { expect, it } from "vitest";

// Spawns the built bin (turbo's test task builds first). A gateway killed with SIGKILL in the
// middle of a stream leaves a reservation behind; the next start closes it at once: the call is
// in the ledger (usageMissing, charged its reservation, audited) and the budget is free again.
const BIN = fileURLToPath(new URL("../bin/bottle-gateway.js", import.meta.url));
const KEY = "sk-proj-CRASHtestKEY0123456789abcdefABCDEF0123456789";

function startBin(
  config: string,
  home: string,
): { child: ChildProcess; url: Promise<string>; stderr: () => string } {
  const child = spawn(
    process.execPath,
    [BIN, "up", "--config", config, "--listen", "127.0.0.1:0", "--json-logs"],
    {
      env: { PATH: process.env["PATH"], BOTTLEKIT_HOME: home, OPENAI_API_KEY: KEY },
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  let err = "";
  const url = new Promise<string>((resolve, reject) => {
    child.stderr?.on("data", (d: Buffer) => {
      err += d.toString();
      const line = err.split("\n").find((l) => l.includes('"event":"listening"'));
      if (line !== undefined) resolve((JSON.parse(line) as { url: string }).url);
    });
    child.on("exit", (code) => reject(new Error(`gateway exited (${code}): ${err}`)));
  });
  return { child, url, stderr: () => err };
}

it("SIGKILL mid-stream, restart: the call is in the ledger (usageMissing, charged) and the budget is free within 1 s", async () => {
  const upstream = await createFakeUpstream({ requireKey: KEY });
  const home = await createTempHome("bottlekit-crash-");
  const config = await home.write(
    "gw.yml",
    [
      "model_providers:",
      "  - model: openai/*",
      `    base_url: ${upstream.url}/v1`,
      "    access_key: $OPENAI_API_KEY",
      "budgets:",
      "  - { scope: bottle, key: default, provider: openai, tokens: 100000 }",
      "",
    ].join("\n"),
  );
  const first = startBin(config, home.dir);
  let second: ReturnType<typeof startBin> | undefined;
  try {
    const url = await first.url;
    upstream.enqueue({
      text: Array.from({ length: 400 }, (_, i) => `w${i}`).join(" "),
      frameDelayMs: 20,
    });
    const res = await fetch(`${url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        model: "openai/gpt-4o-mini",
        messages: [{ role: "user", content: "a long answer please" }],
        max_tokens: 5_000,
        stream: true,
      }),
    });
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    await reader.read(); // the stream is under way: the reservation is held
    const exited = new Promise((resolve) => first.child.on("exit", resolve));
    first.child.kill("SIGKILL");
    await exited;
    await reader.read().catch(() => undefined);

    second = startBin(config, home.dir);
    await second.url;
    // Read the ledger without reclaiming anything ourselves: only the gateway may have done it.
    const store = await openStore(`sqlite:${home.dir}/bottlekit.db`, {
      home: home.dir,
      reclaimOnOpen: false,
    });
    try {
      const subject = { bottle: "default", agent: "default", provider: "openai" };
      await expect
        .poll(async () => (await store.remaining(subject))?.reserved, { timeout: 1_000 })
        .toBe(0);
      const events = await store.events();
      expect(events.length).toBe(1);
      expect(events[0]).toMatchObject({ usageMissing: true, bottle: "default" });
      expect(events[0]?.tokens).toBeGreaterThanOrEqual(5_000);
      const actions = await store.actions({ bottle: "default" });
      expect(actions.some((a) => a.action === "reclaim")).toBe(true);
    } finally {
      await store.close();
    }
  } finally {
    first.child.kill("SIGKILL");
    second?.child.kill("SIGTERM");
    if (second !== undefined && second.child.exitCode === null)
      await new Promise((resolve) => second?.child.on("exit", resolve));
    await upstream.close();
    await home.cleanup();
  }
});
