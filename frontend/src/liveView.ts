// The state of the dashboard's live view of the orders (the reducer is liveState.ts): its shape,
// the writes of this tab laid over it, and the empty view it starts from.

import type { Counts, Order, Status, StatusFilter } from "./protocol";
import type { Refusal } from "./refusal";

export type Phase = "connecting" | "live" | "reconnecting" | "catching_up" | "resynced" | "refused";

/** The server refused the connection (phase `refused`): what it said, and when the next try is. */
export interface ActiveRefusal extends Refusal {
  at: number;
  /** When the next attempt is due; null while it is under way, or when there is none (`final`). */
  retryAt: number | null;
  /** Not tried again by itself: the token ended (expired or revoked) and no new one can be had.
   *  "Retry now" still tries. */
  final: boolean;
}

/** A `subscribe` sent and not yet answered. */
export interface PendingSubscribe {
  seq: number;
  filter: StatusFilter;
  since: string | null;
  /** A `resync` event for this filter arrived meanwhile: the view is current without the ack. */
  resynced: boolean;
}

export type Recovery =
  | { kind: "caught_up"; replayed: number; at: number }
  | { kind: "resynced"; reason: string; at: number };

export interface OrderEdit {
  customer_name?: string;
  product_name?: string;
  status?: Status;
}

/** A write of this tab that the server has not answered yet. */
export type Optimistic =
  | { key: string; kind: "create"; order: Order }
  | { key: string; kind: "update"; id: number; changes: OrderEdit }
  | { key: string; kind: "delete"; id: number };

export interface Flash {
  serial: number;
  at: number;
}

export interface Announcement {
  text: string;
  serial: number;
}

/** Loading the orders older than the window, page by page (`GET /api/orders?before=`). */
export interface Older {
  /** The `next_before` of the last page; null: none loaded yet (start from the oldest held order). */
  cursor: string | null;
  /** The last page said there is nothing older (`next_before: null`). */
  exhausted: boolean;
  loading: boolean;
  error: string | null;
}

export const NO_OLDER: Older = { cursor: null, exhausted: false, loading: false, error: null };

export interface LiveState {
  /** The filter of the view (and of the subscription): null for all orders. */
  filter: StatusFilter;
  /** The confirmed orders of the view, by id. */
  orders: ReadonlyMap<number, Order>;
  /** The last position received: sent as `since` on reconnect. */
  position: string | null;
  phase: Phase;
  connected: boolean;
  everConnected: boolean;
  /** The view holds a whole snapshot of the current filter (false while a filter switch or a
   *  snapshot's pages load). */
  loaded: boolean;
  /** A snapshot's pages are arriving (from its `reset` page until its ack or resync event). */
  snapshotting: boolean;
  /** Orders per status from the protocol, for the statuses the filter covers (absent: unknown). */
  counts: Counts;
  /** Increases on every reset and filter switch: an older page asked for before it is dropped. */
  epoch: number;
  older: Older;
  /** Orders a change showed outside the filter (id -> version), so that an older page read before
   *  that change does not bring them back. */
  departed: ReadonlyMap<number, number>;
  subscribing: PendingSubscribe | null;
  /** Changes replayed so far during a catch-up. */
  replayedSoFar: number;
  /** The last catch-up or resync, for the connection indicator. */
  recovery: Recovery | null;
  /** Commit-to-apply time of the last live change, in ms. */
  latencyMs: number | null;
  lastChangeAt: number | null;
  /** Increases with every change applied to the view. */
  serial: number;
  /** Rows to highlight: the serial and time of the last change applied to each id. */
  flashes: ReadonlyMap<number, Flash>;
  /** Ids known deleted (ids are never reused): a late insert or update must not bring them back. */
  tombstones: ReadonlySet<number>;
  optimistic: readonly Optimistic[];
  /** The text for the aria-live region. */
  announcement: Announcement | null;
  /** A subscription error, shown to the user. */
  error: string | null;
  /** The refusal being waited out (phase `refused`), else null. */
  refusal: ActiveRefusal | null;
  /** Connections refused in a row since the last one that succeeded (for the retry delay). */
  refusedInARow: number;
}

export function initialState(filter: StatusFilter = null): LiveState {
  return {
    filter,
    orders: new Map(),
    position: null,
    phase: "connecting",
    connected: false,
    everConnected: false,
    loaded: false,
    snapshotting: false,
    counts: {},
    epoch: 0,
    older: NO_OLDER,
    departed: new Map(),
    subscribing: null,
    replayedSoFar: 0,
    recovery: null,
    latencyMs: null,
    lastChangeAt: null,
    serial: 0,
    flashes: new Map(),
    tombstones: new Set(),
    optimistic: [],
    announcement: null,
    error: null,
    refusal: null,
    refusedInARow: 0,
  };
}
