import { existsSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { messagesOf, type Sandbox, sandbox, script, toolResult } from "./helpers.ts";

let sb: Sandbox;
beforeEach(async () => {
  sb = await sandbox();
});
afterEach(async () => {
  await sb.cleanup();
});

describe("prompt and messages", () => {
  it("reads the prompt from an argument, a file or stdin, after system and developer messages", async () => {
    await writeFile(join(sb.dir, "task.md"), "from a file");
    await writeFile(join(sb.dir, "dev.md"), "dev from file");
    sb.upstream.setDefaultReply({ text: "ok" });
    expect(
      (
        await sb.run([
          "-m",
          "m",
          "--system",
          "SYS",
          "--developer",
          "D1",
          "--developer-file",
          "dev.md",
          "help",
        ])
      ).code,
    ).toBe(0);
    expect(messagesOf(sb.upstream.requests[0]?.body)).toEqual([
      { role: "system", content: "SYS" },
      { role: "developer", content: "D1" },
      { role: "developer", content: "dev from file" },
      { role: "user", content: "help" }, // the word "help" is a prompt, not a command
    ]);
    expect((await sb.run(["-m", "m", "--prompt-file", "task.md"])).code).toBe(0);
    expect(messagesOf(sb.upstream.requests[1]?.body).at(-1)).toEqual({
      role: "user",
      content: "from a file",
    });
    expect((await sb.run(["-m", "m", "-"], {}, "from stdin")).code).toBe(0);
    expect(messagesOf(sb.upstream.requests[2]?.body).at(-1)).toEqual({
      role: "user",
      content: "from stdin",
    });
  });

  it("exits 2 on bad input before any model call", async () => {
    await writeFile(join(sb.dir, "task.md"), "x");
    const cases: [string[], NodeJS.ProcessEnv, RegExp][] = [
      [["-m", "m", "--prompt-file", "task.md", "also an argument"], {}, /mutually exclusive/],
      [["-m", "m", "--prompt-file", "missing.md"], {}, /missing\.md: cannot read the prompt/],
      [
        ["-m", "m", "--max-steps", "0", "x"],
        {},
        /flag --max-steps: "0" is not a whole number from 1 to 200/,
      ],
      [["-m", "m", "x"], { AGENTCLI_MAX_STEPS: "many" }, /env AGENTCLI_MAX_STEPS: "many"/],
      [
        ["-m", "gpt-4o", "x"],
        { AGENTCLI_BASE_URL: undefined },
        /the gateway routes provider\/model names\nhint: e\.g\. openai\/gpt-4o/,
      ],
      [["-m", "m", "--base-url", "http://user:pw@example.com/v1", "x"], {}, /carries credentials/],
      [["-m", "m", "--api-key-env", "sk-123", "x"], {}, /not an environment variable name/],
      [["-m", "m", "-C", "nowhere", "x"], {}, /the workspace is not a directory/],
      [["-m", "m", "   "], {}, /the prompt is empty/],
    ];
    for (const [args, env, re] of cases) {
      const r = await sb.run(args, env);
      expect(r.code, args.join(" ")).toBe(2);
      expect(r.err).toMatch(re);
      expect(r.err).not.toContain("    at "); // no stack trace for ordinary errors
    }
    expect(sb.upstream.requests).toHaveLength(0);
    // with --json, stdout is still one JSON document
    const j = await sb.run(["-m", "m", "--json", "--max-steps", "0", "x"]);
    expect(j.code).toBe(2);
    expect(JSON.parse(j.out)).toEqual({
      error: {
        code: "E_USAGE",
        message: expect.stringContaining("--max-steps"),
        hint: expect.any(String),
      },
    });
  });

  it("--direct takes the endpoint and key variable from provider-registry", async () => {
    const noBase = { AGENTCLI_BASE_URL: undefined, AGENTCLI_API_KEY_ENV: undefined };
    const cfg = async (model: string) => {
      const r = await sb.run(["--direct", "-m", model, "--print-config", "--json"], noBase);
      return { code: r.code, err: r.err, s: r.code === 0 ? JSON.parse(r.out).settings : undefined };
    };
    const openai = await cfg("openai/gpt-4o");
    expect(openai.s).toMatchObject({
      baseUrl: { value: "https://api.openai.com/v1", source: "provider-registry (openai)" },
      model: { value: "gpt-4o", source: "flag --model" },
      apiKey: { value: "unset (OPENAI_API_KEY is empty)", source: "provider-registry (openai)" },
      direct: { value: "openai", source: "flag --direct" },
    });
    expect((await cfg("gemini/gemini-2.0-flash")).s.baseUrl.value).toBe(
      "https://generativelanguage.googleapis.com/v1beta/openai",
    );
    const anthropic = await cfg("anthropic/claude-sonnet-4-5");
    expect(anthropic.code).toBe(2);
    expect(anthropic.err).toContain("has no OpenAI chat completions endpoint");
    const typo = await cfg("opnai/gpt-4o");
    expect(typo.code).toBe(2);
    expect(typo.err).toContain('did you mean "openai"?');
    const both = await sb.run(["--direct", "--base-url", "http://x/v1", "-m", "openai/x", "go"]);
    expect(both.code).toBe(2);
    expect(both.err).toContain("mutually exclusive");
  });

  it("refuses to run as root unless AGENTCLI_ALLOW_ROOT=1 (CI containers run as root)", async () => {
    sb.upstream.setDefaultReply({ text: "ran" });
    const r = await sb.run(["-m", "m", "task"], { AGENTCLI_ALLOW_ROOT: undefined });
    if (process.getuid?.() === 0) {
      expect(r.code).toBe(3);
      expect(r.err).toContain("refusing to run an agent as root");
      expect(sb.upstream.requests).toHaveLength(0);
    } else {
      expect(r.code).toBe(0);
      expect(r.out).toBe("ran\n");
    }
  });

  it("--print-config names each setting's source and never prints the key", async () => {
    const r = await sb.run(["--print-config", "--max-steps", "7", "--json"], {
      AGENTCLI_MODEL: "openai/gpt-x",
    });
    expect(r.code).toBe(0);
    const { settings } = JSON.parse(r.out);
    expect(settings.maxSteps).toEqual({ value: 7, source: "flag --max-steps" });
    expect(settings.model).toEqual({ value: "openai/gpt-x", source: "env AGENTCLI_MODEL" });
    expect(settings.httpRetries).toEqual({ value: 2, source: "default" });
    expect(settings.apiKey.value).toBe("set (in TEST_UPSTREAM_KEY)");
    expect(r.out).not.toContain(sb.env["TEST_UPSTREAM_KEY"] as string);
    const text = await sb.run(["--print-config"]);
    expect(text.out).toMatch(
      /^baseUrl\s+http:\/\/127\.0\.0\.1:\d+\/v1\s+\[env AGENTCLI_BASE_URL\]$/m,
    );
  });
});

describe("tools.json", () => {
  it("reports unknown keys with a key path and did-you-mean, and a missing program, before any call", async () => {
    const kit = join(sb.dir, "kit");
    const bad = [
      [
        { tools: [{ name: "t", command: ["/bin/true"], envPasthrough: ["X"] }] },
        /tools\[0\]\.envPasthrough: unknown key; did you mean "envPassthrough"\?/,
      ],
      [
        { tools: [{ name: "t", command: ["bin/x"] }] },
        /tools\[0\]\.command\[0\]: a relative command\[0\] must be under \.\/tools\/bin\//,
      ],
      [
        { tools: [{ name: "t", command: ["./tools/bin/missing"] }] },
        /tools\[0\]\.command\[0\]: .*missing: not found or not executable/,
      ],
      [
        { tools: [{ name: "t", command: ["/bin/true"], envPassthrough: ["OAI-KEY"] }] },
        /tools\[0\]\.envPassthrough\[0\]: not a variable name/,
      ],
      [{ tools: [{ name: "shell", command: ["/bin/true"] }] }, /"shell" is a built-in tool/],
      [{ tool: [] }, /tool: unknown key; did you mean "tools"\?/],
    ] as const;
    for (const [doc, re] of bad) {
      await script(join(kit, "tools.json"), JSON.stringify(doc));
      const r = await sb.run(["-m", "m", "--tools", join(kit, "tools.json"), "x"]);
      expect(r.code, JSON.stringify(doc)).toBe(2);
      expect(r.err).toMatch(re);
    }
    await writeFile(join(kit, "tools.json"), '{"tools": [\n  {"name": "t",}\n]}');
    const r = await sb.run(["-m", "m", "--tools", join(kit, "tools.json"), "x"]);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/tools\.json:2:\d+: not valid JSON/);
    expect(sb.upstream.requests).toHaveLength(0);
  });

  it("runs the calls of one turn in parallel, JSON on stdin and stdout, env limited to the allowlist", async () => {
    const kit = join(sb.dir, "kit");
    // each tool waits for the other's flag: they can only both succeed when they run at the same time
    const waiter = (mine: string, theirs: string) =>
      `#!/bin/sh\nread input\ntouch ${mine}\ni=0\nwhile [ ! -e ${theirs} ]; do i=$((i+1)); [ $i -gt 400 ] && exit 7; sleep 0.01; done\nprintf '{"got":%s,"token":"%s","other":"%s"}' "$input" "$MY_TOKEN" "$NOT_PASSED"\n`;
    await script(join(kit, "tools/bin/a"), waiter("a.flag", "b.flag"));
    await script(join(kit, "tools/bin/b"), waiter("b.flag", "a.flag"));
    await writeFile(
      join(kit, "tools.json"),
      JSON.stringify({
        tools: [
          {
            name: "tool_a",
            description: "a",
            command: ["./tools/bin/a"],
            envPassthrough: ["my_token"],
            schema: { type: "object", properties: { n: { type: "number" } } },
          },
          { name: "tool_b", description: "b", command: ["./tools/bin/b"] },
        ],
      }),
    );
    const policy = join(sb.dir, "p.rules");
    await writeFile(
      policy,
      'prefix_rule(pattern=[["./tools/bin/a", "./tools/bin/b"]], decision="allow")\n',
    );
    sb.upstream.enqueue(
      {
        toolCalls: [
          { id: "a1", name: "tool_a", arguments: '{"n":1}' },
          { id: "b1", name: "tool_b", arguments: '{"n":2}' },
          { id: "u1", name: "nope", arguments: "{}" },
        ],
      },
      { text: "both ran" },
    );
    const r = await sb.run(
      ["-m", "m", "--tools", join(kit, "tools.json"), "--policy", policy, "go"],
      { MY_TOKEN: "tok", NOT_PASSED: "np" },
    );
    expect(r.code).toBe(0);
    const body = sb.upstream.requests[1]?.body;
    expect(toolResult(body, "a1")).toEqual({ got: { n: 1 }, token: "tok", other: "" });
    expect(toolResult(body, "b1")).toEqual({ got: { n: 2 }, token: "", other: "" });
    expect(toolResult(body, "u1")).toMatchObject({ error: { code: "UNKNOWN_TOOL" } });
    const first = sb.upstream.requests[0]?.body as
      | { tools: { function: { name: string; parameters: unknown } }[] }
      | undefined;
    const tools = first?.tools ?? [];
    expect(tools.find((t) => t.function.name === "tool_a")?.function.parameters).toEqual({
      type: "object",
      properties: { n: { type: "number" } },
    });
    expect(existsSync(join(sb.ws, "a.flag"))).toBe(true);
  });
});
