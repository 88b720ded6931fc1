import { existsSync, readFileSync } from "node:fs";
import { mkdir, readFile, stat, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { PassThrough, Writable } from "node:stream";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { run } from "../src/cli.ts";
import { type Sandbox, sandbox, script, toolResult } from "./helpers.ts";

let sb: Sandbox;
beforeEach(async () => {
  sb = await sandbox();
});
afterEach(async () => {
  await sb.cleanup();
});

const call = (id: string, name: string, args: unknown) => ({
  id,
  name,
  arguments: JSON.stringify(args),
});

/** Process `pid` is gone (or a zombie waiting for its reaper: it runs no code). */
function dead(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).startsWith("Z");
  } catch {
    return true;
  }
}

describe("workspace confinement", () => {
  it("refuses .. and symbolic-link escapes for reads and writes, and changes nothing outside", async () => {
    const outside = join(sb.dir, "outside");
    await mkdir(outside);
    await writeFile(join(outside, "secret.txt"), "top secret\n");
    await symlink(outside, join(sb.ws, "link"));
    await symlink(join(outside, "secret.txt"), join(sb.ws, "file-link"));
    await symlink(join(outside, "new.txt"), join(sb.ws, "dangling"));
    sb.upstream.enqueue(
      {
        toolCalls: [
          call("c1", "read_file", { path: "../outside/secret.txt" }),
          call("c2", "read_file", { path: "link/secret.txt" }),
          call("c3", "read_file", { path: "file-link" }),
          call("c4", "write_file", { path: "link/new.txt", content: "x" }),
          call("c5", "write_file", { path: "dangling", content: "x" }),
          call("c6", "read_file", { path: join(outside, "secret.txt") }),
          call("c7", "apply_patch", {
            patch: "--- /dev/null\n+++ b/../outside/p.txt\n@@ -0,0 +1 @@\n+x\n",
          }),
          call("c8", "list_dir", { path: ".." }),
          call("c9", "write_file", {
            path: ".bottlekit/rules/default.rules",
            content: 'prefix_rule(pattern=["rm"], decision="allow")',
          }),
        ],
      },
      { text: "could not" },
    );
    const r = await sb.run(["-m", "m", "escape"]);
    expect(r.code).toBe(0);
    const body = sb.upstream.requests[1]?.body;
    for (const id of ["c1", "c2", "c3", "c4", "c5", "c6", "c7", "c8"]) {
      expect(toolResult(body, id)).toMatchObject({ error: { code: "PATH_ESCAPE" } });
    }
    expect(toolResult(body, "c9")).toMatchObject({ error: { code: "PROTECTED" } });
    expect(JSON.stringify(sb.upstream.requests[1]?.body)).not.toContain("top secret");
    expect(existsSync(join(outside, "new.txt"))).toBe(false);
    expect(existsSync(join(outside, "p.txt"))).toBe(false);
    expect(existsSync(join(sb.ws, ".bottlekit"))).toBe(false);
  });
});

