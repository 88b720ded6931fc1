import { mkdtempSync, rmSync, statSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type ControlServer,
  connectControl,
  createProxyHost,
  type ProxyHost,
  startControlServer,
} from "./index.ts";

let home: string;
let host: ProxyHost;
let server: ControlServer;

beforeAll(async () => {
  home = mkdtempSync(join(tmpdir(), "bk-ctl-"));
  host = createProxyHost({
    home,
    credentialSource: (spec) =>
      spec.hostEnv === "HOST_GH" ? "ghp_controllerHeldValue0123456789abcdefg" : undefined,
  });
  server = await startControlServer(host);
});

afterAll(async () => {
  await server.close();
  await host.close();
  rmSync(home, { recursive: true, force: true });
});

describe("control socket", () => {
  it("is a 0600 socket under <home>/state", () => {
    expect(server.socketPath).toBe(join(home, "state", "egress-proxy.sock"));
    expect(statSync(server.socketPath).mode & 0o777).toBe(0o600);
  });

  it("registers, lists, cuts off, restores, replaces routes and unregisters", async () => {
    const client = await connectControl(server.socketPath);
    try {
      const reg = await client.register({
        bottle: "ctl",
        agent: "codex",
        routes: [{ host: "api.github.com" }],
        credentials: [
          { name: "GITHUB_TOKEN", hostEnv: "HOST_GH", hosts: ["api.github.com"], shaped: true },
        ],
        budgets: { usd: 5 },
      });
      expect(reg.sessionId).toMatch(/^s-[0-9a-f]{16}$/);
      expect(reg.env.GITHUB_TOKEN).toMatch(/^ghp_[A-Za-z0-9]{36}$/);
      expect(reg.env.GITHUB_TOKEN).not.toBe("ghp_controllerHeldValue0123456789abcdefg");
      expect(reg.env.SSL_CERT_FILE).toBe(reg.caBundlePath);
      expect(JSON.stringify(reg)).not.toContain("controllerHeldValue");
      const list = await client.list();
      expect(list).toHaveLength(1);
      expect(list[0]).toMatchObject({
        bottle: "ctl",
        agent: "codex",
        credentials: ["GITHUB_TOKEN"],
        budgets: { usd: 5 },
        cutoff: false,
      });
      expect(await client.cutoff({ bottle: "ctl" })).toBe(1);
      expect((await client.list())[0]?.cutoff).toBe(true);
      expect(await client.restore({ sessionId: reg.sessionId })).toBe(1);
      await client.replaceRoutes(reg.sessionId, [{ host: "api.example.com" }]);
      expect((await client.list())[0]?.hosts).toEqual(["api.example.com"]);
      expect((await client.metrics()).sessions).toBe(1);
      expect(await client.unregister(reg.sessionId)).toBe(true);
      expect(await client.list()).toEqual([]);
    } finally {
      client.close();
    }
  });

  it("answers errors with codes and hints, and changes nothing", async () => {
    const client = await connectControl(server.socketPath);
    try {
      await expect(
        client.register({ bottle: "ctl", routes: [{ host: "Bad.Host" }] }),
      ).rejects.toMatchObject({
        code: "E_INVALID_INPUT",
      });
      await expect(
        client.register({
          bottle: "ctl",
          routes: [],
          credentials: [{ name: "MISSING", hostEnv: "NOT_SET_ANYWHERE" }],
        }),
      ).rejects.toMatchObject({ code: "E_CREDENTIAL_MISSING" });
      await expect(client.cutoff({ sessionId: "s-nope" })).rejects.toMatchObject({
        code: "E_UNKNOWN_SESSION",
      });
      await expect(client.register({ bottle: "../etc", routes: [] })).rejects.toMatchObject({
        code: "E_INVALID_INPUT",
      });
      expect(await client.list()).toEqual([]);
    } finally {
      client.close();
    }
  });

  it("a malformed line gets an error line, not a crash", async () => {
    const reply = await new Promise<string>((resolve) => {
      const s = connect(server.socketPath, () => s.write("{not json\n"));
      s.setEncoding("utf8");
      s.once("data", (d: string) => {
        resolve(d);
        s.end();
      });
    });
    expect(JSON.parse(reply)).toMatchObject({ ok: false, error: { code: "E_INVALID_INPUT" } });
  });

  it("a client of a socket nobody serves fails with E_CONTROL", async () => {
    await expect(connectControl(join(home, "nothing.sock"))).rejects.toMatchObject({
      code: "E_CONTROL",
    });
  });
});
