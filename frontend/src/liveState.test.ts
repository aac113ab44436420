import { describe, expect, it } from "vitest";
import {
  type LiveAction,
  type LiveState,
  WINDOW,
  initialState,
  mayLoadOlder,
  olderCursor,
  reduce,
  searchRows,
  selectCounts,
  selectRows,
  subscribePayload,
} from "./liveState";
import type { Counts, Order, OrderChange, SnapshotPage, Status, StatusFilter, WireFilter } from "./protocol";

const NOW = Date.parse("2026-11-24T01:00:00.000Z");

function order(id: number, version = 1, status: Status = "pending", extra: Partial<Order> = {}): Order {
  return {
    id,
    customer_name: `Customer ${id}`,
    product_name: `Product ${id}`,
    status,
    updated_at: new Date(NOW - 60_000 + id * 1000 + version * 100).toISOString(),
    version,
    ...extra,
  };
}

let positions = 100;
function change(op: OrderChange["op"], id: number, o: Order | null, position?: string): OrderChange {
  positions += 1;
  return {
    op,
    id,
    order: o,
    position: position ?? `nx:${positions}`,
    committed_at: new Date(NOW - 25).toISOString(),
  };
}

function run(state: LiveState, ...actions: LiveAction[]): LiveState {
  return actions.reduce(reduce, state);
}

const wire = (filter: StatusFilter): WireFilter => (filter === null ? {} : { status: filter });

/** The counts a server would send for these orders and filter. */
function countsOf(orders: Order[], filter: StatusFilter = null): Counts {
  const counts: Counts = filter === null ? { pending: 0, shipped: 0, delivered: 0 } : { [filter]: 0 };
  for (const o of orders) if (counts[o.status] !== undefined) counts[o.status]! += 1;
  return counts;
}

/** A `snapshot` page; the first of a snapshot by default. */
function page(filter: StatusFilter, orders: Order[], extra: Partial<SnapshotPage> = { reset: true }): LiveAction {
  return { type: "page", page: { filter: wire(filter), orders, ...extra }, now: NOW };
}

/** The ack that ends a snapshot. */
function snapshotAck(seq: number, filter: StatusFilter, position: string, counts: Counts, extra = {}): LiveAction {
  return { type: "ack", seq, ack: { ok: true, filter: wire(filter), position, counts, snapshot: 0, ...extra }, now: NOW };
}

/** A state subscribed to `filter` whose snapshot (one page) holds `orders`, as of position nx:10. */
function live(filter: StatusFilter, orders: Order[], position = "nx:10", counts?: Counts): LiveState {
  return run(
    initialState(filter),
    { type: "subscribe_sent", seq: 1, filter, since: null },
    page(filter, orders),
    snapshotAck(1, filter, position, counts ?? countsOf(orders, filter)),
  );
}

const ids = (state: LiveState) => selectRows(state).map((row) => row.order.id);

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

describe("reconnect and catch-up", () => {
  it("sends the last position as since", () => {
    const state = run(live("pending", [order(1)]), {
      type: "change",
      change: change("insert", 2, order(2), "nx:14"),
      now: NOW,
    });
    expect(subscribePayload(state)).toEqual({ status: "pending", limit: 500, since: "nx:14" });
    expect(subscribePayload(initialState())).toEqual({ limit: 500 });
  });

  it("shows reconnecting, counts the replayed changes, then goes live", () => {
    let state = live(null, [order(1)]);
    state = reduce(state, { type: "disconnected" });
    expect(state.phase).toBe("reconnecting");
    expect(state.connected).toBe(false);
    state = reduce(state, { type: "subscribe_sent", seq: 2, filter: null, since: "nx:10" });
    expect(state.phase).toBe("catching_up");
    // replayed changes arrive before the ack
    state = reduce(state, { type: "change", change: change("insert", 2, order(2), "nx:11"), now: NOW });
    state = reduce(state, { type: "change", change: change("update", 1, order(1, 2, "shipped"), "nx:12"), now: NOW });
    state = reduce(state, { type: "change", change: change("delete", 2, null, "nx:13"), now: NOW });
    expect(state.replayedSoFar).toBe(3);
    expect(state.phase).toBe("catching_up");
    expect(state.latencyMs).toBeNull(); // replays are old: no latency from them
    state = reduce(state, {
      type: "ack",
      seq: 2,
      ack: { ok: true, filter: {}, replayed: 3, position: "nx:13", counts: { pending: 0, shipped: 1, delivered: 0 } },
      now: NOW,
    });
    expect(state.phase).toBe("live");
    expect(state.position).toBe("nx:13");
    expect(state.recovery).toEqual({ kind: "caught_up", replayed: 3, at: NOW });
    expect(ids(state)).toEqual([1]);
    expect(state.orders.get(1)?.status).toBe("shipped");
    expect(state.announcement?.text).toBe("Back online. Caught up: 3 changes replayed.");
    expect(selectCounts(state).byStatus).toEqual({ pending: 0, shipped: 1, delivered: 0 });
  });

  it("replaces the view when the ack is a resync", () => {
    let state = live(null, [order(1), order(2)]);
    state = run(
      state,
      { type: "disconnected" },
      { type: "subscribe_sent", seq: 2, filter: null, since: "nx:10" },
      page(null, [order(3)]),
      snapshotAck(2, null, "nx:99", { pending: 1, shipped: 0, delivered: 0 }, { resync: "history_gone", snapshot: 1 }),
    );
    expect(ids(state)).toEqual([3]);
    expect(state.announcement?.text).toBe("Back online. Resynced: showing 1 order.");
    expect(state.phase).toBe("resynced");
    expect(state.position).toBe("nx:99");
    expect(state.recovery).toEqual({ kind: "resynced", reason: "history_gone", at: NOW });
    // the next live change: live again
    state = reduce(state, { type: "change", change: change("insert", 4, order(4), "nx:100"), now: NOW });
    expect(state.phase).toBe("live");
  });

  it("a subscribe without a position after a reconnect gets a snapshot", () => {
    let state = run(initialState(), { type: "subscribe_sent", seq: 1, filter: null, since: null }, { type: "disconnected" });
    expect(state.phase).toBe("reconnecting");
    state = reduce(state, { type: "subscribe_sent", seq: 2, filter: null, since: null });
    expect(state.phase).toBe("connecting");
  });
});

