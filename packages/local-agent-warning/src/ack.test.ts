import { chmod, readdir, readFile, stat, utimes, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { createTempHome, type TempHome } from "@bottlekit/test-utils";
import fc from "fast-check";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  type AckInput,
  type AckRecord,
  ackFilePath,
  configFingerprint,
  isLocalAgentWarningError,
  parseAck,
  readAck,
  revokeAck,
  serializeAck,
  writeAck,
} from "./index.ts";

let home: TempHome;
beforeEach(async () => {
  home = await createTempHome("law-ack-");
});
afterEach(async () => {
  await home.cleanup();
});

const ack = (iface: string, extra: Partial<AckInput> = {}): AckInput => ({
  interface: iface,
  binary: "agent",
  binaryPath: "/usr/bin/agent",
  permissionMode: "default",
  ...extra,
});

describe("ackFilePath", () => {
  it("lives under state/ of the home, from the option, then BOTTLEKIT_HOME", () => {
    expect(ackFilePath({ home: "/h" })).toBe(join("/h", "state", "local_agent_ack.json"));
    expect(ackFilePath({ env: { BOTTLEKIT_HOME: "/e" } })).toBe(
      join("/e", "state", "local_agent_ack.json"),
    );
    expect(ackFilePath({ env: {} })).toMatch(/\.bottlekit[\\/]state[\\/]local_agent_ack\.json$/);
  });
});

describe("writeAck", () => {
  it("writes mode 0600 in a 0700 directory it creates", async () => {
    const fresh = join(home.dir, "fresh-home");
    await writeAck([ack("claude-cli")], { home: fresh });
    const file = await stat(ackFilePath({ home: fresh }));
    expect(file.mode & 0o777).toBe(0o600);
    expect((await stat(join(fresh, "state"))).mode & 0o777).toBe(0o700);
  });

  it("replaces a looser existing file with a 0600 one and leaves no temp or lock files", async () => {
    const path = await home.write("state/local_agent_ack.json", "{}");
    await chmod(path, 0o644);
    await writeAck([ack("claude-cli")], { home: home.dir });
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    expect(await readdir(join(home.dir, "state"))).toEqual(["local_agent_ack.json"]);
  });

  it("stores aliases under the canonical interface id", async () => {
    await writeAck([ack("Claude-Code")], { home: home.dir });
    expect([...(await readAck({ home: home.dir })).keys()]).toEqual(["claude-cli"]);
  });

  it("records binary, resolved path and permission mode per interface", async () => {
    await writeAck([ack("claude-cli", { binaryPath: null, permissionMode: "plan" })], {
      home: home.dir,
      now: () => new Date("2026-05-05T10:00:00.123Z"),
    });
    const settings = { tools: null, cwd: null, home: null, runAs: null };
    expect((await readAck({ home: home.dir })).get("claude-cli")).toEqual({
      acknowledgedAt: "2026-05-05T10:00:00Z",
      binary: "agent",
      binaryPath: null,
      permissionMode: "plan",
      settings,
      fingerprint: configFingerprint({
        interface: "claude-cli",
        binary: "agent",
        binaryPath: null,
        permissionMode: "plan",
        settings,
      }),
    });
  });

  it("fails with E_ACK_WRITE, saying where and how to fix, when the home cannot be created", async () => {
    // A regular file where a directory should be defeats mkdir even for root.
    await home.write("blocker", "not a directory");
    const bad = join(home.dir, "blocker", "home");
    const error = await writeAck([ack("claude-cli")], { home: bad }).catch((e: unknown) => e);
    expect(isLocalAgentWarningError(error) && error.code).toBe("E_ACK_WRITE");
    expect(String((error as Error).message)).toContain(join(bad, "state"));
    expect((error as { hint?: string }).hint).toMatch(/BOTTLEKIT_HOME/);
  });

  it("times out with E_ACK_LOCKED while a live process holds the lock", async () => {
    const lock = `${ackFilePath({ home: home.dir })}.lock`;
    await writeFile(lock, `${process.pid} ${Date.now()}\n`);
    const error = await writeAck([ack("claude-cli")], { home: home.dir, lockTimeoutMs: 150 }).catch(
      (e: unknown) => e,
    );
    expect(isLocalAgentWarningError(error) && error.code).toBe("E_ACK_LOCKED");
  });

  it("does not break a live lock from another host just because the pid is unknown here", async () => {
    const lock = `${ackFilePath({ home: home.dir })}.lock`;
    await writeFile(lock, `2147483646 ${Date.now()} some-other-host abc\n`);
    const error = await writeAck([ack("claude-cli")], { home: home.dir, lockTimeoutMs: 150 }).catch(
      (e: unknown) => e,
    );
    expect(isLocalAgentWarningError(error) && error.code).toBe("E_ACK_LOCKED");
  });

  it("breaks a lock older than ten seconds", async () => {
    const lock = `${ackFilePath({ home: home.dir })}.lock`;
    await writeFile(lock, `${process.pid} 0 some-other-host abc\n`);
    const past = new Date(Date.now() - 60_000);
    await utimes(lock, past, past);
    await writeAck([ack("claude-cli")], { home: home.dir, lockTimeoutMs: 2000 });
    expect(await readdir(join(home.dir, "state"))).toEqual(["local_agent_ack.json"]);
  });

  it("breaks a lock left by a dead process", async () => {
    const lock = `${ackFilePath({ home: home.dir })}.lock`;
    await writeFile(lock, "2147483646 0\n");
    await writeAck([ack("claude-cli")], { home: home.dir, lockTimeoutMs: 2000 });
    expect((await readAck({ home: home.dir })).has("claude-cli")).toBe(true);
  });
});

