import { existsSync } from "node:fs";
import { join } from "node:path";
import { openStore } from "@bottlekit/budget-store";
import { createTempHome, type TempHome } from "@bottlekit/test-utils";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { bottle } from "../../test/helpers.ts";
import { meter } from "../dashboard/fixtures.ts";
import { parseGroupBy, parseTime } from "./usage.ts";

let home: TempHome;
const DAY = 86_400_000;
const T0 = Date.UTC(2026, 11, 1, 12);

beforeEach(async () => {
  home = await createTempHome("bk-usage-");
  let now = T0 - 3 * DAY;
  const store = await openStore(`sqlite:${join(home.dir, "bottlekit.db")}`, { clock: () => now });
  await meter(store, { bottle: "alpha", provider: "openai", input: 100, output: 10, costUsd: 0.5 });
  now = T0 - 1_000;
  await meter(store, {
    bottle: "alpha",
    provider: "anthropic",
    model: "claude-x",
    input: 200,
    output: 20,
    cacheRead: 50,
  });
  await meter(store, {
    bottle: "beta",
    agent: "ops",
    provider: "openai",
    input: 7,
    output: 3,
    costUsd: 0.25,
    usageMissing: true,
  });
  await store.close();
});
afterEach(() => home.cleanup());

describe("bottle usage", () => {
  it("prints totals with every token kind, cost and missing-usage count", async () => {
    const r = await bottle(["usage"], home.env);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(
      /events\s+input\s+output\s+cache read\s+cache write\s+tokens\s+cost\s+missing/,
    );
    expect(r.out).toMatch(/\b3\s+307\s+33\s+50\s+0\s+340\s+\$0\.75\+\s+1\n$/);
    expect(r.err).toContain("1 events have no price");
  });

  it("--by bottle,provider groups, in that order, with a total row; --json is one document", async () => {
    const r = await bottle(["usage", "--by", "bottle,provider", "--json"], home.env);
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.out);
    expect(doc.by).toEqual(["bottle", "provider"]);
    expect(
      doc.groups.map((g: { bottle: string; provider: string; tokens: number }) => [
        g.bottle,
        g.provider,
        g.tokens,
      ]),
    ).toEqual([
      ["alpha", "anthropic", 220],
      ["alpha", "openai", 110],
      ["beta", "openai", 10],
    ]);
    expect(doc.totals).toMatchObject({
      events: 3,
      tokens: 340,
      usageMissingEvents: 1,
      unpricedEvents: 1,
    });
    const text = await bottle(["usage", "--by", "bottle", "--by", "agent"], home.env);
    expect(text.out).toMatch(/^bottle\s+agent\s+events/);
    expect(text.out).toMatch(/\nbeta\s+ops\s+1\s+7\s+3/);
    expect(text.out).toMatch(/\ntotal\s+3\s+307/);
  });

  it("--since, --bottle and --store filter; the store option wins over the environment", async () => {
    const since = new Date(T0 - DAY).toISOString().slice(0, 10);
    const r = await bottle(
      [
        "usage",
        "--since",
        since,
        "--bottle",
        "alpha",
        "--store",
        join(home.dir, "bottlekit.db"),
        "--json",
      ],
      { BOTTLEKIT_STORE: "/nonexistent/dir/x.db" },
    );
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.out);
    expect(doc.totals).toMatchObject({ events: 1, tokens: 220, cacheReadTokens: 50 });
    expect(doc.filter.bottle).toBe("alpha");
    const all = JSON.parse((await bottle(["usage", "--json", "--since", "1h"], home.env)).out);
    // The seeded clock is in the past: nothing in the last hour of the real clock.
    expect(all.totals.events).toBe(0);
  });

  it("a missing store directory is an error (exit 2) and nothing is created", async () => {
    const missing = join(home.dir, "nope", "ledger.db");
    const r = await bottle(["usage", "--store", missing, "--json"], home.env);
    expect(r.code).toBe(2);
    expect(r.err).toContain(`store directory ${join(home.dir, "nope")} does not exist`);
    expect(JSON.parse(r.out).error.code).toBe("E_INVALID_INPUT");
    expect(existsSync(join(home.dir, "nope"))).toBe(false);
    const viaEnv = await bottle(["usage"], { BOTTLEKIT_HOME: join(home.dir, "gone") });
    expect(viaEnv.code).toBe(2);
    expect(viaEnv.err).toContain("bottle-gateway up");
    expect(existsSync(join(home.dir, "gone"))).toBe(false);
  });

  it("bad flags are usage errors with a fix, before anything is read", async () => {
    const by = await bottle(["usage", "--by", "botle"], home.env);
    expect(by.code).toBe(2);
    expect(by.err).toContain('unknown column "botle"');
    expect(by.err).toContain('did you mean "bottle"');
    const since = await bottle(["usage", "--since", "yesterday"], home.env);
    expect(since.code).toBe(2);
    expect(since.err).toContain("--since");
    const pg = await bottle(
      ["usage", "--json", "--store", "postgres://ops:s3cretPW@127.0.0.1:1/ledger"],
      home.env,
    );
    expect([1, 2]).toContain(pg.code);
    expect(JSON.parse(pg.out).error.message).toContain("postgres://ops:***@127.0.0.1:1/ledger");
    expect(pg.out + pg.err).not.toContain("s3cretPW");
    const scheme = await bottle(["usage", "--store", "mysql://u:hunter2@h/db"], home.env);
    expect(scheme.code).toBe(2);
    expect(scheme.err).not.toContain("hunter2");
  });
});

describe("parseTime / parseGroupBy", () => {
  it("reads durations, dates and ISO times", () => {
    expect(parseTime("24h", T0)).toBe(T0 - DAY);
    expect(parseTime("7d", T0)).toBe(T0 - 7 * DAY);
    expect(parseTime("30m", T0)).toBe(T0 - 1_800_000);
    expect(parseTime("2026-12-01", T0)).toBe(Date.UTC(2026, 11, 1));
    expect(parseTime("2026-12-01T06:00:00Z", T0)).toBe(Date.UTC(2026, 11, 1, 6));
    for (const bad of ["", "7", "d7", "-1d", "2026-13-45", "soon"]) {
      expect(() => parseTime(bad, T0)).toThrow(/not a duration or a date/);
    }
  });

  it("dedupes and keeps the order given", () => {
    expect(parseGroupBy(["provider,bottle", "provider"])).toEqual(["provider", "bottle"]);
    expect(parseGroupBy(undefined)).toEqual([]);
  });
});
