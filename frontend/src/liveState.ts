// The dashboard's live view of the orders, as a pure reducer: no React, no Socket.IO, no clock.
//
// Everything the protocol asks of a client (docs/protocol.md, "What a client must do") lives
// here and in the modules this reducer is built from, so that it can be tested without a browser
// or a server:
// - keep the last position (from every order_change, ack and resync);
// - apply changes idempotently by version, drop deletes of unknown ids, drop orders that left
//   the status filter;
// - build the view from `snapshot` pages as they arrive: the first (`reset`) drops the view and
//   forgets the position (a snapshot cut off by a disconnect is not resumed), each page upserts by
//   version and removes its `removed` ids; the ack (or the `resync` event) ends the snapshot and
//   gives the position;
// - subscribe with a window (the newest WINDOW orders); live changes still cover every matching
//   order, and older ones are loaded page by page over REST (`older_*`) and merged by version;
// - take the counts per status from the protocol (ack, resync, each change), never from the orders
//   held, which are only a window;
// - count the changes replayed before a catch-up ack;
// - apply the `order_changes` batch event change by change;
// - tell a connection the server refused (wrong token, server full) from one that was lost, and
//   count the refusals in a row, for the growing delay before the next attempt (refusal.ts); a
//   token that ended with no new one to be had is a `final` refusal, not tried again by itself.
// It also holds the optimistic writes of this tab, which overlay the confirmed orders until the
// server accepts (the answer is applied like a change) or refuses them (the overlay goes).
//
// The modules: liveView.ts (the state and the empty view), viewDraft.ts (changes applied to a
// copy of the view), snapshotPages.ts, olderOrders.ts, statusCounts.ts, announcements.ts (the
// aria-live texts) and orderRows.ts (the rows to show). This one is the reducer; it re-exports what
// the rest of the dashboard uses from them, so that they import from "./liveState" alone.

import { announce, describeEffect, lower, plural, showingText } from "./announcements";
import { type LiveState, NO_OLDER, type Optimistic } from "./liveView";
import { onOlderFailed, onOlderLoaded, onOlderStarted } from "./olderOrders";
import {
  type Order,
  type OrderChange,
  type OrdersPage,
  type ResyncMessage,
  type SnapshotPage,
  type StatusFilter,
  type SubscribeAck,
  type SubscribePayload,
  sameFilter,
} from "./protocol";
import { type Refusal, explainRefusal } from "./refusal";
import { awaitingSnapshot, onPage, snapshotDone } from "./snapshotPages";
import { takeCounts } from "./statusCounts";
import { Draft } from "./viewDraft";

export {
  type ActiveRefusal,
  type Announcement,
  type Flash,
  type LiveState,
  type Older,
  type Optimistic,
  type OrderEdit,
  type PendingSubscribe,
  type Phase,
  type Recovery,
  initialState,
} from "./liveView";
export { OLDER_PAGE, cursorOf, mayLoadOlder, olderCursor } from "./olderOrders";
export { type Row, compareOrders, searchRows, selectRows } from "./orderRows";
export { type StatusCounts, coveredStatuses, formatCount, selectCounts, totalCount } from "./statusCounts";

/** The window of the subscription: its snapshot is the newest WINDOW matching orders. */
export const WINDOW = 500;

export type LiveAction =
  | { type: "subscribe_sent"; seq: number; filter: StatusFilter; since: string | null }
  | { type: "ack"; seq: number; ack: SubscribeAck; now: number }
  | { type: "ack_timeout"; seq: number }
  | { type: "disconnected" }
  /** The server refused the connection; the next attempt is due at `retryAt`. A `final` refusal (a
   *  token that ended, with no new one to be had) is not tried again by itself (`retryAt` null). */
  | { type: "refused"; refusal: Refusal; now: number; retryAt: number | null; final?: boolean }
  /** The next attempt after a refusal has started. */
  | { type: "retrying" }
  /** A connection attempt failed below Socket.IO (server down): the client retries by itself. */
  | { type: "connect_failed" }
  | { type: "change"; change: OrderChange; now: number }
  | { type: "changes"; changes: readonly OrderChange[]; now: number }
  | { type: "resync"; message: ResyncMessage; now: number }
  /** One `snapshot` page. */
  | { type: "page"; page: SnapshotPage; now: number }
  /** A request for older orders is under way (for the view of `epoch`). */
  | { type: "older_started"; epoch: number }
  | { type: "older_loaded"; epoch: number; page: OrdersPage; now: number }
  | { type: "older_failed"; epoch: number; message: string }
  | { type: "set_filter"; filter: StatusFilter }
  | { type: "optimistic"; write: Optimistic }
  /** The server accepted a write: its answer (order, or the id deleted) is applied. */
  | { type: "settled"; key: string; order?: Order; deletedId?: number; now: number }
  /** The server refused a write: the overlay goes; `current` is the server's order when it said
   *  (409), `goneId` an order it says does not exist (404). */
  | { type: "rolled_back"; key: string; current?: Order; goneId?: number; now: number };

