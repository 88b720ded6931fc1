import { fork } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { amend, amendmentRefusal } from "./amend.ts";
import { checkArgv } from "./check.ts";
import { parseRulesFile } from "./codex-rules.ts";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "execpolicy-amend-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("amend", () => {
  it("#38 appends one line, idempotently, and the file loads back", async () => {
    const home = join(dir, "home");
    const a = await amend(["cargo", "build"], "allow", { scope: "user", home });
    const b = await amend(["cargo", "build"], "allow", { scope: "user", home });
    expect(a).toMatchObject({ file: join(home, "rules", "default.rules"), written: true });
    expect(b.written).toBe(false);
    const text = await readFile(a.file, "utf8");
    expect(text).toBe('prefix_rule(pattern=["cargo", "build"], decision="allow")\n');
    const { policy, exampleFailures } = parseRulesFile(text, a.file);
    expect(exampleFailures).toEqual([]);
    expect(checkArgv(policy, ["cargo", "build", "--release"]).decision).toBe("allow");
  });

  it("writes project amendments under .bottlekit/rules and keeps existing content", async () => {
    const project = join(dir, "project");
    await amend(["npm", "test"], "allow", { scope: "project", projectDir: project });
    const file = join(project, ".bottlekit", "rules", "default.rules");
    await writeFile(file, `${await readFile(file, "utf8")}# no trailing newline`);
    await amend(["make", "lint"], "prompt", { scope: "project", projectDir: project });
    expect((await readFile(file, "utf8")).split("\n")).toEqual([
      'prefix_rule(pattern=["npm", "test"], decision="allow")',
      "# no trailing newline",
      'prefix_rule(pattern=["make", "lint"], decision="prompt")',
      "",
    ]);
  });

  it("escapes tokens so the line parses back to the same tokens", async () => {
    const home = join(dir, "escape");
    const tokens = ["my tool", 'say "hi"', "back\\slash", "ünï"];
    const r = await amend(tokens, "allow", { scope: "user", home });
    const rule = [...parseRulesFile(await readFile(r.file, "utf8"), r.file).policy.rules()][0];
    expect([
      rule?.program,
      ...(rule?.rest.map((p) => (p[0] && "literal" in p[0] ? p[0].literal : "")) ?? []),
    ]).toEqual(tokens);
  });

  it("refuses banned prefixes", async () => {
    for (const prefix of [
      ["bash", "-lc"],
      ["bash", "-lc", "ls"],
      ["sh", "-c"],
      ["python3", "-c"],
      ["node", "-e"],
      ["env"],
      ["env", "FOO=1", "ls"],
      ["sudo", "ls"],
      ["git"],
      ["/usr/bin/git"],
      [],
      ["a\nb"],
    ]) {
      expect(amendmentRefusal(prefix), JSON.stringify(prefix)).toBeDefined();
      await expect(
        amend(prefix, "allow", { scope: "user", home: join(dir, "refused") }),
      ).rejects.toMatchObject({ code: "E_AMEND_REFUSED" });
    }
    expect(amendmentRefusal(["git", "status"])).toBeUndefined();
    expect(amendmentRefusal(["python3", "-m", "pytest"])).toBeUndefined();
  });

  it("is safe under concurrent writers (file lock): every line exactly once", async () => {
    const home = join(dir, "concurrent");
    const script = join(dir, "writer.mts");
    await writeFile(
      script,
      `import { amend } from ${JSON.stringify(new URL("./amend.ts", import.meta.url).pathname)};\nconst [home, id] = process.argv.slice(2);\nfor (let i = 0; i < 10; i++) {\n  await amend(["tool", "sub" + (i % 5)], "allow", { scope: "user", home });\n  await amend(["tool" + id, "x" + i], "allow", { scope: "user", home });\n}\n`,
    );
    const run = (id: number) =>
      new Promise<number>((resolve) => {
        const child = fork(script, [home, String(id)], {
          execArgv: ["--import", "tsx"],
          stdio: "ignore",
        });
        child.on("exit", (code) => resolve(code ?? 1));
      });
    expect(await Promise.all([run(1), run(2), run(3)])).toEqual([0, 0, 0]);
    const lines = (await readFile(join(home, "rules", "default.rules"), "utf8")).trim().split("\n");
    expect(lines).toHaveLength(5 + 30);
    expect(new Set(lines).size).toBe(lines.length);
  }, 900_000); // hang guard: hundreds of real codex runs on a busy machine
});
