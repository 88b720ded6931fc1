import { PassThrough, Writable } from "node:stream";
import { createTempHome, type TempHome } from "@bottlekit/test-utils";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { CLAUDE } from "../test/helpers.ts";
import {
  askToAcknowledge,
  evaluateLocalAgentGate,
  isYes,
  type RunGateOptions,
  readAck,
  runLocalAgentGate,
} from "./index.ts";

let home: TempHome;
beforeEach(async () => {
  home = await createTempHome("law-prompt-");
});
afterEach(async () => {
  await home.cleanup();
});

function ttyInput(answer?: string): PassThrough & { isTTY: boolean } {
  const input = Object.assign(new PassThrough(), { isTTY: true });
  if (answer !== undefined) input.end(answer);
  return input;
}

function sink(isTTY = false): Writable & { isTTY: boolean; text: () => string } {
  let text = "";
  const stream = new Writable({
    write(chunk, _enc, cb) {
      text += chunk.toString();
      cb();
    },
  });
  return Object.assign(stream, { isTTY, text: () => text });
}

function run(extra: Partial<RunGateOptions>) {
  const stderr = sink();
  return {
    stderr,
    outcome: runLocalAgentGate({
      config: CLAUDE,
      env: { PATH: "" },
      home: home.dir,
      stdout: { isTTY: true },
      stderr,
      ...extra,
    }),
  };
}

describe("isYes", () => {
  it("accepts y and yes in any case, nothing else", () => {
    for (const a of ["y", "Y", "yes", " YES \n"]) expect(isYes(a)).toBe(true);
    for (const a of ["", "n", "no", "yeah", "ok", "1"]) expect(isYes(a)).toBe(false);
  });
});

describe("runLocalAgentGate", () => {
  it("interactive yes: shows the panel once, asks once, writes the ack, proceeds", async () => {
    const { stderr, outcome } = run({ stdin: ttyInput("y\n") });
    const result = await outcome;
    expect(result).toMatchObject({ proceed: true, exitCode: 0, outcome: "answered-yes" });
    expect(result.result.action).toBe("acknowledged");
    expect(stderr.text().match(/Local-agent provider detected/g)).toHaveLength(1);
    expect(stderr.text().match(/Acknowledge and continue\? \[y\/N\]/g)).toHaveLength(1);
    expect((await readAck({ home: home.dir })).has("claude-cli")).toBe(true);
    const again = await run({ stdin: ttyInput() }).outcome;
    expect(again.outcome).toBe("already-acknowledged");
  });

  it("interactive no (or just Enter, or end of input): declined, exit 3, nothing written", async () => {
    for (const answer of ["n\n", "\n", ""]) {
      const { stderr, outcome } = run({ stdin: ttyInput(answer) });
      const result = await outcome;
      expect(result).toMatchObject({ proceed: false, exitCode: 3, outcome: "declined" });
      expect(stderr.text()).toContain("Not acknowledged");
      expect((await readAck({ home: home.dir })).size).toBe(0);
    }
  });

  it("stdin not a TTY: refuses without asking, exit 3", async () => {
    const stdin = Object.assign(new PassThrough(), { isTTY: false });
    stdin.end("y\n");
    const { stderr, outcome } = run({ stdin });
    const result = await outcome;
    expect(result).toMatchObject({ proceed: false, exitCode: 3, outcome: "refused" });
    expect(result.result.refusal?.unattendedBecause).toBe("no-tty");
    expect(stderr.text()).not.toContain("[y/N]");
    expect(stderr.text()).toContain("refused");
  });

  it("stdout not a TTY: refuses", async () => {
    const { outcome } = run({ stdin: ttyInput("y\n"), stdout: { isTTY: false } });
    expect((await outcome).outcome).toBe("refused");
  });

  it("CI set: refuses even on a terminal", async () => {
    const { outcome } = run({ stdin: ttyInput("y\n"), env: { PATH: "", CI: "true" } });
    expect((await outcome).result.refusal?.unattendedBecause).toBe("ci");
  });

  it("the flag acknowledges without asking; nothing detected is silent", async () => {
    const acked = run({ stdin: ttyInput(), ackFlag: true });
    expect((await acked.outcome).outcome).toBe("acknowledged");
    expect(acked.stderr.text()).toContain("Acknowledged");
    expect(acked.stderr.text()).not.toContain("[y/N]");
    const none = run({ stdin: ttyInput(), config: { model_providers: [] } });
    expect((await none.outcome).outcome).toBe("none");
    expect(none.stderr.text()).toBe("");
  });

  it("colours only when asked or when stderr is a TTY without NO_COLOR", async () => {
    const plain = run({ stdin: ttyInput("n\n") });
    await plain.outcome;
    expect(plain.stderr.text()).not.toContain("\u001b[");
    const stderr = sink(true);
    await runLocalAgentGate({
      config: CLAUDE,
      env: { PATH: "" },
      home: home.dir,
      stdin: ttyInput("n\n"),
      stdout: { isTTY: true },
      stderr,
    });
    expect(stderr.text()).toContain("\u001b[");
    const noColor = sink(true);
    await runLocalAgentGate({
      config: CLAUDE,
      env: { PATH: "", NO_COLOR: "1" },
      home: home.dir,
      stdin: ttyInput("n\n"),
      stdout: { isTTY: true },
      stderr: noColor,
    });
    expect(noColor.text()).not.toContain("\u001b[");
  });
});

describe("askToAcknowledge", () => {
  it("never reads from a non-TTY input", async () => {
    const result = await evaluateLocalAgentGate({
      config: CLAUDE,
      env: { PATH: "" },
      home: home.dir,
      interactive: true,
    });
    const input = Object.assign(new PassThrough(), { isTTY: false });
    input.end("y\n");
    const output = sink();
    expect(
      await askToAcknowledge(result, { input, output, env: { PATH: "" }, home: home.dir }),
    ).toBe(false);
    expect(output.text()).toBe("");
    expect((await readAck({ home: home.dir })).size).toBe(0);
  });
});
