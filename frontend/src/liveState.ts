// The dashboard's live view of the orders, as a pure reducer: no React, no Socket.IO, no clock.
//
// Everything the protocol asks of a client (docs/protocol.md, "What a client must do") lives
// here, so that it can be tested without a browser or a server:
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
//   count the refusals in a row, for the growing delay before the next attempt (refusal.ts).
// It also holds the optimistic writes of this tab, which overlay the confirmed orders until the
// server accepts (the answer is applied like a change) or refuses them (the overlay goes).

import {
  type Counts,
  type Order,
  type OrderChange,
  type OrdersPage,
  type ResyncMessage,
  STATUSES,
  type SnapshotPage,
  type Status,
  type StatusFilter,
  type SubscribeAck,
  type SubscribePayload,
  sameFilter,
} from "./protocol";
import { type Refusal, explainRefusal } from "./refusal";

/** The window of the subscription: its snapshot is the newest WINDOW matching orders. */
export const WINDOW = 500;
/** Orders per "Load older" request. */
export const OLDER_PAGE = 100;

export type Phase = "connecting" | "live" | "reconnecting" | "catching_up" | "resynced" | "refused";

/** The server refused the connection (phase `refused`): what it said, and when the next try is. */
export interface ActiveRefusal extends Refusal {
  at: number;
  /** When the next attempt is due; null while it is under way. */
  retryAt: number | null;
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

const NO_OLDER: Older = { cursor: null, exhausted: false, loading: false, error: null };

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

export type LiveAction =
  | { type: "subscribe_sent"; seq: number; filter: StatusFilter; since: string | null }
  | { type: "ack"; seq: number; ack: SubscribeAck; now: number }
  | { type: "ack_timeout"; seq: number }
  | { type: "disconnected" }
  /** The server refused the connection; the next attempt is due at `retryAt`. */
  | { type: "refused"; refusal: Refusal; now: number; retryAt: number }
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

const MAX_TOMBSTONES = 5000;

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

// ---------------------------------------------------------------------------------------------
// Applying one change to a mutable copy of the view

type Effect =
  | { kind: "ignored" }
  | { kind: "inserted"; after: Order }
  | { kind: "updated"; before: Order; after: Order }
  | { kind: "moved_out"; before: Order; after: Order }
  | { kind: "deleted"; before: Order };

class Draft {
  orders: Map<number, Order>;
  flashes: Map<number, Flash>;
  tombstones: Set<number> | null = null;
  departed: Map<number, number> | null = null;
  serial: number;

  constructor(private readonly state: LiveState) {
    this.orders = new Map(state.orders);
    this.flashes = new Map(state.flashes);
    this.serial = state.serial;
  }

  /** Drops the whole view (a snapshot's first page). */
  clear(): void {
    this.orders = new Map();
    this.flashes = new Map();
    this.serial += 1;
  }

  /** An order a change showed outside the filter, at this version. */
  private depart(id: number, version: number): void {
    if (this.departed === null) this.departed = new Map(this.state.departed);
    this.departed.delete(id); // re-inserted: the newest last
    this.departed.set(id, version);
    while (this.departed.size > MAX_TOMBSTONES) {
      const oldest = this.departed.keys().next().value as number;
      this.departed.delete(oldest);
    }
  }

  private bury(id: number): void {
    if (this.state.tombstones.has(id) && this.tombstones === null) return;
    if (this.tombstones === null) this.tombstones = new Set(this.state.tombstones);
    this.tombstones.add(id);
    while (this.tombstones.size > MAX_TOMBSTONES) {
      const oldest = this.tombstones.values().next().value as number;
      this.tombstones.delete(oldest);
    }
  }

  private isBuried(id: number): boolean {
    return (this.tombstones ?? this.state.tombstones).has(id);
  }

  /** One change (from the feed or from a REST answer), idempotently. */
  apply(id: number, order: Order | null, filter: StatusFilter, now: number): Effect {
    const held = this.orders.get(id);
    if (order === null) {
      this.bury(id);
      if (held === undefined) return { kind: "ignored" };
      this.orders.delete(id);
      this.flashes.delete(id);
      this.serial += 1;
      return { kind: "deleted", before: held };
    }
    if (this.isBuried(id)) return { kind: "ignored" };
    if (held !== undefined && order.version <= held.version) return { kind: "ignored" };
    if (filter !== null && order.status !== filter) {
      this.depart(id, order.version);
      if (held === undefined) return { kind: "ignored" };
      this.orders.delete(id);
      this.flashes.delete(id);
      this.serial += 1;
      return { kind: "moved_out", before: held, after: order };
    }
    this.orders.set(id, order);
    this.serial += 1;
    this.flashes.set(id, { serial: this.serial, at: now });
    return held === undefined ? { kind: "inserted", after: order } : { kind: "updated", before: held, after: order };
  }