describe("a refused connection", () => {
  const full = { code: "too_many_connections", message: "the server is full" };

  it("goes to refused with the server's reason and the next try, announced once per streak", () => {
    const first = reduce(initialState(), { type: "refused", refusal: full, now: NOW, retryAt: NOW + 500 });
    expect(first.phase).toBe("refused");
    expect(first.connected).toBe(false);
    expect(first.refusal).toEqual({ ...full, at: NOW, retryAt: NOW + 500 });
    expect(first.refusedInARow).toBe(1);
    expect(first.announcement?.text).toBe("Connection refused: the server is full. Retrying by itself.");

    const retrying = reduce(first, { type: "retrying" });
    expect(retrying.refusal?.retryAt).toBeNull();
    const again = reduce(retrying, { type: "refused", refusal: full, now: NOW + 600, retryAt: NOW + 1600 });
    expect(again.refusedInARow).toBe(2);
    expect(again.refusal?.retryAt).toBe(NOW + 1600);
    expect(again.announcement).toBe(first.announcement); // not said again

    const other = reduce(again, {
      type: "refused",
      refusal: { code: "forbidden", message: "this token does not allow reads" },
      now: NOW + 2000,
      retryAt: NOW + 4000,
    });
    expect(other.announcement?.text).toBe("Connection refused: the token was not accepted. Retrying by itself.");
  });

  it("keeps the last known orders, and a connect resets the count and catches up", () => {
    const before = live(null, [order(1), order(2)]);
    const lost = reduce(before, { type: "disconnected" });
    const refused = run(
      lost,
      { type: "refused", refusal: full, now: NOW, retryAt: NOW + 500 },
      { type: "retrying" },
      { type: "refused", refusal: full, now: NOW + 600, retryAt: NOW + 1600 },
    );
    expect(ids(refused)).toEqual([2, 1]);
    expect(refused.refusedInARow).toBe(2);

    const back = reduce(refused, { type: "subscribe_sent", seq: 2, filter: null, since: "nx:10" });
    expect(back.phase).toBe("catching_up");
    expect(back.refusal).toBeNull();
    expect(back.refusedInARow).toBe(0);

    const fresh = reduce(reduce(initialState(), { type: "refused", refusal: full, now: NOW, retryAt: NOW + 500 }), {
      type: "subscribe_sent",
      seq: 1,
      filter: null,
      since: null,
    });
    expect(fresh.phase).toBe("connecting");
  });

  it("a failed transport after a refusal is the client's own reconnection again", () => {
    const refused = reduce(live(null, [order(1)]), { type: "refused", refusal: full, now: NOW, retryAt: NOW + 500 });
    const failed = reduce(refused, { type: "connect_failed" });
    expect(failed.phase).toBe("reconnecting");
    expect(failed.refusal).toBeNull();
    expect(failed.refusedInARow).toBe(1); // still counted until a connection succeeds
    expect(reduce(failed, { type: "connect_failed" })).toBe(failed);
    expect(reduce(initialState(), { type: "connect_failed" }).phase).toBe("connecting");
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

describe("selectors", () => {
  it("sorts newest change first, ties by higher id", () => {
    const same = "2026-11-24T00:00:00.000Z";
    const state = live(null, [
      order(1, 1, "pending", { updated_at: same }),
      order(2, 1, "pending", { updated_at: same }),
      order(3, 1, "pending", { updated_at: "2026-11-24T00:00:01.000Z" }),
    ]);
    expect(ids(state)).toEqual([3, 2, 1]);
  });

  it("searches customer, product and id", () => {
    const rows = selectRows(
      live(null, [
        order(1, 1, "pending", { customer_name: "Ada Lovelace", product_name: "Desk lamp" }),
        order(12, 1, "shipped", { customer_name: "Grace Hopper", product_name: "Webcam" }),
      ]),
    );
    expect(searchRows(rows, "ada").map((r) => r.order.id)).toEqual([1]);
    expect(searchRows(rows, "WEBCAM").map((r) => r.order.id)).toEqual([12]);
    expect(searchRows(rows, "#12").map((r) => r.order.id)).toEqual([12]);
    expect(searchRows(rows, "grace cam").map((r) => r.order.id)).toEqual([12]);
    expect(searchRows(rows, "  ").length).toBe(2);
    expect(searchRows(rows, "nobody").length).toBe(0);
  });

  it("counts per status from the ack, not from the orders held", () => {
    const state = live(null, [order(1), order(2, 1, "shipped")], "nx:10", { pending: 30_000, shipped: 3_000, delivered: 500 });
    expect(selectCounts(state)).toEqual({
      byStatus: { pending: 30_000, shipped: 3_000, delivered: 500 },
      total: 33_500,
      held: 2,
    });
  });
});
