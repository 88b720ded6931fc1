import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { createFakeUpstream, createTempHome } from "@bottlekit/test-utils";
import { expect, it } from "vitest";

// Spawns the built bin (turbo's test task builds first). SIGTERM while a stream is in flight:
// the stream completes, then the process exits 0.
const BIN = fileURLToPath(new URL("../bin/bottle-gateway.js", import.meta.url));
const KEY = "sk-proj-BINtestKEY0123456789abcdefABCDEF0123456789ab";

it("bottle-gateway up: SIGTERM drains an in-flight stream, then exits 0", async () => {
  const upstream = await createFakeUpstream({ requireKey: KEY });
  const home = await createTempHome("bottlekit-bin-");
  const config = await home.write(
    "gw.yml",
    `model_providers:\n  - model: openai/*\n    base_url: ${upstream.url}/v1\n    access_key: $OPENAI_API_KEY\n`,
  );
  const child = spawn(
    process.execPath,
    [BIN, "up", "--config", config, "--listen", "127.0.0.1:0", "--json-logs"],
    {
      env: { PATH: process.env["PATH"], BOTTLEKIT_HOME: home.dir, OPENAI_API_KEY: KEY },
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  let stderr = "";
  child.stderr.on("data", (d: Buffer) => {
    stderr += d.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  try {
    await expect.poll(() => stderr.includes('"event":"listening"'), { timeout: 60_000 }).toBe(true);
    const url = (
      JSON.parse(stderr.split("\n").find((l) => l.includes('"listening"')) as string) as {
        url: string;
      }
    ).url;
    upstream.enqueue({ text: "one two three four five six", frameDelayMs: 50 });
    const res = await fetch(`${url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        model: "openai/gpt-4o-mini",
        messages: [{ role: "user", content: "hi" }],
        stream: true,
      }),
    });
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    await reader.read();
    child.kill("SIGTERM");
    let raw = "";
    const dec = new TextDecoder();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      raw += dec.decode(value);
    }
    expect(raw).toContain("data: [DONE]");
    expect(await exited).toBe(0);
    expect(stderr).toContain('"event":"draining"');
    expect(stderr).not.toContain(KEY);
  } finally {
    child.kill("SIGKILL");
    await upstream.close();
    await home.cleanup();
  }
});
