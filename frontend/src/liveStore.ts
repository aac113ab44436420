// Wires a Socket.IO connection to the pure reducer of liveState.ts, and this tab's writes to the
// REST API with optimistic overlays. Framework-free: React reads it through useSyncExternalStore.

import type { ApiResult, OrderDraft, OrderPatch, OrdersApi } from "./api";
import {
  type LiveAction,
  type LiveState,
  OLDER_PAGE,
  type OrderEdit,
  initialState,
  mayLoadOlder,
  olderCursor,
  reduce,
  subscribePayload,
} from "./liveState";
import {
  type Order,
  type OrderChange,
  type OrderChangeBatch,
  type ResyncMessage,
  type SnapshotPage,
  type StatusFilter,
  type SubscribeAck,
  wireFilter,
} from "./protocol";
import { refusalOf, retryDelayMs } from "./refusal";

/** What the store needs of a socket.io-client Socket (a fake one in tests). */
export interface LiveSocket {
  readonly connected: boolean;
  /** False once the server refused the connection: socket.io-client then stops trying by itself. */
  readonly active: boolean;
  on(event: string, listener: (...args: never[]) => void): unknown;
  emit(event: string, ...args: unknown[]): unknown;
  timeout(ms: number): { emit(event: string, ...args: unknown[]): unknown };
  connect(): unknown;
  disconnect(): unknown;
}

export interface StoreOptions {
  filter?: StatusFilter;
  now?: () => number;
  ackTimeoutMs?: number;
  retryDelayMs?: number;
  setTimer?: (fn: () => void, ms: number) => unknown;
  /** A number in [0, 1) for the jitter of the retry delays after a refusal. */
  random?: () => number;
}

export type WriteOutcome =
  | { ok: true; order: Order | null }
  | { ok: false; status: number; message: string; fields: Record<string, string>; current?: Order };

export class LiveStore {
  private state: LiveState;
  private readonly listeners = new Set<() => void>();
  private seq = 0;
  private keys = 0;
  private tempIds = 0;
  private readonly now: () => number;
  private readonly ackTimeoutMs: number;
  private readonly retryDelayMs: number;
  private readonly setTimer: (fn: () => void, ms: number) => unknown;
  private readonly random: () => number;
  /** Increases with every refusal and every retry: the timer of an older refusal does nothing. */
  private attempt = 0;

  constructor(
    private readonly socket: LiveSocket,
    private readonly api: OrdersApi,
    options: StoreOptions = {},
  ) {
    this.state = initialState(options.filter ?? null);
    this.now = options.now ?? Date.now;
    this.ackTimeoutMs = options.ackTimeoutMs ?? 15_000;
    this.retryDelayMs = options.retryDelayMs ?? 1_000;
    this.setTimer = options.setTimer ?? ((fn, ms) => setTimeout(fn, ms));
    this.random = options.random ?? Math.random;

    socket.on("connect", () => this.sendSubscribe());
    socket.on("connect_error", (error: Error) => {
      // Still active: a transport failure (server down), which the client retries by itself.
      if (this.socket.active) this.dispatch({ type: "connect_failed" });
      else this.refused(error);
    });
    socket.on("disconnect", (reason: string) => {
      this.dispatch({ type: "disconnected" });
      // socket.io-client does not reconnect after a server-initiated disconnect by itself.
      if (reason === "io server disconnect") this.setTimer(() => this.socket.connect(), this.retryDelayMs);
    });
    socket.on("order_change", (change: OrderChange) => {
      this.dispatch({ type: "change", change, now: this.now() });
    });
    socket.on("order_changes", (batch: OrderChangeBatch) => {
      this.dispatch({ type: "changes", changes: batch?.changes ?? [], now: this.now() });
    });
    socket.on("snapshot", (page: SnapshotPage) => {
      this.dispatch({ type: "page", page, now: this.now() });
    });
    socket.on("resync", (message: ResyncMessage) => {
      this.dispatch({ type: "resync", message, now: this.now() });
    });
    if (socket.connected) this.sendSubscribe();
  }

  // -- for React ------------------------------------------------------------------------------
  getState = (): LiveState => this.state;

  listen = (listener: () => void): (() => void) => {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  };

  dispatch(action: LiveAction): void {
    const next = reduce(this.state, action);
    if (next === this.state) return;
    this.state = next;
    for (const listener of this.listeners) listener();
  }