describe("the exec policy gate", () => {
  it("never runs a forbidden script (checked whole) and gives the model the rule's justification", async () => {
    const policy = join(sb.dir, "policy.rules");
    await writeFile(
      policy,
      'prefix_rule(pattern=["touch"], decision="allow")\nprefix_rule(pattern=["rm"], decision="forbidden", justification="deleting files is not allowed here; move them to trash/ instead")\n',
    );
    await writeFile(join(sb.ws, "keep.txt"), "keep");
    sb.upstream.enqueue(
      { toolCalls: [call("f1", "shell", { command: "touch ran-before && rm -f keep.txt" })] },
      { toolCalls: [call("f2", "shell", { command: "touch allowed.txt" })] },
      { text: "ok" },
    );
    // --rules is what `bottle run` passes for agentcli (an alias of --policy)
    const r = await sb.run(["-m", "m", "--rules", policy, "clean up"]);
    expect(r.code).toBe(0);
    const res = toolResult(sb.upstream.requests[1]?.body, "f1") as {
      error: { code: string; justification: string; message: string };
    };
    expect(res.error.code).toBe("FORBIDDEN_BY_POLICY");
    expect(res.error.justification).toBe(
      "deleting files is not allowed here; move them to trash/ instead",
    );
    expect(existsSync(join(sb.ws, "ran-before"))).toBe(false); // nothing of the script ran
    expect(existsSync(join(sb.ws, "keep.txt"))).toBe(true);
    expect(toolResult(sb.upstream.requests[2]?.body, "f2")).toMatchObject({ exit_code: 0 });
    expect(existsSync(join(sb.ws, "allowed.txt"))).toBe(true);
    const audit = await sb.auditLines();
    const tools = audit.filter((l) => l["event"] === "tool.call");
    expect(tools.map((t) => t["decision"])).toEqual(["forbidden", "allow"]);
    expect(tools[1]).toMatchObject({ argv: ["bash", "-c", "touch allowed.txt"], exit: 0 });
  });

  it("refuses an allowed command whose redirect writes a protected path", async () => {
    const policy = join(sb.dir, "policy.rules");
    await writeFile(policy, 'prefix_rule(pattern=["echo"], decision="allow")\n');
    sb.upstream.enqueue(
      {
        toolCalls: [
          call("w1", "shell", {
            command:
              'echo \'prefix_rule(pattern=["rm"], decision="allow")\' >> .bottlekit/rules/default.rules',
          }),
        ],
      },
      { text: "ok" },
    );
    const r = await sb.run(["-m", "m", "--policy", policy, "widen"]);
    expect(r.code).toBe(0);
    expect(toolResult(sb.upstream.requests[1]?.body, "w1")).toMatchObject({
      error: { code: "PROTECTED" },
    });
    expect(existsSync(join(sb.ws, ".bottlekit"))).toBe(false);
  });

  it("refuses a prompt-level command when unattended, and asks on a TTY", async () => {
    // no policy file: nothing matches, so the default decision (prompt) applies
    sb.upstream.enqueue(
      { toolCalls: [call("p1", "shell", { command: "touch asked.txt" })] },
      { text: "ok" },
    );
    const r = await sb.run(["-m", "m", "--json", "make a file"]);
    expect(r.code).toBe(0);
    expect(toolResult(sb.upstream.requests[1]?.body, "p1")).toMatchObject({
      error: { code: "APPROVAL_REQUIRED" },
    });
    expect(existsSync(join(sb.ws, "asked.txt"))).toBe(false);
    expect(JSON.parse(r.out).toolCalls[0]).toMatchObject({
      name: "shell",
      decision: "refused-unattended",
    });

    // the same call on a terminal: the user answers y
    sb.upstream.enqueue(
      { toolCalls: [call("p2", "shell", { command: "touch asked.txt" })] },
      { text: "ok" },
    );
    const stdin = Object.assign(new PassThrough(), { isTTY: true });
    let err = "";
    const stderr = Object.assign(
      new Writable({
        write(chunk, _e, cb) {
          err += String(chunk);
          if (err.includes("[y/N]")) stdin.write("y\n");
          cb();
        },
      }),
      { isTTY: true },
    );
    const out = new PassThrough();
    const code = await run(["-C", sb.ws, "-m", "m", "make a file"], {
      stdout: out,
      stderr,
      stdin,
      env: sb.env,
      cwd: sb.dir,
    });
    expect(code).toBe(0);
    expect(err).toContain("touch asked.txt");
    expect(existsSync(join(sb.ws, "asked.txt"))).toBe(true);
  });

  it("kills a hanging tools.json tool with its children at the timeout", async () => {
    const kit = join(sb.dir, "kit");
    await script(
      join(kit, "tools/bin/hang"),
      "#!/bin/sh\nsleep 300 &\necho $! > child.pid\necho $$ > main.pid\nwait\n",
    );
    await writeFile(
      join(kit, "tools.json"),
      JSON.stringify({
        tools: [
          {
            name: "hang",
            description: "never ends",
            command: ["./tools/bin/hang"],
            timeoutSec: 0.5,
          },
        ],
      }),
    );
    const policy = join(sb.dir, "p.rules");
    await writeFile(policy, 'prefix_rule(pattern=["./tools/bin/hang"], decision="allow")\n');
    sb.upstream.enqueue({ toolCalls: [call("h1", "hang", {})] }, { text: "gave up" });
    const r = await sb.run([
      "-m",
      "m",
      "--tools",
      join(kit, "tools.json"),
      "--policy",
      policy,
      "hang",
    ]);
    expect(r.code).toBe(0);
    expect(toolResult(sb.upstream.requests[1]?.body, "h1")).toMatchObject({
      error: { code: "TIMEOUT" },
    });
    const child = Number(await readFile(join(sb.ws, "child.pid"), "utf8"));
    const main = Number(await readFile(join(sb.ws, "main.pid"), "utf8"));
    expect(child).toBeGreaterThan(0);
    expect(dead(main)).toBe(true);
    expect(dead(child)).toBe(true);
    const rec = (await sb.auditLines()).find((l) => l["event"] === "tool.call");
    expect(rec).toMatchObject({
      name: "hang",
      timedOut: true,
      exit: -1,
      envKeys: ["HOME", "PATH"],
    });
  });
});

