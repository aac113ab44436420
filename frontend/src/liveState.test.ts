// The reducer: subscribe acks, changes, status filters, batches and optimistic writes.

import { describe, expect, it } from "vitest";
import { NOW, change, ids, live, order, page, run, snapshotAck } from "./liveFixtures";
import { WINDOW, initialState, reduce, selectRows, subscribePayload } from "./liveState";

describe("snapshot pages and ack", () => {
  it("replaces the view, keeps the position and goes live", () => {
    const state = live(null, [order(1), order(2, 3, "shipped")]);
    expect(state.phase).toBe("live");
    expect(state.position).toBe("nx:10");
    expect(state.loaded).toBe(true);
    expect(state.subscribing).toBeNull();
    expect(ids(state)).toEqual([2, 1]);
    expect(state.announcement?.text).toBe("Showing 2 orders.");
  });

  it("ignores an ack for a superseded subscribe", () => {
    const state = run(
      initialState(),
      { type: "subscribe_sent", seq: 1, filter: null, since: null },
      { type: "subscribe_sent", seq: 2, filter: null, since: null },
      snapshotAck(1, null, "nx:1", { pending: 1, shipped: 0, delivered: 0 }),
    );
    expect(state.position).toBeNull();
    expect(state.loaded).toBe(false);
    expect(state.subscribing?.seq).toBe(2);
  });

  it("reports a refused subscribe", () => {
    const state = run(
      initialState(),
      { type: "subscribe_sent", seq: 1, filter: null, since: null },
      {
        type: "ack",
        seq: 1,
        ack: { ok: false, error: { code: "unavailable", message: "the change feed is not running yet", fields: {} } },
        now: NOW,
      },
    );
    expect(state.subscribing).toBeNull();
    expect(state.error).toContain("not running yet");
  });

  it("holds back changes while the snapshot is on its way (the snapshot covers them)", () => {
    const state = run(
      initialState(),
      { type: "subscribe_sent", seq: 1, filter: null, since: null },
      { type: "change", change: change("insert", 5, order(5), "nx:3"), now: NOW },
    );
    expect(state.orders.size).toBe(0);
    expect(state.position).toBeNull();
  });
});

describe("applying changes", () => {
  it("inserts, updates and tracks the last position", () => {
    let state = live(null, [order(1)]);
    state = reduce(state, { type: "change", change: change("insert", 2, order(2), "nx:11"), now: NOW });
    state = reduce(state, { type: "change", change: change("update", 1, order(1, 2, "shipped"), "nx:12"), now: NOW });
    expect(state.position).toBe("nx:12");
    expect(state.orders.get(1)?.status).toBe("shipped");
    expect(state.orders.get(2)?.version).toBe(1);
    expect(state.announcement?.text).toBe("Order 1 is now shipped.");
  });

  it("measures the latency from commit to apply", () => {
    const state = run(live(null, []), {
      type: "change",
      change: { ...change("insert", 3, order(3)), committed_at: new Date(NOW - 42).toISOString() },
      now: NOW,
    });
    expect(state.latencyMs).toBe(42);
    expect(state.lastChangeAt).toBe(NOW);
  });

  it("ignores an order whose version is not newer than the one held, but keeps its position", () => {
    let state = live(null, [order(1, 3, "shipped")]);
    const before = state.orders;
    state = reduce(state, { type: "change", change: change("update", 1, order(1, 2, "pending"), "nx:20"), now: NOW });
    state = reduce(state, { type: "change", change: change("update", 1, order(1, 3, "delivered"), "nx:21"), now: NOW });
    expect(state.orders.get(1)).toEqual(before.get(1));
    expect(state.position).toBe("nx:21");
  });

  it("applies the same change twice only once", () => {
    const c = change("insert", 4, order(4), "nx:30");
    const once = reduce(live(null, []), { type: "change", change: c, now: NOW });
    const twice = reduce(once, { type: "change", change: c, now: NOW });
    expect(twice.orders).toBe(once.orders);
    expect(twice.serial).toBe(once.serial);
  });

  it("removes an order on delete and ignores deletes of unknown ids", () => {
    let state = live(null, [order(1), order(2)]);
    state = reduce(state, { type: "change", change: change("delete", 1, null, "nx:11"), now: NOW });
    expect(ids(state)).toEqual([2]);
    expect(state.announcement?.text).toBe("Order 1 deleted.");
    const serial = state.serial;
    state = reduce(state, { type: "change", change: change("delete", 77, null, "nx:12"), now: NOW });
    expect(ids(state)).toEqual([2]);
    expect(state.serial).toBe(serial);
    expect(state.position).toBe("nx:12");
  });

  it("does not bring back a deleted order with a late insert or update", () => {
    let state = live(null, [order(1)]);
    state = reduce(state, { type: "change", change: change("delete", 1, null), now: NOW });
    state = reduce(state, { type: "change", change: change("update", 1, order(1, 5)), now: NOW });
    expect(state.orders.has(1)).toBe(false);
  });

  it("flashes the rows it changes", () => {
    let state = live(null, [order(1), order(2)]);
    expect(state.flashes.size).toBe(0);
    state = reduce(state, { type: "change", change: change("update", 2, order(2, 2)), now: NOW });
    expect(state.flashes.get(2)).toEqual({ serial: state.serial, at: NOW });
    expect(state.flashes.has(1)).toBe(false);
  });
});

