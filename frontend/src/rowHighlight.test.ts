// The row highlight: the latest rows of a burst, never with reduced motion, never a stale change.

import { describe, expect, it } from "vitest";
import { NOW, change, live, order, run } from "./liveFixtures";
import type { Flash } from "./liveView";
import { selectRows } from "./orderRows";
import { FRESH_MS, HIGHLIGHT_LIMIT, highlightDue, latestFlashes, prefersReducedMotion } from "./rowHighlight";

describe("the burst highlight", () => {
  it("keeps the flashes of the latest changes only", () => {
    const flashes = new Map<number, Flash>();
    // ids in an order unrelated to their serials
    [5, 1, 9, 3, 7, 2, 8].forEach((id, i) => flashes.set(id, { serial: 10 + ((i * 3) % 7), at: NOW }));
    const serials = [...flashes.values()].map((f) => f.serial).sort((a, b) => b - a);
    const kept = latestFlashes(flashes, 3);
    expect([...kept.values()].map((f) => f.serial).sort((a, b) => b - a)).toEqual(serials.slice(0, 3));
    expect(latestFlashes(flashes, 20).size).toBe(7);
  });

  it("a burst of changes highlights the rows of the latest HIGHLIGHT_LIMIT changes, not every row", () => {
    const orders = Array.from({ length: 40 }, (_, i) => order(i + 1));
    const state = live(null, orders);
    const burst = orders.map((o) => change("update", o.id, { ...o, version: 2, customer_name: `New ${o.id}` }));
    const after = run(state, { type: "changes", changes: burst, now: NOW });
    const lit = selectRows(after)
      .filter((row) => row.flash !== undefined)
      .map((row) => row.order.id)
      .sort((a, b) => a - b);
    const latest = burst.slice(-HIGHLIGHT_LIMIT).map((c) => c.id);
    expect(lit).toEqual(latest);
  });
});

describe("highlightDue", () => {
  const flash: Flash = { serial: 3, at: NOW };
  it("highlights a fresh change", () => {
    expect(highlightDue(flash, NOW + 100, false)).toBe(true);
  });
  it("never with prefers-reduced-motion", () => {
    expect(highlightDue(flash, NOW + 100, true)).toBe(false);
  });
  it("not a change older than FRESH_MS (a row scrolled into view later), nor a row without one", () => {
    expect(highlightDue(flash, NOW + FRESH_MS + 1, false)).toBe(false);
    expect(highlightDue(undefined, NOW, false)).toBe(false);
  });
  it("reads prefers-reduced-motion from the media query", () => {
    const asked: string[] = [];
    const media = (matches: boolean) => (query: string) => {
      asked.push(query);
      return { matches };
    };
    expect(prefersReducedMotion(media(true))).toBe(true);
    expect(prefersReducedMotion(media(false))).toBe(false);
    expect(asked).toEqual(["(prefers-reduced-motion: reduce)", "(prefers-reduced-motion: reduce)"]);
    expect(prefersReducedMotion(undefined)).toBe(false);
  });
});
