import fs from "node:fs";
import path from "node:path";

/** One live `bottle run`, as `bottle ps` lists it. Never holds env values or credentials. */
export interface SessionRecord {
  sessionId: string;
  bottle: string;
  agent: string | null;
  kind: string;
  /** The `bottle run` process (operators signal it). */
  pid: number;
  /** The sandbox's outermost host pid. */
  sandboxPid: number;
  startedAt: string;
  projectDir: string;
  command: string[];
  budgets: { provider: string; tokens: number; window: string; source: string }[];
  cutoff: string;
  controller: "socket" | "in-process";
  /** Set while a policy is applied (cutoff, freeze, kill). */
  state: "running" | "cut-off" | "freezing" | "stopping";
}

export interface FrozenRecord {
  sessionId: string;
  bottle: string;
  agent: string | null;
  command: string[];
  trailing: string[];
  /** `--agent-bin` of the frozen run, used again by `--resume` unless it is given anew. */
  agentBin?: string;
  projectDir: string;
  frozenAt: string;
  snapshot: { kind: "git"; ref: string; commit: string } | { kind: "archive"; file: string };
}

/** Operator commands reach the run process as signals: each is applied within one event-loop turn. */
export const CONTROL_SIGNALS = { stop: "SIGTERM", freeze: "SIGUSR1", cutoff: "SIGUSR2" } as const;

export function runsDir(home: string): string {
  return path.join(home, "state", "runs");
}

function ensureDir(dir: string): void {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
}

export function writeSession(home: string, record: SessionRecord): void {
  const dir = runsDir(home);
  ensureDir(dir);
  const file = path.join(dir, `${record.sessionId}.json`);
  fs.writeFileSync(`${file}.tmp`, `${JSON.stringify(record, null, 2)}\n`, { mode: 0o600 });
  fs.renameSync(`${file}.tmp`, file);
}

export function removeSession(home: string, sessionId: string): void {
  fs.rmSync(path.join(runsDir(home), `${sessionId}.json`), { force: true });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Live sessions (records whose run process is gone are removed on the way). */
export function listSessions(home: string): SessionRecord[] {
  const dir = runsDir(home);
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return [];
  }
  const out: SessionRecord[] = [];
  for (const name of names.sort()) {
    if (!name.endsWith(".json")) continue;
    let record: SessionRecord;
    try {
      record = JSON.parse(fs.readFileSync(path.join(dir, name), "utf8")) as SessionRecord;
    } catch {
      continue;
    }
    if (!alive(record.pid)) {
      fs.rmSync(path.join(dir, name), { force: true });
      continue;
    }
    out.push(record);
  }
  return out;
}

/** A session by id or unique id prefix. */
export function findSession(home: string, id: string): SessionRecord | undefined {
  const all = listSessions(home);
  return (
    all.find((s) => s.sessionId === id) ??
    (() => {
      const matches = all.filter((s) => s.sessionId.startsWith(id));
      return matches.length === 1 ? matches[0] : undefined;
    })()
  );
}

export function frozenFile(home: string, sessionId: string): string {
  return path.join(runsDir(home), "frozen", `${sessionId}.json`);
}

export function writeFrozen(home: string, record: FrozenRecord): void {
  const file = frozenFile(home, record.sessionId);
  ensureDir(path.dirname(file));
  fs.writeFileSync(file, `${JSON.stringify(record, null, 2)}\n`, { mode: 0o600 });
}

export function readFrozen(home: string, sessionId: string): FrozenRecord | undefined {
  try {
    return JSON.parse(fs.readFileSync(frozenFile(home, sessionId), "utf8")) as FrozenRecord;
  } catch {
    return undefined;
  }
}

export interface AuditRecord {
  at: string;
  sessionId: string;
  bottle: string;
  action: "cutoff" | "freeze" | "kill" | "stop" | "resume" | "probe-failed";
  by: string;
  reason: string;
  /** Milliseconds from the trigger to the process tree reacting. */
  latencyMs?: number;
}

/** Appends one line to `state/runs/audit.jsonl` (session-level actions; budget actions are in the store too). */
export function audit(home: string, record: AuditRecord): void {
  const dir = runsDir(home);
  ensureDir(dir);
  fs.appendFileSync(path.join(dir, "audit.jsonl"), `${JSON.stringify(record)}\n`, { mode: 0o600 });
}

export function readAudit(home: string): AuditRecord[] {
  try {
    return fs
      .readFileSync(path.join(runsDir(home), "audit.jsonl"), "utf8")
      .split("\n")
      .filter((l) => l.trim() !== "")
      .map((l) => JSON.parse(l) as AuditRecord);
  } catch {
    return [];
  }
}
