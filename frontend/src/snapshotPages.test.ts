// Snapshots: pages as they arrive, and the resync event that ends one.

import { describe, expect, it } from "vitest";
import { NOW, change, countsOf, ids, live, order, page, run, snapshotAck } from "./liveFixtures";
import { WINDOW, initialState, reduce, subscribePayload } from "./liveState";
import type { StatusFilter } from "./protocol";

describe("snapshot pages", () => {
  const start = (filter: StatusFilter = null, since: string | null = null) =>
    run(initialState(filter), { type: "subscribe_sent", seq: 1, filter, since });

  it("applies each page as it arrives, and the ack ends the snapshot", () => {
    let state = reduce(start(), page(null, [order(5), order(4)]));
    expect(ids(state)).toEqual([5, 4]); // shown at once
    expect(state.snapshotting).toBe(true);
    expect(state.loaded).toBe(false);
    expect(state.position).toBeNull();
    state = reduce(state, page(null, [order(3), order(2, 1, "shipped")], {}));
    state = reduce(state, page(null, [], {}));
    expect(ids(state)).toEqual([5, 4, 3, 2]);
    state = reduce(state, snapshotAck(1, null, "nx:40", { pending: 3, shipped: 1, delivered: 0 }, { snapshot: 4, limit: 500 }));
    expect(state.snapshotting).toBe(false);
    expect(state.loaded).toBe(true);
    expect(state.position).toBe("nx:40");
    expect(state.phase).toBe("live");
  });

  it("upserts by version across pages and removes the ids a page lists", () => {
    let state = run(
      start(),
      page(null, [order(1, 2), order(2), order(3)]),
      page(null, [order(1, 1), order(2, 3, "shipped")], { removed: [3, 99] }), // 99: unknown, ignored
      snapshotAck(1, null, "nx:40", { pending: 1, shipped: 1, delivered: 0 }),
    );
    expect(state.orders.get(1)?.version).toBe(2); // the lower version does not replace the higher
    expect(state.orders.get(2)).toMatchObject({ version: 3, status: "shipped" });
    expect(state.orders.has(3)).toBe(false);
    expect(ids(state)).toEqual([2, 1]);
    // a page without `removed` or with an empty one is fine too
    state = reduce(state, page(null, [], { removed: [] }));
    expect(ids(state)).toEqual([2, 1]);
  });

  it("a status view keeps only matching orders of a page", () => {
    const state = run(start("pending"), page("pending", [order(1), order(2, 1, "delivered")]));
    expect(ids(state)).toEqual([1]);
  });

  it("the first page (reset) drops the view and forgets the position until the ack", () => {
    let state = live(null, [order(1), order(2)], "nx:10");
    state = reduce(state, { type: "change", change: change("update", 2, order(2, 2), "nx:11"), now: NOW });
    expect(state.flashes.size).toBe(1);
    // a resync at any time: pages first, then the resync event
    state = reduce(state, page(null, [order(7)]));
    expect(ids(state)).toEqual([7]);
    expect(state.position).toBeNull();
    expect(state.flashes.size).toBe(0);
    expect(subscribePayload(state)).toEqual({ limit: WINDOW }); // cut off now: no since
    // changes while the pages arrive are covered by the snapshot: held back
    state = reduce(state, { type: "change", change: change("insert", 8, order(8), "nx:12"), now: NOW });
    expect(ids(state)).toEqual([7]);
    state = reduce(state, {
      type: "resync",
      message: { reason: "slow_client", filter: {}, position: "nx:90", counts: { pending: 1, shipped: 0, delivered: 0 }, snapshot: 1 },
      now: NOW,
    });
    expect(state.position).toBe("nx:90");
    expect(state.phase).toBe("resynced");
    expect(state.announcement?.text).toBe("Resynced: showing 1 order.");
    state = reduce(state, { type: "change", change: change("insert", 9, order(9), "nx:91"), now: NOW });
    expect(ids(state)).toEqual([9, 7]);
    expect(state.phase).toBe("live");
  });

  it("a snapshot cut off by a disconnect is not resumed: the next subscribe has no since", () => {
    let state = run(live(null, [order(1)], "nx:10"), { type: "disconnected" });
    expect(subscribePayload(state)).toEqual({ limit: WINDOW, since: "nx:10" });
    state = run(state, { type: "subscribe_sent", seq: 2, filter: null, since: "nx:10" }, page(null, [order(2)]));
    expect(state.phase).toBe("catching_up");
    state = reduce(state, { type: "disconnected" }); // before the ack
    expect(state.position).toBeNull();
    expect(subscribePayload(state)).toEqual({ limit: WINDOW });
    expect(ids(state)).toEqual([2]); // the partial view stays shown until the next snapshot replaces it
  });

  it("a page for another filter is ignored", () => {
    const state = live("pending", [order(1)]);
    expect(reduce(state, page(null, [order(2)]))).toBe(state);
    expect(reduce(state, page("shipped", []))).toBe(state);
  });
});

describe("resync event", () => {
  it("replaces the view and continues from its position", () => {
    let state = live("pending", [order(1), order(2)]);
    state = run(
      state,
      page("pending", [order(2, 4), order(5)]),
      {
        type: "resync",
        message: { reason: "slow_client", filter: { status: "pending" }, position: "nx:70", counts: { pending: 2 }, snapshot: 2 },
        now: NOW,
      },
    );
    expect(ids(state)).toEqual([5, 2]);
    expect(state.orders.get(2)?.version).toBe(4);
    expect(state.position).toBe("nx:70");
    expect(state.phase).toBe("resynced");
    expect(state.recovery?.kind).toBe("resynced");
  });

  it("is ignored when it is for another filter", () => {
    const state = live("pending", [order(1)]);
    const next = reduce(state, {
      type: "resync",
      message: { reason: "slow_client", filter: {}, position: "nx:70", counts: {}, snapshot: 0 },
      now: NOW,
    });
    expect(next).toBe(state);
  });

  it("stands in for an ack lost on overflow", () => {
    let state = run(
      live(null, [order(1)]),
      { type: "disconnected" },
      { type: "subscribe_sent", seq: 2, filter: null, since: "nx:10" },
      page(null, [order(7)]),
      {
        type: "resync",
        message: { reason: "slow_client", filter: {}, position: "nx:80", counts: countsOf([order(7)]), snapshot: 1 },
        now: NOW,
      },
    );
    expect(ids(state)).toEqual([7]);
    state = reduce(state, { type: "change", change: change("insert", 8, order(8), "nx:81"), now: NOW });
    expect(ids(state)).toEqual([8, 7]);
    state = reduce(state, { type: "ack_timeout", seq: 2 });
    expect(state.subscribing).toBeNull();
    expect(state.error).toBeNull();
  });
});
