// Loading the orders older than the window, and merging them by version.

import { describe, expect, it } from "vitest";
import { NOW, change, ids, live, order, page, run, snapshotAck } from "./liveFixtures";
import { type LiveState, initialState, reduce } from "./liveState";
import { mayLoadOlder, olderCursor } from "./olderOrders";
import type { Order, Status } from "./protocol";

describe("loading older orders", () => {
  const OLD = "2026-11-01T00:00:00.000Z";
  const old = (id: number, version = 1, status: Status = "pending") => order(id, version, status, { updated_at: OLD });
  const loaded = (state: LiveState, orders: Order[], next: string | null, epoch = state.epoch): LiveState =>
    reduce(state, {
      type: "older_loaded",
      epoch,
      page: { orders, position: "nx:99", counts: {}, next_before: next },
      now: NOW,
    });

  it("is offered while the counts say there are more than held, starting from the oldest held order", () => {
    const window = [order(10), order(11), order(12, 1, "pending", { updated_at: "2026-11-20T00:00:00.000Z" })];
    const state = live(null, window, "nx:10", { pending: 5, shipped: 0, delivered: 0 });
    expect(mayLoadOlder(state)).toBe(true);
    expect(olderCursor(state)).toBe("2026-11-20T00:00:00.000Z_12");
    expect(mayLoadOlder(live(null, window))).toBe(false); // all held
    expect(mayLoadOlder(run(initialState(), { type: "subscribe_sent", seq: 1, filter: null, since: null }))).toBe(false);
  });

  it("merges a page by version, never downgrading, then continues from next_before", () => {
    let state = live(null, [order(10), order(3, 4)], "nx:10", { pending: 5, shipped: 0, delivered: 0 });
    state = reduce(state, { type: "older_started", epoch: state.epoch });
    expect(state.older.loading).toBe(true);
    state = loaded(state, [old(3, 2), old(2), old(1)], "2026-11-01T00:00:00.000Z_1");
    expect(state.orders.get(3)?.version).toBe(4); // the live version stays
    expect(ids(state)).toEqual([10, 3, 2, 1]);
    expect(state.older).toEqual({ cursor: "2026-11-01T00:00:00.000Z_1", exhausted: false, loading: false, error: null });
    expect(olderCursor(state)).toBe("2026-11-01T00:00:00.000Z_1");
    expect(state.flashes.has(2)).toBe(false); // not a change: no highlight
    expect(state.announcement?.text).toBe("Loaded 2 older orders.");
    // the loaded orders are live from here on
    state = reduce(state, { type: "change", change: change("update", 1, old(1, 2, "shipped"), "nx:11"), now: NOW });
    expect(state.orders.get(1)?.status).toBe("shipped");
    state = loaded(state, [], null);
    expect(state.older.exhausted).toBe(true);
    expect(mayLoadOlder(state)).toBe(false);
  });

  it("does not bring back an order deleted, or moved out of the view, after the page was read", () => {
    let state = live("pending", [order(10)], "nx:10", { pending: 4 });
    const epoch = state.epoch;
    state = reduce(state, { type: "older_started", epoch });
    state = run(
      state,
      { type: "change", change: change("delete", 2, null, "nx:11"), now: NOW },
      { type: "change", change: change("update", 3, old(3, 2, "shipped"), "nx:12"), now: NOW },
    );
    state = loaded(state, [old(3, 1), old(2), old(1), old(4, 1, "shipped")], null, epoch);
    expect(ids(state)).toEqual([10, 1]);
  });

  it("drops a page asked for before a reset or a filter switch", () => {
    let state = live(null, [order(10)], "nx:10", { pending: 9, shipped: 0, delivered: 0 });
    const asked = state.epoch;
    state = reduce(state, { type: "older_started", epoch: asked });
    state = run(state, page(null, [order(11)]), snapshotAck(1, null, "nx:20", { pending: 9, shipped: 0, delivered: 0 }));
    expect(state.older.loading).toBe(false);
    const after = loaded(state, [old(1)], null, asked);
    expect(after).toBe(state);
    const switched = reduce(live(null, [order(10)]), { type: "set_filter", filter: "pending" });
    expect(reduce(switched, { type: "older_failed", epoch: 0, message: "x" })).toBe(switched);
  });

  it("says when a page failed, and may be tried again", () => {
    let state = live(null, [order(10)], "nx:10", { pending: 9, shipped: 0, delivered: 0 });
    state = run(state, { type: "older_started", epoch: state.epoch }, { type: "older_failed", epoch: state.epoch, message: "down" });
    expect(state.older).toMatchObject({ loading: false, error: "down" });
    expect(mayLoadOlder(state)).toBe(true);
  });
});
