import { existsSync } from "node:fs";
import { join } from "node:path";
import { createTempHome, type TempHome } from "@bottlekit/test-utils";
import { afterEach, describe, expect, it } from "vitest";
import { type RunningGateway, startGateway, storeFromEnv } from "../src/compose.ts";

let home: TempHome | undefined;
let gw: RunningGateway | undefined;
afterEach(async () => {
  await gw?.close(100);
  await home?.cleanup();
  gw = undefined;
  home = undefined;
});

describe("$BOTTLEKIT_STORE", () => {
  it("reads a URL as is and a plain path as a SQLite file", () => {
    expect(storeFromEnv("postgres://u@db:5432/bk")).toBe("postgres://u@db:5432/bk");
    expect(storeFromEnv("sqlite:/x/y.db")).toBe("sqlite:/x/y.db");
    expect(storeFromEnv("/x/y.db")).toBe("sqlite:/x/y.db");
  });

  it("chooses the gateway's store when neither --store nor the config names one", async () => {
    home = await createTempHome("bk-gw-store-env-");
    const file = join(home.dir, "elsewhere.db");
    gw = await startGateway({
      listen: "127.0.0.1:0",
      env: { BOTTLEKIT_HOME: home.dir, BOTTLEKIT_STORE: file, PATH: process.env["PATH"] },
    });
    await gw.store.createGatewayKey({ bottle: "b", agent: "a" });
    expect(existsSync(file)).toBe(true);
    expect(existsSync(join(home.dir, "bottlekit.db"))).toBe(false);
  });

  it("a store directory that does not exist is refused, nothing created", async () => {
    home = await createTempHome("bk-gw-store-env-missing-");
    const file = join(home.dir, "no-such-dir", "s.db");
    await expect(
      startGateway({
        listen: "127.0.0.1:0",
        env: { BOTTLEKIT_HOME: home.dir, BOTTLEKIT_STORE: file, PATH: process.env["PATH"] },
      }),
    ).rejects.toMatchObject({ code: expect.any(String) });
    expect(existsSync(join(home.dir, "no-such-dir"))).toBe(false);
  });
});