  /** An order of a snapshot page or of an older page: kept unless a higher version is held (or,
   *  for an older page, `checkDeparted`, a change showed it at that version outside the filter).
   *  Not highlighted: it is not a change. */
  upsert(order: Order, filter: StatusFilter, checkDeparted: boolean): boolean {
    if (this.isBuried(order.id)) return false;
    if (filter !== null && order.status !== filter) return false;
    if (checkDeparted) {
      const seen = (this.departed ?? this.state.departed).get(order.id);
      if (seen !== undefined && order.version <= seen) return false;
    }
    const held = this.orders.get(order.id);
    if (held !== undefined && order.version <= held.version) return false;
    this.orders.set(order.id, order);
    this.serial += 1;
    return true;
  }

  /** An id a snapshot page lists in `removed` (unknown: ignored). */
  remove(id: number): void {
    if (!this.orders.delete(id)) return;
    this.flashes.delete(id);
    this.serial += 1;
  }

  commit(next: Partial<LiveState>): LiveState {
    const changed = this.serial !== this.state.serial; // else keep the old maps: nothing re-renders
    return {
      ...this.state,
      orders: changed ? this.orders : this.state.orders,
      flashes: changed ? this.flashes : this.state.flashes,
      tombstones: this.tombstones ?? this.state.tombstones,
      departed: this.departed ?? this.state.departed,
      serial: this.serial,
      ...next,
    };
  }
}

function describe(effect: Effect, filter: StatusFilter): string | null {
  switch (effect.kind) {
    case "ignored":
      return null;
    case "inserted": {
      const o = effect.after;
      return `Order ${o.id} added: ${o.customer_name}, ${o.product_name}, ${o.status}.`;
    }
    case "updated": {
      const { before, after } = effect;
      if (before.status !== after.status) return `Order ${after.id} is now ${after.status}.`;
      return `Order ${after.id} updated: ${after.customer_name}, ${after.product_name}.`;
    }
    case "moved_out":
      return `Order ${effect.after.id} is now ${effect.after.status} and left the ${filter ?? "current"} view.`;
    case "deleted":
      return `Order ${effect.before.id} deleted.`;
  }
}

function announce(state: LiveState, text: string | null): Announcement | null {
  if (text === null) return state.announcement;
  return { text, serial: (state.announcement?.serial ?? 0) + 1 };
}

/** 33500 -> "33,500". */
export function formatCount(n: number): string {
  return n.toLocaleString("en-US");
}

function plural(n: number, one: string, many = `${one}s`): string {
  return `${formatCount(n)} ${n === 1 ? one : many}`;
}

/** The statuses a filter covers. */
export function coveredStatuses(filter: StatusFilter): readonly Status[] {
  return filter === null ? STATUSES : [filter];
}

/** Counts from the wire, for the statuses the filter covers, laid over `base`. */
function takeCounts(filter: StatusFilter, wire: Counts | undefined, base: Counts): Counts {
  if (wire === undefined || wire === null || typeof wire !== "object") return base;
  const next: Counts = { ...base };
  for (const status of coveredStatuses(filter)) {
    const n = wire[status];
    if (typeof n === "number" && Number.isFinite(n)) next[status] = n;
  }
  return next;
}

/** How many orders match the filter, from the protocol's counts; null while one is unknown. */
export function totalCount(state: Pick<LiveState, "filter" | "counts">): number | null {
  let total = 0;
  for (const status of coveredStatuses(state.filter)) {
    const n = state.counts[status];
    if (n === undefined) return null;
    total += n;
  }
  return total;
}

/** "Showing 2 orders" or "Showing 500 of 33,500 orders". */
function showingText(state: LiveState): string {
  const held = state.orders.size;
  const total = totalCount(state);
  const of = total !== null && total > held ? ` of ${formatCount(total)}` : "";
  return `Showing ${formatCount(held)}${of} ${held === 1 && of === "" ? "order" : "orders"}${
    state.filter === null ? "" : ` with status ${state.filter}`
  }`;
}

// ---------------------------------------------------------------------------------------------
// The reducer

/** Changes are held back while a snapshot for the current filter is on its way, or its pages are
 *  arriving (it covers them; the changes after it come after its ack or resync event). */
function awaitingSnapshot(state: LiveState): boolean {
  if (state.snapshotting) return true;
  const pending = state.subscribing;
  return pending !== null && pending.since === null && !pending.resynced;
}

function applyChanges(state: LiveState, changes: readonly OrderChange[], now: number): LiveState {
  if (changes.length === 0 || awaitingSnapshot(state)) return state;
  const draft = new Draft(state);
  const catchingUp = state.subscribing !== null && state.subscribing.since !== null;
  const said: string[] = [];
  let counts = state.counts;
  for (const change of changes) {
    const order = change.op === "delete" ? null : change.order;
    const text = describe(draft.apply(change.id, order, state.filter, now), state.filter);
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

/** One page of a snapshot of the current filter, applied as it arrives. */
function onPage(state: LiveState, page: SnapshotPage): LiveState {
  if (page === null || typeof page !== "object" || !sameFilter(page.filter, state.filter)) return state;
  const draft = new Draft(state);
  const reset = page.reset === true;
  if (reset) draft.clear();
  for (const order of Array.isArray(page.orders) ? page.orders : []) draft.upsert(order, state.filter, false);
  for (const id of Array.isArray(page.removed) ? page.removed : []) draft.remove(id);
  if (!reset) return draft.commit({ snapshotting: true });
  return draft.commit({
    // Forgotten until the ack: a snapshot cut off by a disconnect must not be resumed.
    position: null,
    loaded: false,
    snapshotting: true,
    epoch: state.epoch + 1,
    older: NO_OLDER,
  });
}

/** The end of a snapshot (its ack or resync event): exact at `position`, with these counts. */
function snapshotDone(state: LiveState, position: string, counts: Counts): LiveState {
  return {
    ...state,
    position,
    counts: takeCounts(state.filter, counts, {}),
    loaded: true,
    snapshotting: false,
  };
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

function lower(text: string): string {
  return text.charAt(0).toLowerCase() + text.slice(1);
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

/** A page of older orders (REST), merged by version into the view it was asked for. */
function onOlderLoaded(state: LiveState, epoch: number, page: OrdersPage): LiveState {
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

function onRefused(state: LiveState, refusal: Refusal, now: number, retryAt: number): LiveState {
  const previous = state.refusal;
  // Said once per streak (and when the reason changes), not at every retry.
  const news = previous === null || previous.code !== refusal.code || previous.message !== refusal.message;
  return {
    ...state,
    phase: "refused",
    connected: false,
    subscribing: null,
    replayedSoFar: 0,
    refusal: { ...refusal, at: now, retryAt },
    refusedInARow: state.refusedInARow + 1,
    announcement: news
      ? announce(state, `Connection refused: ${explainRefusal(refusal).summary}. Retrying by itself.`)
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
      return onRefused(state, action.refusal, action.now, action.retryAt);
    case "retrying":
      if (state.refusal === null || state.refusal.retryAt === null) return state;
      return { ...state, refusal: { ...state.refusal, retryAt: null } };
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
      if (action.epoch !== state.epoch || state.older.loading) return state;
      return { ...state, older: { ...state.older, loading: true, error: null } };
    case "older_loaded":
      return onOlderLoaded(state, action.epoch, action.page);
    case "older_failed":
      if (action.epoch !== state.epoch) return state;
      return { ...state, older: { ...state.older, loading: false, error: action.message } };
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

// ---------------------------------------------------------------------------------------------
// Selectors

export interface Row {
  order: Order;
  /** A write of this tab is on its way for this row. */
  pending: "create" | "update" | null;
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
  const rows: Row[] = [];
  for (const order of state.orders.values()) {
    if (deletes.has(order.id)) continue;
    const edit = updates.get(order.id);
    rows.push({
      order: edit === undefined ? order : { ...order, ...edit },
      pending: edit === undefined ? null : "update",
      flash: state.flashes.get(order.id),
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

export interface StatusCounts {
  /** Per status, for the statuses the filter covers; null: unknown (not covered, or no ack yet). */
  byStatus: Record<Status, number | null>;
  /** Orders matching the filter (null while unknown). */
  total: number | null;
  /** Orders the view holds (the window, plus changed and loaded older orders). */
  held: number;
}

/** The counts to show: from the protocol (ack, resync, changes), not from counting held orders. */
export function selectCounts(state: LiveState): StatusCounts {
  const covered = coveredStatuses(state.filter);
  const byStatus = {} as Record<Status, number | null>;
  for (const status of STATUSES) byStatus[status] = covered.includes(status) ? (state.counts[status] ?? null) : null;
  return { byStatus, total: totalCount(state), held: state.orders.size };
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

/** The `subscribe` payload for (re)subscribing the current filter: windowed, with `since` to resume. */
export function subscribePayload(state: LiveState): SubscribePayload {
  const payload: SubscribePayload = {};
  if (state.filter !== null) payload.status = state.filter;
  payload.limit = WINDOW;
  if (state.position !== null) payload.since = state.position;
  return payload;
}