describe("tool processes", () => {
  it("caps output with a marker and passes shell no variable outside its allowlist", async () => {
    const kit = join(sb.dir, "kit");
    await script(join(kit, "tools/bin/big"), "#!/bin/sh\nhead -c 3000 /dev/zero | tr '\\0' b\n");
    await writeFile(
      join(kit, "tools.json"),
      JSON.stringify({
        tools: [
          { name: "big", command: ["./tools/bin/big"] },
          { name: "unruled", command: ["/bin/true"] },
        ],
      }),
    );
    const policy = join(sb.dir, "p.rules");
    await writeFile(
      policy,
      'prefix_rule(pattern=["head"], decision="allow")\nprefix_rule(pattern=["tr"], decision="allow")\nprefix_rule(pattern=["printenv"], decision="allow")\nprefix_rule(pattern=["./tools/bin/big"], decision="allow")\n',
    );
    sb.upstream.enqueue(
      {
        toolCalls: [
          call("o1", "shell", { command: "head -c 5000 /dev/zero | tr '\\0' a" }),
          call("o2", "big", {}),
          call("o3", "shell", { command: "printenv" }),
          call("o4", "unruled", {}),
        ],
      },
      { text: "ok" },
    );
    const r = await sb.run(
      [
        "-m",
        "m",
        "--tools",
        join(kit, "tools.json"),
        "--policy",
        policy,
        "--tool-output-cap",
        "1000",
        "--shell-env",
        "EXTRA_OK",
        "go",
      ],
      {
        BOTTLEKIT_GATEWAY_KEY: "bk_should_not_leak_0123456789",
        EXTRA_OK: "yes",
        UNRELATED: "no",
      },
    );
    expect(r.code).toBe(0);
    const body = sb.upstream.requests[1]?.body;
    const o1 = toolResult(body, "o1") as { stdout: string; exit_code: number };
    expect(o1.exit_code).toBe(0);
    expect(o1.stdout).toBe(`${"a".repeat(1000)}\n[truncated: 4000 more bytes]`);
    expect(toolResult(body, "o2")).toMatchObject({
      truncated: true,
      totalBytes: 3000,
      output: "b".repeat(1000),
      marker: "[truncated: 2000 more bytes]",
    });
    const envOut = (toolResult(body, "o3") as { stdout: string }).stdout;
    expect(envOut).toContain("EXTRA_OK=yes");
    expect(envOut).not.toContain("UNRELATED");
    expect(envOut).not.toContain("bk_should_not_leak");
    expect(envOut).not.toContain("TEST_UPSTREAM_KEY");
    // a tools.json command no rule allows is prompt-level: refused unattended, never run
    expect(toolResult(body, "o4")).toMatchObject({ error: { code: "APPROVAL_REQUIRED" } });
    const rec = (await sb.auditLines()).find((l) => l["event"] === "tool.call" && l["id"] === "o1");
    expect(rec).toMatchObject({ stdoutBytes: 5000, truncated: true });
  });
});

