// Counts per status, from the protocol rather than from the orders held.

import { describe, expect, it } from "vitest";
import { NOW, change, live, order } from "./liveFixtures";
import { initialState, reduce } from "./liveState";
import { selectCounts } from "./statusCounts";

describe("counts", () => {
  it("come from the ack, then from every change, even one the view ignores", () => {
    let state = live(null, [order(1)], "nx:10", { pending: 10, shipped: 20, delivered: 30 });
    expect(selectCounts(state)).toMatchObject({ total: 60, held: 1 });
    state = reduce(state, {
      type: "change",
      change: { ...change("insert", 2, order(2)), counts: { pending: 11, shipped: 20, delivered: 30 } },
      now: NOW,
    });
    expect(selectCounts(state).byStatus).toEqual({ pending: 11, shipped: 20, delivered: 30 });
    // a stale repeat still carries the counts as of its change
    state = reduce(state, {
      type: "change",
      change: { ...change("update", 2, order(2)), counts: { pending: 12, shipped: 20, delivered: 30 } },
      now: NOW,
    });
    expect(selectCounts(state).total).toBe(62);
  });

  it("come from each item of an order_changes batch, the last one winning", () => {
    const state = reduce(live(null, [], "nx:10", { pending: 0, shipped: 0, delivered: 0 }), {
      type: "changes",
      changes: [
        { ...change("insert", 1, order(1)), counts: { pending: 1, shipped: 0, delivered: 0 } },
        { ...change("update", 1, order(1, 2, "shipped")), counts: { pending: 0, shipped: 1, delivered: 0 } },
        change("insert", 2, order(2)), // without counts (a replay may lack them): the last known stay
      ],
      now: NOW,
    });
    expect(selectCounts(state).byStatus).toEqual({ pending: 0, shipped: 1, delivered: 0 });
  });

  it("a status view takes only its own status from the global counts", () => {
    let state = live("pending", [order(1)], "nx:10", { pending: 7 });
    expect(selectCounts(state)).toEqual({ byStatus: { pending: 7, shipped: null, delivered: null }, total: 7, held: 1 });
    state = reduce(state, {
      type: "change",
      change: { ...change("update", 1, order(1, 2, "shipped")), counts: { pending: 6, shipped: 4, delivered: 2 } },
      now: NOW,
    });
    expect(selectCounts(state)).toEqual({ byStatus: { pending: 6, shipped: null, delivered: null }, total: 6, held: 0 });
  });

  it("are unknown before the first ack, and a filter switch keeps only what it knows", () => {
    expect(selectCounts(initialState())).toEqual({
      byStatus: { pending: null, shipped: null, delivered: null },
      total: null,
      held: 0,
    });
    let state = live(null, [], "nx:10", { pending: 1, shipped: 2, delivered: 3 });
    state = reduce(state, { type: "set_filter", filter: "shipped" });
    expect(selectCounts(state).byStatus).toEqual({ pending: null, shipped: 2, delivered: null });
    state = reduce(state, { type: "set_filter", filter: null });
    expect(selectCounts(state).total).toBeNull();
  });

  it("say how many are shown of how many", () => {
    const state = live(null, [order(1), order(2)], "nx:10", { pending: 33_000, shipped: 500, delivered: 0 });
    expect(state.announcement?.text).toBe("Showing 2 of 33,500 orders.");
  });
});

describe("selectors", () => {
  it("counts per status from the ack, not from the orders held", () => {
    const state = live(null, [order(1), order(2, 1, "shipped")], "nx:10", { pending: 30_000, shipped: 3_000, delivered: 500 });
    expect(selectCounts(state)).toEqual({
      byStatus: { pending: 30_000, shipped: 3_000, delivered: 500 },
      total: 33_500,
      held: 2,
    });
  });
});
