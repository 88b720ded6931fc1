// The 24 cases from Plano's local_agent_warning tests and code (reference §1), in bottlekit
// form. Where bottlekit deliberately differs (case and aliases count, acks carry the binary and
// permission mode), the test says so.
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { createTempHome, type TempHome } from "@bottlekit/test-utils";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { clock } from "../test/helpers.ts";
import {
  ackFilePath,
  DOCS_URL,
  detectLocalAgentProviders,
  evaluateLocalAgentGate,
  type GateOptions,
  readAck,
  renderLocalAgentGate,
  writeAck,
} from "./index.ts";

let home: TempHome;
beforeEach(async () => {
  home = await createTempHome("law-plano-");
});
afterEach(async () => {
  await home.cleanup();
});

const ENV = { PATH: "" };
const claudeAck = {
  interface: "claude-cli",
  binary: "claude",
  binaryPath: null,
  permissionMode: "bypassPermissions",
};

function gate(config: unknown, extra: Partial<GateOptions> = {}) {
  return evaluateLocalAgentGate({ config, env: ENV, home: home.dir, interactive: true, ...extra });
}

async function ackFileExists(): Promise<boolean> {
  return readFile(ackFilePath({ home: home.dir }), "utf8").then(
    () => true,
    () => false,
  );
}

describe("detection (cases 1-8, 21, 24)", () => {
  it("1: claude-cli/sonnet next to openai/gpt-4o gives one claude-cli record", () => {
    const found = detectLocalAgentProviders({
      model_providers: [{ model: "claude-cli/sonnet" }, { model: "openai/gpt-4o" }],
    });
    expect(found).toHaveLength(1);
    expect(found[0]).toMatchObject({ interface: "claude-cli", model: "claude-cli/sonnet" });
  });

  it("2: provider_interface claude-cli keeps the entry's name", () => {
    const found = detectLocalAgentProviders({
      model_providers: [{ name: "local-claude", provider_interface: "claude-cli", model: "x" }],
    });
    expect(found).toEqual([
      expect.objectContaining({
        interface: "claude-cli",
        name: "local-claude",
        model: "x",
        matchedOn: "provider_interface",
      }),
    ]);
  });

  it("3: the legacy provider field is honoured", () => {
    const found = detectLocalAgentProviders({
      model_providers: [{ provider: "claude-cli", model: "x" }],
    });
    expect(found.map((f) => [f.interface, f.matchedOn])).toEqual([["claude-cli", "provider"]]);
  });

  it("4: a config with only llm_providers is read", () => {
    const found = detectLocalAgentProviders({ llm_providers: [{ model: "claude-cli/opus" }] });
    expect(found).toEqual([
      expect.objectContaining({ interface: "claude-cli", source: "llm_providers" }),
    ]);
  });

  it("5: network providers, including chatgpt, never fire", () => {
    const found = detectLocalAgentProviders({
      model_providers: [
        { model: "openai/gpt-4o" },
        { model: "anthropic/claude-sonnet-4-5" },
        { model: "gemini/gemini-2.5-pro" },
        { model: "chatgpt/gpt-5" },
        { model: "vercel/openai/gpt-4o" },
      ],
    });
    expect(found).toEqual([]);
  });

  it("6: a claude model on anthropic is not a local agent (substrings do not count)", () => {
    expect(
      detectLocalAgentProviders({
        model_providers: [{ model: "anthropic/claude-3-5-sonnet-20241022" }],
      }),
    ).toEqual([]);
  });

  it("7: empty, null, non-list and null configs are tolerated", () => {
    for (const config of [{}, { model_providers: null }, { model_providers: "not-a-list" }, null]) {
      expect(detectLocalAgentProviders(config)).toEqual([]);
    }
  });

  it("8: two claude-cli entries give two records; the panel header appears once with both names", async () => {
    const config = {
      model_providers: [
        { name: "fast", model: "claude-cli/haiku" },
        { name: "slow", model: "claude-cli/opus" },
      ],
    };
    expect(detectLocalAgentProviders(config).map((f) => f.name)).toEqual(["fast", "slow"]);
    const text = renderLocalAgentGate(await gate(config));
    expect(text.match(/Local-agent provider detected/g)).toHaveLength(1);
    expect(text).toContain("fast");
    expect(text).toContain("slow");
  });

  it("21 (changed on purpose): case variants ARE detected, through the registry", () => {
    const found = detectLocalAgentProviders({
      model_providers: [
        { model: "Claude-CLI/sonnet" },
        { provider_interface: "CLAUDE-CLI", model: "x" },
      ],
    });
    expect(found.map((f) => f.interface)).toEqual(["claude-cli", "claude-cli"]);
  });

  it("24: name claude-cli/x with an openai model is detected", () => {
    const found = detectLocalAgentProviders({
      model_providers: [{ name: "claude-cli/x", model: "openai/gpt-4o" }],
    });
    expect(found).toEqual([
      expect.objectContaining({ interface: "claude-cli", name: "claude-cli/x", matchedOn: "name" }),
    ]);
  });
});

