// Every code block in every package README is a fixture: TypeScript blocks are type-checked
// against the built package (so an API the README shows must exist with the types it shows),
// YAML and JSON blocks must parse, manifest blocks must parse and validate, and every command
// a shell block runs through one of our bins must be a real command of that bin.
// Runs after the build in npm test. A block fenced as ```ts no-check is prose (a signature, an
// outline) and is skipped; keep those rare.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { test } from "node:test";
import { root, workspacePackages } from "./lib.mjs";

const BINS = {
  bottle: "apps/bottle/bin/bottle.js",
  "bottle-gateway": "apps/gateway/bin/bottle-gateway.js",
  agentcli: "apps/agentcli/bin/agentcli.js",
  execpolicy: "packages/execpolicy/bin/execpolicy.cjs",
  "egress-dlp": "packages/egress-dlp/bin/egress-dlp.js",
};

/** Fenced blocks with their language, info string and 1-based line in the README. */
function blocks(text) {
  const out = [];
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(\S*)\s*(.*)$/.exec(lines[i]);
    if (!open || open[1] === "") continue;
    const body = [];
    let j = i + 1;
    while (j < lines.length && !/^```\s*$/.test(lines[j])) body.push(lines[j++]);
    out.push({ lang: open[1], info: open[2], line: i + 1, code: `${body.join("\n")}\n` });
    i = j;
  }
  return out;
}

const packages = workspacePackages()
  .filter(({ dir }) => existsSync(join(dir, "README.md")))
  .map((p) => ({ ...p, readme: readFileSync(join(p.dir, "README.md"), "utf8") }))
  .map((p) => ({ ...p, blocks: blocks(p.readme), rel: relative(root, join(p.dir, "README.md")) }));

// yaml is a dependency of the manifest package; load it from there (the root has no runtime deps).
const requireFromManifest = createRequire(join(root, "packages/manifest/package.json"));
const YAML = requireFromManifest("yaml");

test("the package READMEs show code", () => {
  const count = packages.reduce((n, p) => n + p.blocks.length, 0);
  assert.ok(count >= 40, `expected at least 40 code blocks, found ${count}`);
});

test("every YAML and JSON block parses", () => {
  for (const p of packages) {
    for (const b of p.blocks) {
      const where = `${p.rel}:${b.line}`;
      if (b.lang === "yaml" || b.lang === "yml") {
        const doc = YAML.parseDocument(b.code, { prettyErrors: true });
        assert.deepEqual(
          doc.errors.map((e) => e.message),
          [],
          `${where}: the YAML block does not parse`,
        );
      } else if (b.lang === "json") {
        assert.doesNotThrow(() => JSON.parse(b.code), `${where}: the JSON block does not parse`);
      } else if (b.lang === "markdown" || b.lang === "md") {
        const fm = /^---\n([\s\S]*?)\n---\n/.exec(b.code);
        if (!fm) continue;
        const doc = YAML.parseDocument(fm[1]);
        assert.deepEqual(
          doc.errors.map((e) => e.message),
          [],
          `${where}: the manifest's frontmatter does not parse`,
        );
      }
    }
  }
});

test("every command a README runs through one of our bins exists", () => {
  const helps = new Map();
  const helpOf = (bin, sub) => {
    const key = `${bin} ${sub ?? ""}`;
    if (!helps.has(key)) {
      const args = [join(root, BINS[bin]), ...(sub ? [sub] : []), "--help"];
      const r = spawnSync(process.execPath, args, { encoding: "utf8" });
      helps.set(key, { status: r.status, text: `${r.stdout}${r.stderr}` });
    }
    return helps.get(key);
  };
  let checked = 0;
  for (const p of packages) {
    for (const b of p.blocks) {
      if (!["sh", "bash", "console", "shell"].includes(b.lang)) continue;
      for (const raw of b.code.split("\n")) {
        const line = raw.replace(/^\$ /, "").replace(/#.*$/, "").trim();
        const m =
          /^(?:npx (?:-y )?(?:@bottlekit\/[\w-]+ )?)?(bottle-gateway|bottle|agentcli|execpolicy|egress-dlp)(?: ([a-z][\w-]*))?/.exec(
            line,
          );
        if (!m || !(m[1] in BINS)) continue;
        const top = helpOf(m[1]);
        assert.equal(top.status, 0, `${p.rel}: \`${m[1]} --help\` failed: ${top.text}`);
        if (!m[2]) continue;
        // A word after the bin is a subcommand when the bin has subcommands listed in its help.
        const listed = new RegExp(`^\\s+${m[2]}\\b`, "m").test(top.text);
        const hasCommands = /^Commands:/m.test(top.text);
        if (hasCommands && !listed) {
          // Not a subcommand: it must then be an argument the bin accepts (e.g. a prompt or a file).
          const usage = /^Usage: \S+ (.*)$/m.exec(top.text)?.[1] ?? "";
          assert.ok(
            /\[command\]/.test(usage) === false || /<|\[(?!options\]|command\])/.test(usage),
            `${p.rel}: \`${line}\` — \`${m[2]}\` is not a command of ${m[1]} (see \`${m[1]} --help\`)`,
          );
        }
        checked++;
      }
    }
  }
  assert.ok(checked >= 5, `expected README commands to check, found ${checked}`);
});

