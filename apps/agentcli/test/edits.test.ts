import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { messagesOf, type Sandbox, sandbox, toolResult } from "./helpers.ts";

let sb: Sandbox;
beforeEach(async () => {
  sb = await sandbox();
});
afterEach(async () => {
  await sb.cleanup();
});

describe("file edits through a scripted conversation", () => {
  it("writes and patches files, sends each result back under its call id, prints the answer", async () => {
    await writeFile(join(sb.ws, "greet.txt"), "hello\nworld\n");
    sb.upstream.enqueue(
      {
        toolCalls: [
          {
            id: "call_w",
            name: "write_file",
            arguments: JSON.stringify({ path: "src/new.txt", content: "fresh\n" }),
          },
          {
            id: "call_p",
            name: "apply_patch",
            arguments: JSON.stringify({
              patch: "--- a/greet.txt\n+++ b/greet.txt\n@@ -1,2 +1,2 @@\n hello\n-world\n+bottle\n",
            }),
          },
        ],
      },
      {
        toolCalls: [
          { id: "call_r", name: "read_file", arguments: JSON.stringify({ path: "greet.txt" }) },
        ],
      },
      { text: "Done: wrote src/new.txt and patched greet.txt." },
    );
    const r = await sb.run(["--model", "gpt-test", "-v", "Edit the files"]);
    // -v: one progress line per tool call on stderr, nothing else
    expect(r.err.split("\n").filter((l) => l !== "")).toEqual([
      "agentcli: step 1: write_file builtin",
      "agentcli: step 1: apply_patch builtin",
      "agentcli: step 2: read_file builtin",
    ]);
    expect(r.code).toBe(0);
    expect(r.out).toBe("Done: wrote src/new.txt and patched greet.txt.\n");
    expect(await readFile(join(sb.ws, "src/new.txt"), "utf8")).toBe("fresh\n");
    expect(await readFile(join(sb.ws, "greet.txt"), "utf8")).toBe("hello\nbottle\n");

    const reqs = sb.upstream.requests;
    expect(reqs).toHaveLength(3);
    const first = reqs[0]?.body as Record<string, unknown>;
    expect(first["model"]).toBe("gpt-test");
    expect(first["tool_choice"]).toBe("auto");
    expect((first["tools"] as unknown[]).length).toBeGreaterThanOrEqual(6);
    expect(messagesOf(first).map((m) => m["role"])).toEqual(["system", "user"]);
    // second request: assistant with both calls, then exactly one tool message per call, in call order
    const second = messagesOf(reqs[1]?.body);
    expect(second.map((m) => m["role"])).toEqual(["system", "user", "assistant", "tool", "tool"]);
    expect(second.slice(3).map((m) => m["tool_call_id"])).toEqual(["call_w", "call_p"]);
    expect(toolResult(reqs[1]?.body, "call_w")).toMatchObject({
      path: "src/new.txt",
      created: true,
    });
    expect(toolResult(reqs[2]?.body, "call_r")).toMatchObject({ content: "hello\nbottle\n" });
    expect(reqs[0]?.headers["authorization"]).toMatch(/^Bearer /);
  });

  it("streams: tool calls assembled from SSE deltas run, and the answer is printed as it arrives", async () => {
    sb.upstream.enqueue(
      {
        toolCalls: [
          {
            id: "call_s",
            name: "write_file",
            arguments: JSON.stringify({ path: "s.txt", content: "streamed tool call\n" }),
          },
        ],
      },
      { pieces: ["All ", "done ", "now."] },
    );
    const r = await sb.run(["--model", "gpt-test", "--stream", "go"]);
    expect(r.code).toBe(0);
    expect(r.out).toBe("All done now.\n");
    expect(await readFile(join(sb.ws, "s.txt"), "utf8")).toBe("streamed tool call\n");
    expect(sb.upstream.requests.every((q) => q.stream)).toBe(true);
    expect(
      (sb.upstream.requests[0]?.body as Record<string, unknown> | undefined)?.["stream_options"],
    ).toEqual({
      include_usage: true,
    });
    expect(r.err).toBe("");
    const json = await sb.run(["--model", "gpt-test", "--stream", "--json", "again"]);
    expect(JSON.parse(json.out)).toMatchObject({
      status: "final",
      exitCode: 0,
      answer: "Hello from the fake upstream.",
    });
  });
});
