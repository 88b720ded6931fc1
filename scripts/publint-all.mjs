#!/usr/bin/env node
import { readFileSync } from "node:fs";
import { join, relative } from "node:path";
// Runs publint on every publishable workspace package (packed with pnpm, as it will be published)
// and fails on any error or warning.
import { publint } from "publint";
import { formatMessage } from "publint/utils";
import { publishablePackages, root } from "./lib.mjs";

let problems = 0;
for (const { dir, manifest } of publishablePackages()) {
  const { messages } = await publint({ pkgDir: dir, level: "warning", strict: true, pack: "pnpm" });
  const pkg = JSON.parse(readFileSync(join(dir, "package.json"), "utf8"));
  for (const message of messages) {
    problems++;
    process.stderr.write(
      `${relative(root, dir)}: ${message.type}: ${formatMessage(message, pkg)}\n`,
    );
  }
  if (messages.length === 0) process.stderr.write(`publint: ${manifest.name} ok\n`);
}
if (problems > 0) {
  process.stderr.write(`publint: ${problems} problem(s)\n`);
  process.exit(1);
}