describe("a status filter", () => {
  it("drops an order that moves to another status", () => {
    let state = live("pending", [order(1), order(2)]);
    state = reduce(state, { type: "change", change: change("update", 1, order(1, 2, "shipped"), "nx:11"), now: NOW });
    expect(ids(state)).toEqual([2]);
    expect(state.position).toBe("nx:11");
    expect(state.announcement?.text).toBe("Order 1 is now shipped and left the pending view.");
  });

  it("adds an order that moves into it and ignores orders of other statuses", () => {
    let state = live("shipped", []);
    state = reduce(state, { type: "change", change: change("insert", 3, order(3, 1, "pending")), now: NOW });
    expect(state.orders.size).toBe(0);
    state = reduce(state, { type: "change", change: change("update", 3, order(3, 2, "shipped")), now: NOW });
    expect(ids(state)).toEqual([3]);
  });

  it("keeps only matching orders of a snapshot", () => {
    const state = live("pending", [order(1), order(2, 1, "delivered")]);
    expect(ids(state)).toEqual([1]);
  });

  it("switching filter keeps what matches, forgets the position and awaits a fresh snapshot", () => {
    let state = live(null, [order(1), order(2, 2, "shipped")]);
    state = reduce(state, { type: "set_filter", filter: "shipped" });
    expect(ids(state)).toEqual([2]);
    expect(state.position).toBeNull();
    expect(state.loaded).toBe(false);
    expect(subscribePayload(state)).toEqual({ status: "shipped", limit: WINDOW });
    state = reduce(state, { type: "subscribe_sent", seq: 2, filter: "shipped", since: null });
    // a change of the old subscription, still on its way: the coming snapshot covers it
    state = reduce(state, { type: "change", change: change("insert", 8, order(8)), now: NOW });
    state = run(
      state,
      page(null, [order(9, 1, "shipped")]), // a page of the old subscription (all orders): ignored
      page("shipped", [order(2, 2, "shipped"), order(4, 1, "shipped")]),
      snapshotAck(2, "shipped", "nx:50", { shipped: 2 }),
    );
    expect(ids(state)).toEqual([4, 2]);
    expect(state.position).toBe("nx:50");
    expect(state.loaded).toBe(true);
  });
});