describe("ack file (cases 9-12, 20, 22)", () => {
  it("9: no ack file means nothing acknowledged", async () => {
    expect((await readAck({ home: home.dir })).size).toBe(0);
  });

  it("10: corrupt or wrongly shaped ack files count as no ack", async () => {
    const bodies = [
      "{not valid json",
      "[]",
      '{"interfaces":"claude-cli"}',
      '{"interfaces":[1,2,3]}',
      '{"interfaces":{"claude-cli":[1,2,3]}}',
      '{"acknowledged":["claude-cli"],"ack_at":"2026-01-01T00:00:00Z"}',
    ];
    for (const body of bodies) {
      await home.write("state/local_agent_ack.json", body);
      expect((await readAck({ home: home.dir })).size, body).toBe(0);
    }
  });

  it("11: writing into a missing nested directory creates it, with the time", async () => {
    const nested = join(home.dir, "deeper", "still");
    await writeAck([claudeAck], { home: nested, now: clock("2026-03-04T05:06:07.890Z") });
    const doc = JSON.parse(await readFile(ackFilePath({ home: nested }), "utf8"));
    expect(Object.keys(doc.interfaces)).toEqual(["claude-cli"]);
    expect(doc.interfaces["claude-cli"].acknowledgedAt).toBe("2026-03-04T05:06:07Z");
  });

  it("12: a second write is a sorted union", async () => {
    await writeAck([claudeAck], { home: home.dir });
    await writeAck([{ ...claudeAck, interface: "future-cli" }], { home: home.dir });
    const doc = JSON.parse(await readFile(ackFilePath({ home: home.dir }), "utf8"));
    expect(Object.keys(doc.interfaces)).toEqual(["claude-cli", "future-cli"]);
    expect([...(await readAck({ home: home.dir })).keys()].sort()).toEqual([
      "claude-cli",
      "future-cli",
    ]);
  });

  it("20: a corrupt ack file warns again", async () => {
    await home.write("state/local_agent_ack.json", "{oops");
    expect((await gate({ model_providers: [{ model: "claude-cli/x" }] })).action).toBe("warn");
  });

  it("22: malformed entries are dropped, well-formed ones kept", async () => {
    await home.write(
      "state/local_agent_ack.json",
      JSON.stringify({
        interfaces: {
          "claude-cli": {
            acknowledgedAt: "2026-01-01T00:00:00Z",
            binary: "claude",
            binaryPath: null,
            permissionMode: "bypassPermissions",
          },
          "codex-cli": 7,
        },
      }),
    );
    expect([...(await readAck({ home: home.dir })).keys()]).toEqual(["claude-cli"]);
  });
});

