import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";

/**
 * Writes `count` manifests into `home` (half bottles with layered `extends` of depth 4, half
 * agents), all valid. Used by the bin smoke test and the bench.
 */
export function writeManifestTree(home: string, count: number): void {
  const bottles = Math.max(1, Math.floor(count / 2));
  mkdirSync(join(home, "bottles"), { recursive: true });
  mkdirSync(join(home, "agents"), { recursive: true });
  for (let i = 0; i < bottles; i++) {
    const parents =
      i < 10
        ? []
        : i < 30
          ? [i % 10]
          : i < 60
            ? [10 + (i % 20), (i * 3) % 10]
            : [30 + (i % 30), 10 + ((i * 7) % 20)];
    const ext = parents.filter((p) => p !== i && p < bottles).map((p) => `b${p}`);
    writeFileSync(
      join(home, "bottles", `b${i}.md`),
      [
        "---",
        ...(ext.length > 0 ? [`extends: [${[...new Set(ext)].join(", ")}]`] : []),
        "env:",
        `  VAR_${i}: value-${i}`,
        `  TOKEN_${i % 7}: "\${HOST_TOKEN_${i % 7}}"`,
        "egress:",
        "  routes:",
        `    - host: api${i}.example.com`,
        "      matches: [{ methods: [GET, POST], paths: [{ type: prefix, value: /v1 }] }]",
        `    - host: shared${i % 5}.example.com`,
        `      auth: { scheme: Bearer, token_ref: HOST_TOKEN_${i % 7} }`,
        "budget:",
        `  anthropic: { tokens: ${1000 + i}, window: 24h }`,
        "sandbox:",
        "  filesystem:",
        `    read_only: [/usr, /opt/b${i}]`,
        "---",
        `Notes for bottle ${i}.`,
        "",
      ].join("\n"),
    );
  }
  for (let i = 0; i < count - bottles; i++) {
    writeFileSync(
      join(home, "agents", `agent-${i}.md`),
      `---\nbottle: b${(i * 7) % bottles}\nmodel: anthropic/claude-sonnet-4\nskills: [git]\n---\nYou are agent ${i}.\n`,
    );
  }
}
