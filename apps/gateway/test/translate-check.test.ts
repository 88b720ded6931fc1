import { captureIo, createTempHome, type TempHome } from "@bottlekit/test-utils";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type CliIo, run } from "../src/cli.ts";

// `bottle-gateway check` says which client APIs of each configured model are translated, and to
// which native API.

const OPENAI_KEY = "sk-proj-CHECKtestKEY0123456789abcdefABCDEF0123456789";
const ANTHROPIC_KEY = "sk-ant-api03-CHECKtestKEY0123456789abcdefABCDEF0123456789-xyzAA";

let home: TempHome;
let env: NodeJS.ProcessEnv;
beforeEach(async () => {
  home = await createTempHome("bottlekit-check-translate-");
  env = {
    BOTTLEKIT_HOME: home.dir,
    OPENAI_API_KEY: OPENAI_KEY,
    ANTHROPIC_API_KEY: ANTHROPIC_KEY,
    PATH: process.env["PATH"],
  };
});
afterEach(() => home.cleanup());

function capture() {
  const c = captureIo(env);
  const io: CliIo = { ...c.io, interactive: false };
  return { io, out: c.out, err: c.err };
}

const CONFIG = [
  "model_providers:",
  "  - model: openai/*",
  "    access_key: $OPENAI_API_KEY",
  "  - model: anthropic/*",
  "    access_key: $ANTHROPIC_API_KEY",
  "",
].join("\n");

describe("check: translated client APIs", () => {
  it("--json lists, per model, each client API the provider does not speak and its native target", async () => {
    const file = await home.write("gw.yml", CONFIG);
    const c = capture();
    expect(await run(["check", "--config", file, "--json"], c.io)).toBe(0);
    const doc = JSON.parse(c.out()) as {
      routes: {
        model: string;
        apis: string[];
        translated: { client: string; upstream: string }[];
      }[];
    };
    const openai = doc.routes.find((r) => r.model === "openai/*");
    const anthropic = doc.routes.find((r) => r.model === "anthropic/*");
    expect(openai?.translated).toEqual([{ client: "anthropic-messages", upstream: "openai-chat" }]);
    expect(anthropic?.translated).toEqual([
      { client: "openai-chat", upstream: "anthropic-messages" },
      { client: "openai-responses", upstream: "anthropic-messages" },
    ]);
  });

  it("the table prints one line per model with translated calls", async () => {
    const file = await home.write("gw.yml", CONFIG);
    const c = capture();
    expect(await run(["check", "--config", file], c.io)).toBe(0);
    expect(c.out()).toContain("translated openai/*: anthropic-messages -> openai-chat\n");
    expect(c.out()).toContain(
      "translated anthropic/*: openai-chat -> anthropic-messages, openai-responses -> anthropic-messages\n",
    );
  });
});
