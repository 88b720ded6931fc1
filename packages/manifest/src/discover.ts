import { existsSync, readdirSync, statSync } from "node:fs";
import { homedir } from "node:os";
import { basename, dirname, join, resolve } from "node:path";
import type { ManifestIssue } from "./errors.ts";
import { isValidName } from "./names.ts";

/** Where manifests are looked up. */
export interface Locations {
  /** `$BOTTLEKIT_HOME`; default `$BOTTLEKIT_HOME` from `env`, else `~/.bottlekit`. */
  home?: string;
  /** The project directory; the nearest `.bottlekit/` at or above it is the project's. Default `process.cwd()`. */
  cwd?: string;
  /** Environment used for the `BOTTLEKIT_HOME` default. Default `process.env`. */
  env?: Readonly<Record<string, string | undefined>>;
}

export interface Dirs {
  home: string;
  bottles: string;
  agents: string;
  /** `<project>/.bottlekit`, when there is one. */
  project: string | undefined;
  projectAgents: string | undefined;
}

/** Resolves the home and project directories (flag > env > default). */
export function resolveDirs(loc: Locations = {}): Dirs {
  const env = loc.env ?? process.env;
  const envHome = env["BOTTLEKIT_HOME"];
  const home = resolve(
    loc.home ?? (envHome !== undefined && envHome !== "" ? envHome : join(homedir(), ".bottlekit")),
  );
  const project = findProject(resolve(loc.cwd ?? process.cwd()), home);
  return {
    home,
    bottles: join(home, "bottles"),
    agents: join(home, "agents"),
    project,
    projectAgents: project === undefined ? undefined : join(project, "agents"),
  };
}

/** The nearest `.bottlekit` directory at or above `cwd` that is not the home directory itself. */
function findProject(cwd: string, home: string): string | undefined {
  let dir = cwd;
  for (;;) {
    const candidate = join(dir, ".bottlekit");
    if (candidate !== home && isDir(candidate)) return candidate;
    const parent = dirname(dir);
    if (parent === dir) return undefined;
    dir = parent;
  }
}

function isDir(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}

export interface ManifestRef {
  name: string;
  kind: "bottle" | "agent";
  file: string;
  source: "home" | "project";
  /** For a project agent: the home agent file with the same name that it shadows. */
  shadows?: string;
}

export interface Listing {
  bottles: ManifestRef[];
  agents: ManifestRef[];
  warnings: ManifestIssue[];
}

/** `<name>.md` files of a directory, names only (nothing is parsed). Sorted. */
export function scanNames(dir: string, warnings: ManifestIssue[]): Map<string, string> {
  const out = new Map<string, string>();
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch {
    return out;
  }
  entries.sort();
  for (const entry of entries) {
    if (!entry.endsWith(".md")) continue;
    const name = entry.slice(0, -3);
    const file = join(dir, entry);
    if (!isValidName(name)) {
      warnings.push({
        code: "W_BAD_FILE_NAME",
        severity: "warning",
        file,
        line: 1,
        col: 1,
        path: "",
        message: `ignored: \`${name}\` is not a valid manifest name (^[a-z][a-z0-9-]*$)`,
        hint: `rename the file to lower case letters, digits and dashes, like ${suggestName(name)}.md`,
      });
      continue;
    }
    out.set(name, file);
  }
  return out;
}

function suggestName(name: string): string {
  const s = name
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, "-")
    .replace(/^[^a-z]+/, "")
    .replace(/-+$/, "");
  return s === "" ? "my-agent" : s;
}

/** The warning for a project that ships bottles; undefined when it does not. */
export function projectBottlesWarning(dirs: Dirs): ManifestIssue | undefined {
  if (dirs.project === undefined) return undefined;
  const bottles = join(dirs.project, "bottles");
  if (!existsSync(bottles)) return undefined;
  return {
    code: "W_PROJECT_BOTTLES",
    severity: "warning",
    file: bottles,
    line: 1,
    col: 1,
    path: "",
    message:
      "ignored: projects may ship agents but never bottles, so a cloned repository cannot redirect credentials or egress",
    hint: `move the bottles you trust to ${dirs.bottles}/ and delete ${bottles}/`,
  };
}

/** Lists bottles and agents by name only; broken files still list (they fail when selected). */
export function listManifests(loc: Locations = {}): Listing {
  const dirs = resolveDirs(loc);
  const warnings: ManifestIssue[] = [];
  const bottles = [...scanNames(dirs.bottles, warnings)].map(
    ([name, file]): ManifestRef => ({ name, kind: "bottle", file, source: "home" }),
  );
  const home = scanNames(dirs.agents, warnings);
  const project =
    dirs.projectAgents === undefined
      ? new Map<string, string>()
      : scanNames(dirs.projectAgents, warnings);
  const agents: ManifestRef[] = [];
  for (const [name, file] of home) {
    if (!project.has(name)) agents.push({ name, kind: "agent", file, source: "home" });
  }
  for (const [name, file] of project) {
    const shadowed = home.get(name);
    if (shadowed !== undefined) {
      agents.push({ name, kind: "agent", file, source: "project", shadows: shadowed });
      warnings.push(shadowWarning(name, file, shadowed));
    } else agents.push({ name, kind: "agent", file, source: "project" });
  }
  agents.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const pw = projectBottlesWarning(dirs);
  if (pw) warnings.push(pw);
  return { bottles, agents, warnings };
}

export function shadowWarning(name: string, file: string, shadowed: string): ManifestIssue {
  return {
    code: "W_SHADOWED",
    severity: "warning",
    file,
    line: 1,
    col: 1,
    path: "",
    message: `project agent \`${name}\` is used instead of the home agent ${shadowed}`,
    hint: `rename one of them if you meant the home agent (${basename(shadowed)})`,
  };
}