describe("readAck", () => {
  it("ignores a file others could have written (group/world-writable)", async () => {
    await writeAck([ack("claude-cli")], { home: home.dir });
    const path = ackFilePath({ home: home.dir });
    await chmod(path, 0o666);
    expect((await readAck({ home: home.dir })).size).toBe(0);
    await chmod(path, 0o600);
    expect((await readAck({ home: home.dir })).size).toBe(1);
  });

  it("treats a directory where the file should be as no ack", async () => {
    await home.write("state/local_agent_ack.json/inner", "x");
    expect((await readAck({ home: home.dir })).size).toBe(0);
  });

  it("lowercases keys and drops entries with a bad time or field types", () => {
    const good = {
      acknowledgedAt: "2026-01-01T00:00:00Z",
      binary: null,
      binaryPath: null,
      permissionMode: "x",
    };
    const state = parseAck(
      JSON.stringify({
        interfaces: {
          "Claude-CLI": good,
          a: { ...good, acknowledgedAt: "yesterday" },
          b: { ...good, binary: 3 },
          c: { ...good, permissionMode: null },
          " ": good,
        },
      }),
    );
    expect([...state.keys()]).toEqual(["claude-cli"]);
  });

  it("reads a version-1 record (no settings) as covering only a configuration that sets none", () => {
    const v1 = {
      version: 1,
      interfaces: {
        "claude-cli": {
          acknowledgedAt: "2026-01-01T00:00:00Z",
          binary: "claude",
          binaryPath: "/usr/bin/claude",
          permissionMode: "plan",
        },
      },
    };
    const record = parseAck(JSON.stringify(v1)).get("claude-cli");
    expect(record?.settings).toEqual({ tools: null, cwd: null, home: null, runAs: null });
    expect(record?.fingerprint).toBe(
      configFingerprint({
        interface: "claude-cli",
        binary: "claude",
        binaryPath: "/usr/bin/claude",
        permissionMode: "plan",
        settings: { tools: null, cwd: null, home: null, runAs: null },
      }),
    );
    // Rewritten as version 2 with the settings and fingerprint spelled out.
    const rewritten = JSON.parse(serializeAck(parseAck(JSON.stringify(v1))));
    expect(rewritten.version).toBe(2);
    expect(rewritten.interfaces["claude-cli"].settings).toEqual(record?.settings);
    expect(rewritten.interfaces["claude-cli"].fingerprint).toBe(record?.fingerprint);
  });

  it("drops a record whose fingerprint does not match its fields, or whose settings are malformed", async () => {
    await writeAck(
      [ack("claude-cli", { settings: { tools: "Read", cwd: null, home: null, runAs: null } })],
      {
        home: home.dir,
      },
    );
    const text = await readFile(ackFilePath({ home: home.dir }), "utf8");
    expect(parseAck(text).get("claude-cli")?.settings.tools).toBe("Read");
    const edit = (change: (r: Record<string, unknown>) => void): string => {
      const doc = JSON.parse(text);
      change(doc.interfaces["claude-cli"]);
      return JSON.stringify(doc);
    };
    // Tools widened by hand: the fingerprint no longer matches, so nothing is acknowledged.
    expect(
      parseAck(edit((r) => ((r["settings"] as Record<string, unknown>)["tools"] = "Bash,Read")))
        .size,
    ).toBe(0);
    expect(parseAck(edit((r) => (r["fingerprint"] = "sha256:00"))).size).toBe(0);
    expect(parseAck(edit((r) => delete r["settings"])).size).toBe(0);
    expect(parseAck(edit((r) => (r["settings"] = { tools: "Read" }))).size).toBe(0);
    expect(
      parseAck(edit((r) => ((r["settings"] as Record<string, unknown>)["cwd"] = 7))).size,
    ).toBe(0);
    // A fingerprint from another version of the format (e.g. one that fingerprints more) covers nothing.
    expect(parseAck(edit((r) => (r["fingerprint"] = `${String(r["fingerprint"])}0`))).size).toBe(0);
  });

  it("property: parseAck never throws and round-trips what serializeAck writes", () => {
    fc.assert(
      fc.property(fc.string(), (text) => {
        parseAck(text);
      }),
      { numRuns: 300 },
    );
    const setting = fc.option(fc.string({ minLength: 1 }), { nil: null });
    const record = fc.record({
      acknowledgedAt: fc
        .date({ min: new Date("2000-01-01"), max: new Date("2100-01-01"), noInvalidDate: true })
        .map((d) => d.toISOString().replace(/\.\d{3}Z$/, "Z")),
      binary: fc.option(fc.string(), { nil: null }),
      binaryPath: fc.option(fc.string(), { nil: null }),
      permissionMode: fc.string(),
      settings: fc.record({ tools: setting, cwd: setting, home: setting, runAs: setting }),
    });
    fc.assert(
      fc.property(fc.dictionary(fc.stringMatching(/^[a-z][a-z0-9-]{0,12}$/), record), (dict) => {
        const state = new Map<string, AckRecord>(
          Object.entries(dict).map(([k, r]) => [
            k,
            { ...r, fingerprint: configFingerprint({ interface: k, ...r }) },
          ]),
        );
        expect(parseAck(serializeAck(state))).toEqual(state);
      }),
      { numRuns: 200 },
    );
  });
});

