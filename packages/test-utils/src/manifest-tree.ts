import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";

/**
 * Writes a realistic manifest tree into `home`: `count` manifests, half bottles (layered with
 * single and multiple `extends`, so diamonds occur) and half agents, all valid. Returns the
 * agent names. Used by the manifest and bottle tests and benches.
 */
export function writeManifestTree(home: string, count: number): string[] {
  const bottles = Math.max(1, Math.floor(count / 2));
  const agents = count - bottles;
  mkdirSync(join(home, "bottles"), { recursive: true });
  mkdirSync(join(home, "agents"), { recursive: true });
  // The rule files the bottles name (validation refuses a bottle whose rule file is missing).
  mkdirSync(join(home, "rules"), { recursive: true });
  for (let r = 0; r < Math.min(4, bottles); r++) {
    writeFileSync(
      join(home, "rules", `b${r}.rules`),
      `prefix_rule(pattern = ["git", "status"], decision = "allow")\n`,
    );
  }
  for (let i = 0; i < bottles; i++) {
    // Layers of bounded depth, like real setups: 10 roots, then bottles extending one or two
    // bottles of lower layers (diamonds through shared roots). Depth stays 4 whatever `count`.
    const parents: string[] = [];
    if (i >= 10 && i < 30) parents.push(`b${i % 10}`);
    else if (i >= 30 && i < 60) parents.push(`b${10 + (i % 20)}`, `b${(i * 3) % 10}`);
    else if (i >= 60) parents.push(`b${30 + (i % 30)}`, `b${10 + ((i * 7) % 20)}`);
    const lines = [
      "---",
      `description: bottle ${i}`,
      parents.length === 0
        ? ""
        : `extends: [${[...new Set(parents.filter((p) => p !== `b${i}`))].join(", ")}]`,
      "env:",
      `  VAR_${i}: value-${i}`,
      `  TOKEN_${i % 7}: "\${HOST_TOKEN_${i % 7}}"`,
      '  ASKED: "?your key"',
      "egress:",
      "  routes:",
      `    - host: api${i}.example.com`,
      "      matches: [{ methods: [GET, POST], paths: [{ type: prefix, value: /v1 }] }]",
      `    - host: shared${i % 5}.example.com`,
      `      auth: { scheme: Bearer, token_ref: HOST_TOKEN_${i % 7} }`,
      "budget:",
      `  anthropic: { tokens: ${1000 + i}, usd: 2.5, window: 24h }`,
      "sandbox:",
      "  filesystem:",
      `    read_only: [/usr, /opt/b${i}]`,
      "exec_policy:",
      `  rules: [rules/b${i % 4}.rules]`,
      "---",
      `Notes for bottle ${i}.`,
      "",
    ].filter((l) => l !== "");
    writeFileSync(join(home, "bottles", `b${i}.md`), `${lines.join("\n")}\n`);
  }
  const names: string[] = [];
  for (let i = 0; i < agents; i++) {
    const name = `agent-${i}`;
    names.push(name);
    writeFileSync(
      join(home, "agents", `${name}.md`),
      `---\nbottle: b${(i * 7) % bottles}\nmodel: anthropic/claude-sonnet-4\nskills: [git, tests]\nbudget:\n  anthropic: { tokens: 500 }\ngit_identity: { name: Agent ${i}, email: a${i}@example.com }\n---\nYou are agent ${i}.\n`,
    );
  }
  return names;
}