  // -- refused connections ------------------------------------------------------------------
  /** The server refused the connection: shown, and tried again after a growing, jittered delay. */
  private refused(error: Error): void {
    const now = this.now();
    const delay = retryDelayMs(this.state.refusedInARow + 1, this.random());
    this.dispatch({ type: "refused", refusal: refusalOf(error), now, retryAt: now + delay });
    const attempt = ++this.attempt;
    this.setTimer(() => {
      if (attempt === this.attempt) this.retryNow();
    }, delay);
  }

  /** Tries a refused connection again at once (the "Retry now" button, or the timer). */
  retryNow(): void {
    if (this.state.phase !== "refused" || this.socket.connected || this.socket.active) return;
    this.attempt += 1; // the pending timer, if any, is void
    this.dispatch({ type: "retrying" });
    this.socket.connect();
  }

  // -- the subscription -----------------------------------------------------------------------
  setFilter(filter: StatusFilter): void {
    const old = this.state.filter;
    if (old === filter) return;
    this.dispatch({ type: "set_filter", filter });
    if (this.socket.connected) {
      this.socket.emit("unsubscribe", wireFilter(old));
      this.sendSubscribe();
    }
  }

  private sendSubscribe(): void {
    const seq = ++this.seq;
    const payload = subscribePayload(this.state);
    this.dispatch({ type: "subscribe_sent", seq, filter: this.state.filter, since: payload.since ?? null });
    this.socket.timeout(this.ackTimeoutMs).emit("subscribe", payload, (err: unknown, ack: SubscribeAck) => {
      if (err) {
        this.dispatch({ type: "ack_timeout", seq });
      } else {
        this.dispatch({ type: "ack", seq, ack, now: this.now() });
      }
      // A refused or unanswered subscribe is tried again while it is still the current one.
      if (seq === this.seq && this.state.subscribing === null && this.state.error !== null) {
        const retryable = err || (!ack.ok && ack.error.code === "unavailable");
        if (retryable) {
          this.setTimer(() => {
            if (seq === this.seq && this.socket.connected) this.sendSubscribe();
          }, this.retryDelayMs);
        }
      }
    });
  }

  // -- older orders ---------------------------------------------------------------------------
  /** Loads the next page of orders older than those held ("Load older"), over REST, and merges it
   *  by version. The stream keeps them live: it covers every order the filter matches. */
  async loadOlder(): Promise<void> {
    const state = this.state;
    if (state.older.loading || !mayLoadOlder(state)) return;
    const epoch = state.epoch;
    const before = olderCursor(state);
    this.dispatch({ type: "older_started", epoch });
    const result = await this.api.list({ status: state.filter, limit: OLDER_PAGE, before });
    if (result.ok) this.dispatch({ type: "older_loaded", epoch, page: result.value, now: this.now() });
    else this.dispatch({ type: "older_failed", epoch, message: result.error.message });
  }

  // -- this tab's writes ----------------------------------------------------------------------
  private key(): string {
    this.keys += 1;
    return `w${this.keys}`;
  }

  async create(draft: OrderDraft): Promise<WriteOutcome> {
    const key = this.key();
    this.tempIds -= 1;
    const now = this.now();
    this.dispatch({
      type: "optimistic",
      write: {
        key,
        kind: "create",
        order: { id: this.tempIds, ...draft, updated_at: new Date(now).toISOString(), version: 0 },
      },
    });
    const result = await this.api.create(draft);
    return this.finish(key, result);
  }

  async update(id: number, changes: OrderEdit, ifMatch: number): Promise<WriteOutcome> {
    const key = this.key();
    this.dispatch({ type: "optimistic", write: { key, kind: "update", id, changes } });
    const result = await this.api.update(id, changes as OrderPatch, ifMatch);
    return this.finish(key, result, id);
  }

  async remove(id: number, ifMatch?: number): Promise<WriteOutcome> {
    const key = this.key();
    this.dispatch({ type: "optimistic", write: { key, kind: "delete", id } });
    const result = await this.api.remove(id, ifMatch);
    if (result.ok) {
      this.dispatch({ type: "settled", key, deletedId: id, now: this.now() });
      return { ok: true, order: null };
    }
    return this.finish(key, result, id);
  }

  private finish(key: string, result: ApiResult<Order | null>, id?: number): WriteOutcome {
    const now = this.now();
    if (result.ok) {
      this.dispatch({ type: "settled", key, order: result.value ?? undefined, now });
      return { ok: true, order: result.value };
    }
    const gone = result.status === 404 && id !== undefined ? id : undefined;
    this.dispatch({ type: "rolled_back", key, current: result.current, goneId: gone, now });
    return {
      ok: false,
      status: result.status,
      message: result.error.message,
      fields: result.error.fields,
      current: result.current,
    };
  }
}