describe("tool failures", () => {
  it("a tools.json failure passes its stderr JSON through; a failing shell command reports its exit code", async () => {
    const kit = join(sb.dir, "kit");
    await script(
      join(kit, "tools/bin/boom"),
      '#!/bin/sh\necho \'{"error":"boom","detail":42}\' >&2\nexit 3\n',
    );
    await script(join(kit, "tools/bin/plain"), "#!/bin/sh\necho not json >&2\nexit 4\n");
    await writeFile(
      join(kit, "tools.json"),
      JSON.stringify({
        tools: [
          { name: "boom", command: ["./tools/bin/boom"] },
          { name: "plain", command: ["./tools/bin/plain"] },
        ],
      }),
    );
    const policy = join(sb.dir, "p.rules");
    await writeFile(
      policy,
      'prefix_rule(pattern=[["./tools/bin/boom", "./tools/bin/plain", "false"]], decision="allow")\n',
    );
    sb.upstream.enqueue(
      {
        toolCalls: [
          call("x1", "boom", {}),
          call("x2", "plain", {}),
          call("x3", "shell", { command: "false" }),
        ],
      },
      { text: "ok" },
    );
    const r = await sb.run([
      "-m",
      "m",
      "--tools",
      join(kit, "tools.json"),
      "--policy",
      policy,
      "go",
    ]);
    expect(r.code).toBe(0);
    const body = sb.upstream.requests[1]?.body;
    expect(toolResult(body, "x1")).toEqual({
      error: { code: "TOOL_FAILED", exit: 3, message: { error: "boom", detail: 42 } },
    });
    expect(toolResult(body, "x2")).toEqual({
      error: { code: "TOOL_FAILED", exit: 4, message: "not json" },
    });
    expect(toolResult(body, "x3")).toMatchObject({ exit_code: 1, timed_out: false });
  });
});

describe("the audit log", () => {
  it("records decisions and sizes but no secret from tool output, arguments or the environment", async () => {
    const token = `ghp_${"aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3zA5"}`;
    const envSecret = "my-private-value-0123456789";
    await writeFile(join(sb.ws, "creds.txt"), `GITHUB_TOKEN=${token}\n`);
    const policy = join(sb.dir, "p.rules");
    await writeFile(
      policy,
      'prefix_rule(pattern=["cat"], decision="allow")\nprefix_rule(pattern=["echo"], decision="allow")\n',
    );
    sb.upstream.enqueue(
      {
        toolCalls: [
          call("s1", "shell", { command: "cat creds.txt" }),
          call("s2", "read_file", { path: "creds.txt" }),
          call("s3", "shell", { command: `echo ${token} ${envSecret}` }),
        ],
      },
      { text: "read it" },
    );
    const r = await sb.run(["-m", "m", "--policy", policy, "--json", "read creds"], {
      DEPLOY_SECRET: envSecret,
    });
    expect(r.code).toBe(0);
    // the model did get the output (that is what the tools are for)
    expect(toolResult(sb.upstream.requests[1]?.body, "s1")).toMatchObject({
      stdout: `GITHUB_TOKEN=${token}\n`,
    });
    const text = await readFile(sb.audit, "utf8");
    expect((await stat(sb.audit)).mode & 0o777).toBe(0o600);
    expect(text).not.toContain(token);
    expect(text).not.toContain(envSecret);
    expect(text).not.toContain(sb.env["TEST_UPSTREAM_KEY"] as string);
    expect(r.out).not.toContain(token);
    const lines = await sb.auditLines();
    expect(lines.map((l) => l["event"])).toEqual(
      expect.arrayContaining(["run.start", "model.call", "tool.call", "run.end"]),
    );
    const s1 = lines.find((l) => l["event"] === "tool.call" && l["id"] === "s1");
    expect(s1).toMatchObject({ decision: "allow", exit: 0, stdoutBytes: token.length + 14 });
    const s3 = lines.find((l) => l["event"] === "tool.call" && l["id"] === "s3");
    expect(String((s3?.["argv"] as string[] | undefined)?.[2])).toContain("[REDACTED:");
    const model = lines.find((l) => l["event"] === "model.call");
    expect(model).toMatchObject({ step: 1, finishReason: "tool_calls" });
    expect(typeof model?.["latencyMs"]).toBe("number");
    expect(model?.["usage"]).toMatchObject({
      input: expect.any(Number),
      output: expect.any(Number),
    });
  });
});
