/**
 * node:zlib is required by the first blob that looks compressed, not at import: `bottle run`
 * imports this package, builds its scanners and scans the sandbox's environment before the agent
 * starts, and none of that needs zlib. Counted in a fresh process (`process.moduleLoadList`),
 * since a module once loaded stays loaded.
 */
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import { describe, expect, it } from "vitest";

const TOKEN = `ghp_${"A1b2C3d4E5".repeat(3)}abcdef`;

const SCRIPT = `
const loaded = () => process.moduleLoadList.some((m) => m === "NativeModule zlib");
const m = await import("./src/index.ts");
const secret = { name: "K", value: "sk-ant-api03-Zq9Lm2Xw7Rt4Yp1Vn8Qa5Bc3" };
const known = m.createScanner({ detectors: ["known_secrets"], knownSecrets: [secret] });
for (const v of ["/usr/bin:/bin", "/home/agent", "xterm-256color"]) known.scan(v, "env.V");
const session = m.createScanner({ detectors: m.OUTBOUND_DETECTORS, knownSecrets: [secret] });
session.scan(JSON.stringify({ messages: [{ role: "user", content: "hello" }] }));
const before = loaded();
const r = session.scan("data=" + ${JSON.stringify(gzipSync(`token ${TOKEN}`).toString("base64"))});
console.log(JSON.stringify({ before, after: loaded(), rules: r.findings.map((f) => f.rule) }));
`;

describe("node:zlib", () => {
  it("is not loaded by the import, the scanners' construction or scans of plain text; a gzip blob loads it and is decoded", () => {
    const child = spawnSync(
      process.execPath,
      ["--import", "tsx", "--conditions=@bottlekit/source", "--input-type=module", "-e", SCRIPT],
      { cwd: fileURLToPath(new URL("..", import.meta.url)), encoding: "utf8" },
    );
    expect(child.stderr).toBe("");
    const last = child.stdout.trim().split("\n").at(-1) as string;
    const report = JSON.parse(last) as { before: boolean; after: boolean; rules: string[] };
    expect(report.before).toBe(false);
    expect(report.after).toBe(true);
    expect(report.rules).toContain("github-pat");
  });
});
