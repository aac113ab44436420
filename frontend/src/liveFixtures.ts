// Fixtures of the live-state tests (*.test.ts): orders, changes, snapshot pages and acks as a
// server would send them, and a view subscribed and loaded.

import { type LiveAction, type LiveState, initialState, reduce, selectRows } from "./liveState";
import type { Counts, Order, OrderChange, SnapshotPage, Status, StatusFilter, WireFilter } from "./protocol";

export const NOW = Date.parse("2026-11-24T01:00:00.000Z");

export function order(id: number, version = 1, status: Status = "pending", extra: Partial<Order> = {}): Order {
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
export function change(op: OrderChange["op"], id: number, o: Order | null, position?: string): OrderChange {
  positions += 1;
  return {
    op,
    id,
    order: o,
    position: position ?? `nx:${positions}`,
    committed_at: new Date(NOW - 25).toISOString(),
  };
}

export function run(state: LiveState, ...actions: LiveAction[]): LiveState {
  return actions.reduce(reduce, state);
}

export const wire = (filter: StatusFilter): WireFilter => (filter === null ? {} : { status: filter });

/** The counts a server would send for these orders and filter. */
export function countsOf(orders: Order[], filter: StatusFilter = null): Counts {
  const counts: Counts = filter === null ? { pending: 0, shipped: 0, delivered: 0 } : { [filter]: 0 };
  for (const o of orders) if (counts[o.status] !== undefined) counts[o.status]! += 1;
  return counts;
}

/** A `snapshot` page; the first of a snapshot by default. */
export function page(filter: StatusFilter, orders: Order[], extra: Partial<SnapshotPage> = { reset: true }): LiveAction {
  return { type: "page", page: { filter: wire(filter), orders, ...extra }, now: NOW };
}

/** The ack that ends a snapshot. */
export function snapshotAck(seq: number, filter: StatusFilter, position: string, counts: Counts, extra = {}): LiveAction {
  return { type: "ack", seq, ack: { ok: true, filter: wire(filter), position, counts, snapshot: 0, ...extra }, now: NOW };
}

/** A state subscribed to `filter` whose snapshot (one page) holds `orders`, as of position nx:10. */
export function live(filter: StatusFilter, orders: Order[], position = "nx:10", counts?: Counts): LiveState {
  return run(
    initialState(filter),
    { type: "subscribe_sent", seq: 1, filter, since: null },
    page(filter, orders),
    snapshotAck(1, filter, position, counts ?? countsOf(orders, filter)),
  );
}

export const ids = (state: LiveState) => selectRows(state).map((row) => row.order.id);
