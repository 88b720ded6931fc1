/**
 * `keylessLoopback: false` (bottle run's embedded controller): the API door on loopback refuses a
 * call without a gateway key, so no other local process can spend the host's provider keys through
 * it; the default (`bottle-gateway up` on loopback) still takes keyless calls as bottle `default`.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { type RunningGateway, startGateway } from "./compose.ts";

const homes: string[] = [];
const running: RunningGateway[] = [];
afterAll(async () => {
  for (const gw of running) await gw.close(0);
  for (const h of homes) fs.rmSync(h, { recursive: true, force: true });
});

async function start(keylessLoopback?: boolean): Promise<RunningGateway> {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), "bottlekit-gw-keyless-"));
  homes.push(home);
  const gw = await startGateway({
    listen: "127.0.0.1:0",
    env: { BOTTLEKIT_HOME: home, ANTHROPIC_API_KEY: "sk-ant-test-not-a-real-key-000000" },
    ...(keylessLoopback === undefined ? {} : { keylessLoopback }),
  });
  running.push(gw);
  return gw;
}

/** A keyless call whose body is not JSON: 401 when the caller is refused, else a 400 after it. */
async function keylessStatus(gw: RunningGateway): Promise<number> {
  const res = await fetch(`${gw.url}/v1/messages`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: "{",
  });
  await res.arrayBuffer();
  return res.status;
}

describe("the API door without a gateway key, on loopback", () => {
  it("takes the call by default, and refuses it (401) with keylessLoopback: false", async () => {
    expect(await keylessStatus(await start())).not.toBe(401);
    expect(await keylessStatus(await start(false))).toBe(401);
  });
});