describe("order_changes batches", () => {
  it("applies each change in order, keeps the last position and announces once", () => {
    let state = live("pending", [order(1), order(2)]);
    state = reduce(state, {
      type: "changes",
      changes: [
        change("insert", 3, order(3), "nx:11"),
        change("update", 1, order(1, 2, "shipped"), "nx:12"),
        change("update", 2, order(2, 1), "nx:13"), // stale
        change("delete", 3, null, "nx:14"),
        change("insert", 4, order(4), "nx:15"),
      ],
      now: NOW,
    });
    expect(ids(state)).toEqual([4, 2]);
    expect(state.position).toBe("nx:15");
    expect(state.announcement?.text).toBe("4 changes applied.");
  });

  it("counts a batch replayed during a catch-up", () => {
    const state = run(
      live(null, []),
      { type: "disconnected" },
      { type: "subscribe_sent", seq: 2, filter: null, since: "nx:10" },
      { type: "changes", changes: [change("insert", 1, order(1)), change("insert", 2, order(2))], now: NOW },
    );
    expect(state.replayedSoFar).toBe(2);
    expect(ids(state)).toEqual([2, 1]);
  });

  it("an empty batch changes nothing", () => {
    const state = live(null, [order(1)]);
    expect(reduce(state, { type: "changes", changes: [], now: NOW })).toBe(state);
  });

  it("conflated changes apply as usual", () => {
    const state = reduce(live(null, [order(1)]), {
      type: "change",
      change: { ...change("update", 1, order(1, 9, "delivered")), conflated: true },
      now: NOW,
    });
    expect(state.orders.get(1)?.version).toBe(9);
  });
});

describe("optimistic writes", () => {
  it("shows a create at once and replaces it with the server's order", () => {
    let state = live(null, [order(1)]);
    const temp = { ...order(-1), version: 0, updated_at: new Date(NOW).toISOString() };
    state = reduce(state, { type: "optimistic", write: { key: "w1", kind: "create", order: temp } });
    expect(selectRows(state)[0]).toMatchObject({ pending: "create", order: { id: -1 } });
    state = reduce(state, { type: "settled", key: "w1", order: order(2), now: NOW });
    expect(ids(state)).toEqual([2, 1]);
    expect(selectRows(state).every((row) => row.pending === null)).toBe(true);
    // the live change for it comes later: already held
    const again = reduce(state, { type: "change", change: change("insert", 2, order(2)), now: NOW });
    expect(again.orders.get(2)).toEqual(order(2));
  });

  it("rolls an update back when refused, taking the server's current order", () => {
    let state = live(null, [order(1)]);
    state = reduce(state, { type: "optimistic", write: { key: "w1", kind: "update", id: 1, changes: { status: "delivered" } } });
    expect(selectRows(state)[0]).toMatchObject({ pending: "update", order: { status: "delivered" } });
    state = reduce(state, { type: "rolled_back", key: "w1", current: order(1, 2, "shipped"), now: NOW });
    expect(selectRows(state)[0]).toMatchObject({ pending: null, order: { status: "shipped", version: 2 } });
  });

  it("hides a delete at once and brings the order back when refused", () => {
    let state = live(null, [order(1), order(2)]);
    state = reduce(state, { type: "optimistic", write: { key: "w1", kind: "delete", id: 1 } });
    expect(ids(state)).toEqual([2]);
    state = reduce(state, { type: "rolled_back", key: "w1", now: NOW });
    expect(ids(state)).toEqual([2, 1]);
  });

  it("a settled delete removes the order for good", () => {
    let state = live(null, [order(1)]);
    state = run(
      state,
      { type: "optimistic", write: { key: "w1", kind: "delete", id: 1 } },
      { type: "settled", key: "w1", deletedId: 1, now: NOW },
      { type: "change", change: change("update", 1, order(1, 2)), now: NOW },
    );
    expect(state.orders.size).toBe(0);
  });

  it("a 404 on a write removes the order", () => {
    const state = run(
      live(null, [order(1)]),
      { type: "optimistic", write: { key: "w1", kind: "update", id: 1, changes: { customer_name: "X" } } },
      { type: "rolled_back", key: "w1", goneId: 1, now: NOW },
    );
    expect(state.orders.size).toBe(0);
  });

  it("an accepted update in a status view that no longer matches leaves the view", () => {
    const state = run(
      live("pending", [order(1)]),
      { type: "optimistic", write: { key: "w1", kind: "update", id: 1, changes: { status: "shipped" } } },
      { type: "settled", key: "w1", order: order(1, 2, "shipped"), now: NOW },
    );
    expect(state.orders.size).toBe(0);
  });
});
