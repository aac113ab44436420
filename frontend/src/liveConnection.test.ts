// The connection's life in the reducer: reconnects, catch-ups and refused connections.

import { describe, expect, it } from "vitest";
import { NOW, change, ids, live, order, page, run, snapshotAck } from "./liveFixtures";
import { initialState, reduce, subscribePayload } from "./liveState";
import { selectCounts } from "./statusCounts";

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
    expect(first.refusal).toEqual({ ...full, at: NOW, retryAt: NOW + 500, final: false });
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

describe("a token that ended", () => {
  const expired = { code: "token_expired", message: "the token expired" };

  it("is a final refusal: no next try, said once as the banner's sentence", () => {
    const state = reduce(live(null, [order(1)]), { type: "disconnected" });
    const ended = reduce(state, { type: "refused", refusal: expired, now: NOW, retryAt: null, final: true });
    expect(ended.phase).toBe("refused");
    expect(ended.refusal).toEqual({ ...expired, at: NOW, retryAt: null, final: true });
    expect(ended.announcement?.text).toBe("Your token expired: open the dashboard at /#token=<a new token>.");
    expect(ids(ended)).toEqual([1]);
  });

  it("Retry now (by hand) makes it an attempt under way; a refusal of it is final again", () => {
    const ended = reduce(initialState(), { type: "refused", refusal: expired, now: NOW, retryAt: null, final: true });
    const retrying = reduce(ended, { type: "retrying" });
    expect(retrying.refusal).toMatchObject({ retryAt: null, final: false });
    expect(reduce(retrying, { type: "retrying" })).toBe(retrying);
    const again = reduce(retrying, { type: "refused", refusal: expired, now: NOW + 1, retryAt: null, final: true });
    expect(again.refusal?.final).toBe(true);
    expect(again.refusedInARow).toBe(2);
  });
});