describe("the gate (cases 13-19, 23)", () => {
  it("13: openai only decides none and renders nothing", async () => {
    const result = await gate({ model_providers: [{ model: "openai/gpt-4o" }] });
    expect(result.action).toBe("none");
    expect(renderLocalAgentGate(result)).toBe("");
  });

  it("14: un-acknowledged claude-cli warns with the panel, never the ack path", async () => {
    const result = await gate({ model_providers: [{ model: "claude-cli/sonnet" }] });
    expect(result.action).toBe("warn");
    const text = renderLocalAgentGate(result);
    for (const needle of [
      "claude-cli",
      "Local-agent",
      "Learn more",
      "--ack-local-agents",
      DOCS_URL,
    ]) {
      expect(text).toContain(needle);
    }
    expect(text).not.toContain("local_agent_ack.json");
    expect(text).not.toContain(home.dir);
  });

  it("15: already acknowledged is silent apart from one line naming the interface", async () => {
    await writeAck([claudeAck], { home: home.dir });
    const result = await gate({ model_providers: [{ model: "claude-cli/sonnet" }] });
    expect(result.action).toBe("already-acknowledged");
    const text = renderLocalAgentGate(result);
    expect(text).toContain("claude-cli");
    expect(text.trim().split("\n")).toHaveLength(1);
  });

  it("16: a new interface warns for that interface only", async () => {
    await writeAck([claudeAck], { home: home.dir });
    const result = await gate({
      model_providers: [{ model: "claude-cli/sonnet" }, { model: "codex-cli/gpt-5-codex" }],
    });
    expect(result.action).toBe("warn");
    expect(result.pending.map((p) => p.interface)).toEqual(["codex-cli"]);
    const text = renderLocalAgentGate(result);
    expect(text).toContain("codex-cli");
    expect(text).toContain("Local-agent provider detected (codex-cli)");
  });

  it("17: the flag acknowledges and says so", async () => {
    const result = await gate(
      { model_providers: [{ model: "claude-cli/sonnet" }] },
      { ackFlag: true },
    );
    expect(result.action).toBe("acknowledged");
    expect(result.acknowledgedBy).toBe("flag");
    expect(await readFile(ackFilePath({ home: home.dir }), "utf8")).toContain("claude-cli");
    expect(renderLocalAgentGate(result)).toContain("Acknowledged");
  });

  it.each(["1", "true", "TRUE", "yes", "on", " On "])(
    "18: BOTTLEKIT_ACK_LOCAL_AGENTS=%j acknowledges and writes the file",
    async (value) => {
      const result = await gate(
        { model_providers: [{ model: "claude-cli/sonnet" }] },
        { env: { ...ENV, BOTTLEKIT_ACK_LOCAL_AGENTS: value } },
      );
      expect(result.action).toBe("acknowledged");
      expect(result.acknowledgedBy).toBe("env");
      expect(await ackFileExists()).toBe(true);
    },
  );

  it.each(["", "0", "false", "no", "off", "maybe"])(
    "19: BOTTLEKIT_ACK_LOCAL_AGENTS=%j does not acknowledge",
    async (value) => {
      const result = await gate(
        { model_providers: [{ model: "claude-cli/sonnet" }] },
        { env: { ...ENV, BOTTLEKIT_ACK_LOCAL_AGENTS: value } },
      );
      expect(result.action).toBe("warn");
      expect(await ackFileExists()).toBe(false);
    },
  );

  it("23: the flag with an existing ack rewrites the union and refreshes the time", async () => {
    await writeAck([claudeAck, { ...claudeAck, interface: "future-cli" }], {
      home: home.dir,
      now: clock("2026-01-01T00:00:00Z"),
    });
    await gate(
      { model_providers: [{ model: "claude-cli/sonnet" }] },
      { ackFlag: true, now: clock("2026-02-02T00:00:00Z") },
    );
    const state = await readAck({ home: home.dir });
    expect([...state.keys()].sort()).toEqual(["claude-cli", "future-cli"]);
    expect(state.get("claude-cli")?.acknowledgedAt).toBe("2026-02-02T00:00:00Z");
    expect(state.get("future-cli")?.acknowledgedAt).toBe("2026-01-01T00:00:00Z");
  });
});

it("a file written by the flag is what a later run reads back", async () => {
  await gate({ model_providers: [{ model: "claude-cli/sonnet" }] }, { ackFlag: true });
  const raw = await readFile(ackFilePath({ home: home.dir }), "utf8");
  expect(raw.endsWith("\n")).toBe(true);
  await writeFile(join(home.dir, "unrelated"), "x");
  expect((await gate({ model_providers: [{ model: "claude-cli/opus" }] })).action).toBe(
    "already-acknowledged",
  );
});