function applyChanges(state: LiveState, changes: readonly OrderChange[], now: number): LiveState {
  if (changes.length === 0 || awaitingSnapshot(state)) return state;
  const draft = new Draft(state);
  const catchingUp = state.subscribing !== null && state.subscribing.since !== null;
  const said: string[] = [];
  let counts = state.counts;
  for (const change of changes) {
    const order = change.op === "delete" ? null : change.order;
    const text = describeEffect(draft.apply(change.id, order, state.filter, now), state.filter);
    if (text !== null) said.push(text);
    // The counts right after this change (global): taken even when the view ignored the change.
    counts = takeCounts(state.filter, change.counts, counts);
  }
  const last = changes[changes.length - 1];
  if (catchingUp) {
    // Replayed before the ack: counted, and announced once the ack says how many.
    return draft.commit({ position: last.position, counts, replayedSoFar: state.replayedSoFar + changes.length });
  }
  const committed = Date.parse(last.committed_at);
  const text = said.length === 0 ? null : said.length === 1 ? said[0] : `${said.length} changes applied.`;
  return draft.commit({
    position: last.position,
    counts,
    latencyMs: Number.isNaN(committed) ? state.latencyMs : Math.max(0, now - committed),
    lastChangeAt: now,
    phase: state.phase === "resynced" ? "live" : state.phase,
    announcement: announce(state, text),
  });
}

function onAck(state: LiveState, seq: number, ack: SubscribeAck, now: number): LiveState {
  const pending = state.subscribing;
  if (pending === null || pending.seq !== seq) return state; // an answer to a superseded subscribe
  if (!ack.ok) {
    return { ...state, subscribing: null, error: `Subscription refused: ${ack.error.message}` };
  }
  const settled = { ...state, subscribing: null, error: null, replayedSoFar: 0 };
  if ("replayed" in ack) {
    return {
      ...settled,
      position: ack.position,
      counts: takeCounts(state.filter, ack.counts, state.counts),
      snapshotting: false,
      phase: "live",
      loaded: true,
      recovery: { kind: "caught_up", replayed: ack.replayed, at: now },
      announcement: announce(state, `Back online. Caught up: ${plural(ack.replayed, "change")} replayed.`),
    };
  }
  const replaced = snapshotDone(settled, ack.position, ack.counts);
  if (ack.resync !== undefined) {
    return {
      ...replaced,
      phase: "resynced",
      recovery: { kind: "resynced", reason: ack.resync, at: now },
      announcement: announce(state, `Back online. Resynced: ${lower(showingText(replaced))}.`),
    };
  }
  const wasOffline = state.phase === "reconnecting";
  return {
    ...replaced,
    phase: "live",
    announcement: announce(state, `${wasOffline ? "Back online. " : ""}${showingText(replaced)}.`),
  };
}

function onResync(state: LiveState, message: ResyncMessage, now: number): LiveState {
  if (!sameFilter(message.filter, state.filter)) return state; // for a filter this view left
  const pending = state.subscribing;
  const replaced = snapshotDone(state, message.position, message.counts);
  return {
    ...replaced,
    subscribing: pending === null ? null : { ...pending, resynced: true },
    phase: "resynced",
    recovery: { kind: "resynced", reason: message.reason, at: now },
    announcement: announce(state, `Resynced: ${lower(showingText(replaced))}.`),
  };
}

function onRefused(state: LiveState, refusal: Refusal, now: number, retryAt: number | null, final: boolean): LiveState {
  const previous = state.refusal;
  // Said once per streak (and when the reason changes), not at every retry.
  const news =
    previous === null || previous.code !== refusal.code || previous.message !== refusal.message || previous.final !== final;
  const text = explainRefusal(refusal);
  return {
    ...state,
    phase: "refused",
    connected: false,
    subscribing: null,
    replayedSoFar: 0,
    refusal: { ...refusal, at: now, retryAt: final ? null : retryAt, final },
    refusedInARow: state.refusedInARow + 1,
    announcement: news
      ? announce(state, final ? `${text.title}.` : `Connection refused: ${text.summary}. Retrying by itself.`)
      : state.announcement,
  };
}

