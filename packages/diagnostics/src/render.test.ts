import { spawnSync } from "node:child_process";
import { PassThrough } from "node:stream";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import {
  CodedError,
  EXIT,
  exitCodeForErrorCode,
  guardPipes,
  isCodedError,
  paint,
  renderCliError,
  shouldColor,
} from "./index.ts";

function sink(): { stream: PassThrough; text: () => string } {
  const stream = new PassThrough();
  const chunks: Buffer[] = [];
  stream.on("data", (c: Buffer) => chunks.push(c));
  return { stream, text: () => Buffer.concat(chunks).toString("utf8") };
}

class DemoError extends CodedError<"E_INVALID_INPUT" | "E_POLICY" | "E_READ"> {
  override readonly name = "DemoError";
}

describe("renderCliError", () => {
  it("prints a known error as one line plus its hint, with the code's exit code", () => {
    const err = sink();
    const code = renderCliError(
      new DemoError("E_INVALID_INPUT", "x.yml:2:3: unknown key", { hint: "did you mean y?" }),
      { program: "demo", stderr: err.stream },
    );
    expect(code).toBe(EXIT.usage);
    expect(err.text()).toBe("demo: x.yml:2:3: unknown key\nhint: did you mean y?\n");
    expect(err.text()).not.toMatch(/\bat /);
  });
  it("writes a JSON error document on stdout with --json", () => {
    const err = sink();
    const out = sink();
    const code = renderCliError(new DemoError("E_POLICY", "forbidden"), {
      program: "demo",
      stderr: err.stream,
      stdout: out.stream,
      json: true,
    });
    expect(code).toBe(EXIT.policy);
    expect(JSON.parse(out.text())).toEqual({
      error: { code: "E_POLICY", message: "forbidden", hint: null },
    });
  });
  it("prints a stack and a bug-report line only for unexpected errors", () => {
    const err = sink();
    expect(renderCliError(new TypeError("boom"), { program: "demo", stderr: err.stream })).toBe(
      EXIT.failure,
    );
    expect(err.text()).toContain("demo: unexpected error\nTypeError: boom");
    expect(err.text()).toContain("This is a bug in bottlekit");
  });
  it("treats Node system errors as unexpected, not as coded errors", () => {
    const sys = Object.assign(new Error("ENOENT: no such file"), {
      code: "ENOENT",
      errno: -2,
      syscall: "open",
    });
    expect(isCodedError(sys)).toBe(false);
    expect(isCodedError(new DemoError("E_READ", "x"))).toBe(true);
  });
  it("lets a CLI map its own codes", () => {
    const err = sink();
    const code = renderCliError(new DemoError("E_READ", "cannot read"), {
      program: "demo",
      stderr: err.stream,
      exitCodeOf: (c) => (c === "E_READ" ? EXIT.usage : undefined),
    });
    expect(code).toBe(EXIT.usage);
  });
  it("knows commander's errors by their code even when a bundle renamed the class", () => {
    const err = sink();
    const version = Object.assign(new Error("0.0.0"), {
      name: "t",
      code: "commander.version",
      exitCode: 0,
    });
    expect(renderCliError(version, { program: "demo", stderr: err.stream })).toBe(EXIT.ok);
    expect(err.text()).toBe("");
  });

  it("maps commander's usage errors to 2 and --help to 0", () => {
    const err = sink();
    const usage = Object.assign(new Error("unknown option"), {
      name: "CommanderError",
      code: "commander.unknownOption",
    });
    expect(renderCliError(usage, { program: "demo", stderr: err.stream })).toBe(EXIT.usage);
    const help = Object.assign(new Error("(outputHelp)"), {
      name: "CommanderError",
      code: "commander.helpDisplayed",
    });
    expect(renderCliError(help, { program: "demo", stderr: err.stream })).toBe(EXIT.ok);
  });
});

describe("exitCodeForErrorCode", () => {
  it("follows the table", () => {
    expect(exitCodeForErrorCode("E_USAGE")).toBe(2);
    expect(exitCodeForErrorCode("E_INVALID_MANIFEST")).toBe(2);
    expect(exitCodeForErrorCode("E_POLICY")).toBe(3);
    expect(exitCodeForErrorCode("E_BUDGET_EXCEEDED")).toBe(3);
    expect(exitCodeForErrorCode("E_INTERNAL")).toBe(1);
  });
});

describe("colour", () => {
  const tty = Object.assign(new PassThrough(), { isTTY: true });
  it("honours NO_COLOR, FORCE_COLOR, TERM=dumb and non-TTY streams", () => {
    expect(shouldColor(tty, {})).toBe(true);
    expect(shouldColor(tty, { NO_COLOR: "1" })).toBe(false);
    expect(shouldColor(tty, { NO_COLOR: "" })).toBe(true);
    expect(shouldColor(tty, { TERM: "dumb" })).toBe(false);
    expect(shouldColor(new PassThrough(), {})).toBe(false);
    expect(shouldColor(new PassThrough(), { FORCE_COLOR: "1" })).toBe(true);
    expect(paint("red", "x", tty, { NO_COLOR: "1" })).toBe("x");
    expect(paint("red", "x", tty, {})).not.toBe("x");
  });
});

describe("guardPipes", () => {
  it("turns EPIPE into a quiet close and rethrows other errors", () => {
    const stream = new PassThrough();
    let closed = 0;
    guardPipes([stream], () => {
      closed++;
    });
    stream.emit("error", Object.assign(new Error("write EPIPE"), { code: "EPIPE" }));
    expect(closed).toBe(1);
    expect(() => stream.emit("error", Object.assign(new Error("EIO"), { code: "EIO" }))).toThrow(
      "EIO",
    );
  });
  it("keeps a real process quiet when its reader goes away (| head -1)", () => {
    const script = fileURLToPath(new URL("../test/fixtures/flood.ts", import.meta.url));
    const res = spawnSync(
      "sh",
      [
        "-c",
        `"${process.execPath}" --conditions=@bottlekit/source --import tsx "${script}" | head -c 10 >/dev/null; echo "status=\${PIPESTATUS:-x}"`,
      ],
      { encoding: "utf8" },
    );
    expect(res.stderr).not.toMatch(/EPIPE|Error|at /);
  });
});
