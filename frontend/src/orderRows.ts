// The rows of the table: the confirmed orders with this tab's pending writes laid over them,
// sorted as the server sorts, and searched client-side.

import type { Flash, LiveState, OrderEdit } from "./liveView";
import type { Order } from "./protocol";
import { latestFlashes } from "./rowHighlight";

export interface Row {
  order: Order;
  /** A write of this tab is on its way for this row. */
  pending: "create" | "update" | null;
  /** The change to highlight the row for: only on the rows of the latest changes (a burst lights
   *  up its last rows, not all of them). */
  flash: Flash | undefined;
}

/** Newest first, as the server sorts: `updated_at` descending, then higher id first. */
export function compareOrders(a: Order, b: Order): number {
  if (a.updated_at !== b.updated_at) return a.updated_at < b.updated_at ? 1 : -1;
  return b.id - a.id;
}

/** The rows to show: confirmed orders with this tab's pending writes laid over them. */
export function selectRows(state: LiveState): Row[] {
  const updates = new Map<number, OrderEdit>();
  const deletes = new Set<number>();
  const creates: Order[] = [];
  for (const write of state.optimistic) {
    if (write.kind === "create") creates.push(write.order);
    else if (write.kind === "delete") deletes.add(write.id);
    else updates.set(write.id, { ...updates.get(write.id), ...write.changes });
  }
  const flashes = latestFlashes(state.flashes);
  const rows: Row[] = [];
  for (const order of state.orders.values()) {
    if (deletes.has(order.id)) continue;
    const edit = updates.get(order.id);
    rows.push({
      order: edit === undefined ? order : { ...order, ...edit },
      pending: edit === undefined ? null : "update",
      flash: flashes.get(order.id),
    });
  }
  for (const order of creates) {
    if (state.filter === null || order.status === state.filter) rows.push({ order, pending: "create", flash: undefined });
  }
  rows.sort((a, b) => compareOrders(a.order, b.order));
  return rows;
}

/** Client-side text search on id, customer and product (case-insensitive). */
export function searchRows(rows: readonly Row[], query: string): Row[] {
  const words = query.trim().toLowerCase().split(/\s+/).filter(Boolean);
  if (words.length === 0) return [...rows];
  return rows.filter(({ order }) => {
    const text = `#${order.id} ${order.id} ${order.customer_name} ${order.product_name}`.toLowerCase();
    return words.every((word) => text.includes(word));
  });
}
