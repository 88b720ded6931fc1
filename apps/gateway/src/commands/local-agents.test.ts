import { captureIo, createTempHome, type TempHome } from "@bottlekit/test-utils";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type CliIo, run } from "../cli.ts";

let home: TempHome;
let env: NodeJS.ProcessEnv;
beforeEach(async () => {
  home = await createTempHome("bottlekit-la-");
  env = { BOTTLEKIT_HOME: home.dir, PATH: process.env["PATH"] };
});
afterEach(() => home.cleanup());

/** An attended run (a terminal) whose answers come from `answers`, in order. */
function attended(answers: boolean[]) {
  const c = captureIo(env);
  const asked: string[] = [];
  const stop = Promise.resolve("SIGTERM");
  const io: CliIo = {
    ...c.io,
    interactive: true,
    stopSignal: stop,
    ask: async (q) => {
      asked.push(q);
      return answers.shift() ?? false;
    },
  };
  return { io, err: c.err, asked };
}

describe("up with a local-agent provider, attended", () => {
  it("asks once; no stops with exit 3; yes records the acknowledgement and later runs do not ask", async () => {
    const file = await home.write("la.yml", "model_providers:\n  - model: claude-cli/sonnet\n");
    const args = ["up", "--config", file, "--listen", "127.0.0.1:0"];

    const no = attended([false]);
    expect(await run(args, no.io)).toBe(3);
    expect(no.asked).toHaveLength(1);
    expect(no.err()).toContain("not acknowledged; the gateway did not start");

    const yes = attended([true]);
    expect(await run(args, yes.io)).toBe(0);
    expect(yes.asked).toHaveLength(1);
    expect(yes.err()).toContain("acknowledged; later runs stay quiet");

    const later = attended([]);
    expect(await run(args, later.io)).toBe(0);
    expect(later.asked).toHaveLength(0);
  });

  it("the panel's revoke hint names a flag that exists, and the flag makes it ask again", async () => {
    const file = await home.write("la.yml", "model_providers:\n  - model: claude-cli/sonnet\n");
    const args = ["up", "--config", file, "--listen", "127.0.0.1:0"];
    const first = attended([true]);
    expect(await run(args, first.io)).toBe(0);
    expect(first.err()).toContain("bottle-gateway up --revoke-local-agents");
    const again = attended([false]);
    expect(await run([...args, "--revoke-local-agents"], again.io)).toBe(3);
    expect(again.err()).toContain("revoked the local-agent acknowledgement of");
    expect(again.asked).toHaveLength(1);
  });
});