describe("revokeAck", () => {
  it("without interfaces removes the file and reports what was revoked", async () => {
    await writeAck([ack("claude-cli"), ack("codex-cli")], { home: home.dir });
    expect(await revokeAck(undefined, { home: home.dir })).toEqual(["claude-cli", "codex-cli"]);
    await expect(readFile(ackFilePath({ home: home.dir }))).rejects.toThrow();
    expect((await readAck({ home: home.dir })).size).toBe(0);
  });

  it("with interfaces removes only those (any case) and keeps the rest", async () => {
    await writeAck([ack("claude-cli"), ack("codex-cli")], { home: home.dir });
    expect(await revokeAck(["Codex", "opencode"], { home: home.dir })).toEqual(["codex-cli"]);
    expect([...(await readAck({ home: home.dir })).keys()]).toEqual(["claude-cli"]);
    expect((await stat(ackFilePath({ home: home.dir }))).mode & 0o777).toBe(0o600);
  });

  it("removing the last interface removes the file; revoking nothing is fine", async () => {
    await writeAck([ack("claude-cli")], { home: home.dir });
    expect(await revokeAck(["claude-cli"], { home: home.dir })).toEqual(["claude-cli"]);
    expect(await readdir(join(home.dir, "state"))).toEqual([]);
    expect(await revokeAck(undefined, { home: home.dir })).toEqual([]);
    expect(await revokeAck(undefined, { home: join(home.dir, "missing") })).toEqual([]);
  });

  it("also removes a corrupt file when revoking everything", async () => {
    await home.write("state/local_agent_ack.json", "{corrupt");
    expect(await revokeAck(undefined, { home: home.dir })).toEqual([]);
    expect(await readdir(join(home.dir, "state"))).toEqual([]);
  });
});