function onSettled(state: LiveState, key: string, order: Order | undefined, deletedId: number | undefined, now: number) {
  const optimistic = state.optimistic.filter((w) => w.key !== key);
  if (order === undefined && deletedId === undefined) return { ...state, optimistic };
  const draft = new Draft(state);
  if (order !== undefined) draft.apply(order.id, order, state.filter, now);
  if (deletedId !== undefined) draft.apply(deletedId, null, state.filter, now);
  return draft.commit({ optimistic });
}

export function reduce(state: LiveState, action: LiveAction): LiveState {
  switch (action.type) {
    case "subscribe_sent":
      return {
        ...state,
        connected: true,
        everConnected: true,
        subscribing: { seq: action.seq, filter: action.filter, since: action.since, resynced: false },
        replayedSoFar: 0,
        error: null,
        refusal: null,
        refusedInARow: 0,
        phase:
          action.since !== null
            ? "catching_up"
            : state.phase === "reconnecting" || state.phase === "refused"
              ? "connecting"
              : state.phase,
      };
    case "ack":
      return onAck(state, action.seq, action.ack, action.now);
    case "ack_timeout": {
      const pending = state.subscribing;
      if (pending === null || pending.seq !== action.seq) return state;
      if (pending.resynced) return { ...state, subscribing: null };
      return { ...state, subscribing: null, error: "The server did not answer the subscription. Retrying…" };
    }
    case "disconnected":
      return {
        ...state,
        connected: false,
        subscribing: null,
        snapshotting: false, // its position was forgotten: the next subscribe asks a fresh snapshot
        replayedSoFar: 0,
        phase: state.everConnected ? "reconnecting" : "connecting",
      };
    case "refused":
      return onRefused(state, action.refusal, action.now, action.retryAt, action.final ?? false);
    case "retrying":
      // Under way already: nothing changes. A final refusal is tried again only by hand.
      if (state.refusal === null || (state.refusal.retryAt === null && !state.refusal.final)) return state;
      return { ...state, refusal: { ...state.refusal, retryAt: null, final: false } };
    case "connect_failed":
      // After a refusal, the retry found no server: from here the client's own reconnection runs.
      if (state.phase !== "refused") return state;
      return { ...state, refusal: null, phase: state.everConnected ? "reconnecting" : "connecting" };
    case "change":
      return applyChanges(state, [action.change], action.now);
    case "changes":
      return applyChanges(state, action.changes, action.now);
    case "resync":
      return onResync(state, action.message, action.now);
    case "page":
      return onPage(state, action.page);
    case "older_started":
      return onOlderStarted(state, action.epoch);
    case "older_loaded":
      return onOlderLoaded(state, action.epoch, action.page);
    case "older_failed":
      return onOlderFailed(state, action.epoch, action.message);
    case "set_filter": {
      if (action.filter === state.filter) return state;
      // Keep what is known to match until the snapshot for the new filter replaces it.
      const orders = new Map<number, Order>();
      for (const [id, order] of state.orders) {
        if (action.filter === null || order.status === action.filter) orders.set(id, order);
      }
      return {
        ...state,
        filter: action.filter,
        orders,
        position: null,
        loaded: false,
        snapshotting: false,
        flashes: new Map(),
        // What is known of the new filter's statuses stays until its ack says.
        counts: takeCounts(action.filter, state.counts, {}),
        epoch: state.epoch + 1,
        older: NO_OLDER,
        departed: new Map(),
      };
    }
    case "optimistic":
      return { ...state, optimistic: [...state.optimistic, action.write] };
    case "settled":
      return onSettled(state, action.key, action.order, action.deletedId, action.now);
    case "rolled_back":
      return onSettled(state, action.key, action.current, action.goneId, action.now);
  }
}

/** The `subscribe` payload for (re)subscribing the current filter: windowed, with `since` to resume. */
export function subscribePayload(state: LiveState): SubscribePayload {
  const payload: SubscribePayload = {};
  if (state.filter !== null) payload.status = state.filter;
  payload.limit = WINDOW;
  if (state.position !== null) payload.since = state.position;
  return payload;
}
