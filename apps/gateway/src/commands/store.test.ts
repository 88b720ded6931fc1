import { captureIo, createTempHome, type TempHome } from "@bottlekit/test-utils";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type CliIo, run } from "../cli.ts";

let home: TempHome;
let env: NodeJS.ProcessEnv;
beforeEach(async () => {
  home = await createTempHome("bottlekit-store-");
  env = { BOTTLEKIT_HOME: home.dir, PATH: process.env["PATH"] };
});
afterEach(() => home.cleanup());

function capture() {
  const c = captureIo(env);
  const io: CliIo = { ...c.io, interactive: false };
  return { io, out: c.out, err: c.err };
}

describe("store migrate", () => {
  it("is a registered command that says what it needs", async () => {
    const help = capture();
    expect(await run(["store", "migrate", "--help"], help.io)).toBe(0);
    expect(help.out()).toContain("--from <url>");
    const c = capture();
    expect(await run(["store", "migrate", "--from", `sqlite:${home.dir}/a.db`], c.io)).toBe(2);
    expect(c.err()).toContain("store migrate needs --from sqlite:<path> and --to postgres://");
  });

  it("refuses a target that is not a store URL, without echoing a password", async () => {
    const c = capture();
    const code = await run(
      [
        "store",
        "migrate",
        "--from",
        `sqlite:${home.dir}/a.db`,
        "--to",
        "mysql://u:hunter2secret@db/x",
      ],
      c.io,
    );
    expect(code).toBe(2);
    expect(c.err()).not.toContain("hunter2secret");
  });
});