test("every TypeScript block type-checks against the built packages", () => {
  const tsc = join(root, "node_modules", "typescript", "bin", "tsc");
  // Each block is written inside its package (so its own name and its dependencies resolve as a
  // user's would) and all are checked as one program: one compiler start for every README.
  const dirs = [];
  const files = [];
  const origin = new Map();
  for (const p of packages) {
    const ts = p.blocks.filter(
      (b) => (b.lang === "ts" || b.lang === "typescript") && !/\bno-check\b/.test(b.info),
    );
    if (ts.length === 0) continue;
    const dir = join(p.dir, ".readme-snippets");
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    dirs.push(dir);
    ts.forEach((b, i) => {
      const file = join(dir, `block-${i + 1}.ts`);
      writeFileSync(file, /^\s*(import|export)\s/m.test(b.code) ? b.code : `${b.code}export {};\n`);
      files.push(file);
      origin.set(relative(root, file), { readme: p.rel, line: b.line });
    });
  }
  const config = join(root, ".readme-snippets.tsconfig.json");
  try {
    writeFileSync(
      config,
      JSON.stringify({
        compilerOptions: {
          strict: true,
          noEmit: true,
          module: "nodenext",
          moduleResolution: "nodenext",
          target: "es2022",
          lib: ["es2023"],
          types: ["node"],
          skipLibCheck: true,
        },
        files: files.map((f) => relative(root, f)),
      }),
    );
    const r = spawnSync(process.execPath, [tsc, "-p", config, "--pretty", "false"], {
      encoding: "utf8",
      cwd: root,
    });
    const text = `${r.stdout}${r.stderr}`.replace(
      /^(\S+\.ts)\((\d+),(\d+)\)/gm,
      (all, file, l, c) => {
        const o = origin.get(file);
        return o ? `${o.readme}:${o.line + Number(l)}:${c}` : all;
      },
    );
    assert.equal(r.status, 0, `README TypeScript blocks that do not type-check:\n${text}`);
  } finally {
    rmSync(config, { force: true });
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  }
});

test("execpolicy's README JSON example is what the CLI prints for the policy and script it shows", () => {
  const p = packages.find((x) => x.rel === "packages/execpolicy/README.md");
  assert.ok(p, "execpolicy README");
  const at = p.blocks.findIndex((b) => b.lang === "python");
  assert.ok(
    at >= 0 && p.blocks[at + 1]?.lang === "json",
    "a python policy block followed by its JSON result",
  );
  const command = /`execpolicy (check [^`]+)`\s*\nprints/.exec(p.readme);
  assert.ok(command, "the README names the command that prints the JSON");
  const dir = mkdtempSync(join(tmpdir(), "readme-execpolicy-"));
  try {
    writeFileSync(join(dir, "policy.rules"), p.blocks[at].code);
    // The shown command line, split as a shell would: words, and one single-quoted script.
    const args = [...command[1].matchAll(/'([^']*)'|(\S+)/g)].map((m) => m[1] ?? m[2]);
    const r = spawnSync(process.execPath, [join(root, BINS.execpolicy), ...args], {
      cwd: dir,
      encoding: "utf8",
      env: { ...process.env, BOTTLEKIT_HOME: join(dir, "home") },
    });
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), JSON.parse(p.blocks[at + 1].code));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
