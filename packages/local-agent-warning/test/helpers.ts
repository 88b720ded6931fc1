// Shared fixtures for this package's tests (not part of the published API).
import { chmod, mkdir, mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** Creates a directory holding an executable named `name` and returns the directory. */
export async function fakeBinDir(name: string, prefix = "law-bin-"): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  await mkdir(dir, { recursive: true });
  const path = join(dir, name);
  await writeFile(path, "#!/bin/sh\nexit 0\n");
  await chmod(path, 0o755);
  return dir;
}

/** A fixed clock. */
export function clock(iso: string): () => Date {
  return () => new Date(iso);
}

export const CLAUDE = { model_providers: [{ model: "claude-cli/sonnet" }] };
