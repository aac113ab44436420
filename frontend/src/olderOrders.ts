// Loading the orders older than the window, page by page over REST (`GET /api/orders?before=`),
// merged by version into the view they were asked for.

import { announce, plural } from "./announcements";
import type { LiveState } from "./liveView";
import { compareOrders } from "./orderRows";
import type { Order, OrdersPage } from "./protocol";
import { totalCount } from "./statusCounts";
import { Draft } from "./viewDraft";

/** Orders per "Load older" request. */
export const OLDER_PAGE = 100;

/** A request for older orders is under way (for the view of `epoch`). */
export function onOlderStarted(state: LiveState, epoch: number): LiveState {
  if (epoch !== state.epoch || state.older.loading) return state;
  return { ...state, older: { ...state.older, loading: true, error: null } };
}

/** A page of older orders (REST), merged by version into the view it was asked for. */
export function onOlderLoaded(state: LiveState, epoch: number, page: OrdersPage): LiveState {
  if (epoch !== state.epoch) return state; // asked before a reset or a filter switch: out of date
  const draft = new Draft(state);
  let added = 0;
  for (const order of Array.isArray(page?.orders) ? page.orders : []) {
    if (draft.upsert(order, state.filter, true)) added += 1;
  }
  const next = page?.next_before ?? null;
  return draft.commit({
    older: { cursor: next, exhausted: next === null, loading: false, error: null },
    announcement: announce(state, `Loaded ${plural(added, "older order")}.`),
  });
}

export function onOlderFailed(state: LiveState, epoch: number, message: string): LiveState {
  if (epoch !== state.epoch) return state;
  return { ...state, older: { ...state.older, loading: false, error: message } };
}

/** There may be orders older than the ones held: "Load older" is offered. */
export function mayLoadOlder(state: LiveState): boolean {
  if (!state.loaded || state.snapshotting || state.older.exhausted) return false;
  const total = totalCount(state);
  return total === null || total > state.orders.size;
}

/** The oldest order held, as a cursor: `<updated_at>_<id>`, the format of `next_before`. */
export function cursorOf(order: Order): string {
  return `${order.updated_at}_${order.id}`;
}

/** The `before=` of the next older page: the last page's `next_before`, else the oldest order held
 *  (null when none is held: then the newest page is asked, and merged by version). */
export function olderCursor(state: LiveState): string | null {
  if (state.older.cursor !== null) return state.older.cursor;
  let oldest: Order | null = null;
  for (const order of state.orders.values()) {
    if (oldest === null || compareOrders(order, oldest) > 0) oldest = order;
  }
  return oldest === null ? null : cursorOf(oldest);
}
