import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ALL_TIME_DAY, dayOf, isBudgetWindow, windowResetAt, windowStartDay } from "./window.ts";

const at = (iso: string) => Date.parse(iso);

describe("windowStartDay", () => {
  it("daily starts at UTC midnight", () => {
    expect(windowStartDay("daily", at("2026-03-10T23:59:59.999Z"))).toBe(
      dayOf(at("2026-03-10T00:00:00Z")),
    );
    expect(windowStartDay("daily", at("2026-03-11T00:00:00Z"))).toBe(
      dayOf(at("2026-03-11T00:00:00Z")),
    );
  });

  it("weekly starts on the ISO Monday", () => {
    // 2026-03-15 is a Sunday, 2026-03-09 the Monday before it.
    expect(windowStartDay("weekly", at("2026-03-15T12:00:00Z"))).toBe(
      dayOf(at("2026-03-09T00:00:00Z")),
    );
    expect(windowStartDay("weekly", at("2026-03-16T00:00:00Z"))).toBe(
      dayOf(at("2026-03-16T00:00:00Z")),
    );
  });

  it("monthly starts on the 1st, across year ends and leap days", () => {
    expect(windowStartDay("monthly", at("2024-02-29T10:00:00Z"))).toBe(
      dayOf(at("2024-02-01T00:00:00Z")),
    );
    expect(windowStartDay("monthly", at("2026-01-01T00:00:00Z"))).toBe(
      dayOf(at("2026-01-01T00:00:00Z")),
    );
    expect(windowStartDay("monthly", at("2025-12-31T23:59:59Z"))).toBe(
      dayOf(at("2025-12-01T00:00:00Z")),
    );
  });

  it("rolling Nd covers today and the N-1 days before", () => {
    expect(windowStartDay("7d", at("2026-03-10T05:00:00Z"))).toBe(
      dayOf(at("2026-03-04T00:00:00Z")),
    );
    expect(windowStartDay("1d", at("2026-03-10T05:00:00Z"))).toBe(
      dayOf(at("2026-03-10T00:00:00Z")),
    );
  });

  it("none covers all time", () => {
    expect(windowStartDay("none", 0)).toBe(ALL_TIME_DAY);
  });

  it("the window always contains now and starts at most 31 days before for calendar windows", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 4_102_444_800_000 }),
        fc.constantFrom("daily", "weekly", "monthly", "3d", "30d") as fc.Arbitrary<
          "daily" | "weekly" | "monthly" | "3d" | "30d"
        >,
        (now, window) => {
          const start = windowStartDay(window, now);
          expect(start).toBeLessThanOrEqual(dayOf(now));
          expect(dayOf(now) - start).toBeLessThan(31);
        },
      ),
    );
  });
});

describe("isBudgetWindow", () => {
  it("accepts the documented forms and rejects others", () => {
    for (const ok of ["none", "daily", "weekly", "monthly", "1d", "30d", "9999d"]) {
      expect(isBudgetWindow(ok)).toBe(true);
    }
    for (const bad of ["0d", "d", "-1d", "1.5d", "10000d", "hourly", "", 7, null]) {
      expect(isBudgetWindow(bad)).toBe(false);
    }
  });
});

describe("windowResetAt", () => {
  it("is the next window start for calendar windows and the next midnight for rolling ones", () => {
    const now = at("2026-12-31T15:00:00Z"); // a Thursday
    expect(windowResetAt("none", now)).toBeUndefined();
    expect(windowResetAt("daily", now)).toBe(at("2027-01-01T00:00:00Z"));
    expect(windowResetAt("weekly", now)).toBe(at("2027-01-04T00:00:00Z"));
    expect(windowResetAt("monthly", now)).toBe(at("2027-01-01T00:00:00Z"));
    expect(windowResetAt("30d", now)).toBe(at("2027-01-01T00:00:00Z"));
  });
});
