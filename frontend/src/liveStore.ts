// Wires a Socket.IO connection to the pure reducer of liveState.ts, and this tab's writes to the
// REST API with optimistic overlays. Framework-free: React reads it through useSyncExternalStore.
//
// With a token source (tokenSource.ts), the token goes in `socket.auth` (every new token, so that
// the next connection uses it). A refreshable source's new token is also sent in-band on the open
// connection (`refresh_token`, acked). When the server ends the connection because the token ended
// (`token_expired`, `token_revoked`, then a server-side disconnect, which socket.io-client does not
// undo by itself), the store gets a new token and connects again: it subscribes with `since`, so
// the view stays and nothing is missed. A fixed token that ended (or a token URL whose new token is
// revoked too) is a final refusal: the banner says so, and nothing is tried again by itself.
//
// Rendering: with a frame scheduler (requestAnimationFrame in the browser, a fake in tests), the
// changes that arrive between two frames (order_change events and every change of an order_changes
// batch) are held and applied together as one `changes` action at the next frame, and listeners are
// told at most once per frame, whatever was dispatched meanwhile; live changes render at most every
// RENDER_EVERY_MS (100 ms), the rest of the interval waited out. Any other action applies the held
// changes first, so that the order of events is kept. This tab's own actions (the filter, "Load
// older", the optimistic overlay of a write) are told before the call returns: a controlled input
// that React renders from the store must show the choice within the event that made it, or React
// puts the old value back until the next frame. Without a frame scheduler (unit tests of the
// protocol), every action is applied and told at once.

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
import { type Refusal, type TokenEnd, refusalOf, retryDelayMs, tokenEndOf } from "./refusal";
import { lastsBeyond } from "./tokenExpiry";
import type { Tokens } from "./tokenSource";

/** What the store needs of a socket.io-client Socket (a fake one in tests). */
export interface LiveSocket {
  readonly connected: boolean;
  /** False once the server refused the connection: socket.io-client then stops trying by itself. */
  readonly active: boolean;
  /** What the next connection sends as its `auth` (`{token}`). */
  auth?: unknown;
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
  /** Where the token comes from (none: the socket's auth is left as it is). */
  tokens?: Tokens;
  /** Calls back before the next frame (requestAnimationFrame); null: apply and tell at once.
   *  Defaults to requestAnimationFrame where there is one. */
  frame?: RequestFrame | null;
}

/** Schedules a callback before the next repaint, like requestAnimationFrame. */
export type RequestFrame = (callback: () => void) => unknown;

/** Live changes render at most this often: a change that arrives sooner after the last render
 *  waits for the rest of the interval, then for the next frame, and renders with every change that
 *  came meanwhile. `orders-live bench --dashboard`, 500 rows at 50 changes/s: the main thread
 *  36 % busy rendering at every frame with a change, 17 % at most every 100 ms. At 5
 *  changes/s (200 ms apart) no change waits. This tab's own actions are never paced. */
export const RENDER_EVERY_MS = 100;

/** Changes held for the next frame beyond which they are applied at once (a hidden tab gets no
 *  frames): the store never holds an unbounded backlog. */
export const MAX_HELD_CHANGES = 1_000;

function browserFrames(): RequestFrame | null {
  return typeof requestAnimationFrame === "function" ? (callback) => requestAnimationFrame(() => callback()) : null;
}

/** The answer to `refresh_token`. */
export type RefreshAck = { ok: true; exp?: number } | { ok: false; error: { code: string; message: string } };

/** The server said the token of the open connection ended; it disconnects it within its grace. */
interface Ended {
  end: TokenEnd;
  message: string;
  /** The new token being fetched for the next connection; null: none will come (a final refusal). */
  renewal: Promise<unknown> | null;
}

function messageOf(data: unknown, otherwise: string): string {
  const message = typeof data === "object" && data !== null ? (data as { message?: unknown }).message : undefined;
  return typeof message === "string" && message !== "" ? message : otherwise;
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
  private readonly tokens: Tokens | null;
  /** The token of the open connection ended (token_expired, token_revoked). */
  private ended: Ended | null = null;
  /** A new token was taken since the last connection that succeeded: a refusal saying the token
   *  ended is then not answered with yet another one at once (no loop). */
  private renewed = false;
  private readonly frame: RequestFrame | null;
  /** Changes received since the last frame, not applied yet. */
  private held: OrderChange[] = [];
  /** The state changed since listeners were last told. */
  private untold = false;
  private frameRequested = false;
  /** When listeners were last told (the store's clock). */
  private toldAt = -Infinity;

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
    this.tokens = options.tokens ?? null;
    this.frame = options.frame === undefined ? browserFrames() : options.frame;

    if (this.tokens !== null) {
      const token = this.tokens.current();
      if (token !== undefined) socket.auth = { token };
      this.tokens.onToken((token) => this.tokenArrived(token));
      this.tokens.onError((error) => this.tokenFailed(error.message, error.retryAt));
    }
    socket.on("connect", () => {
      this.ended = null;
      this.renewed = false;
      this.sendSubscribe();
    });
    socket.on("connect_error", (error: Error) => {
      // Still active: a transport failure (server down), which the client retries by itself.
      if (this.socket.active) this.dispatch({ type: "connect_failed" });
      else this.refused(error);
    });
    socket.on("disconnect", (reason: string) => {
      this.dispatch({ type: "disconnected" });
      // socket.io-client does not reconnect after a server-initiated disconnect by itself.
      if (reason !== "io server disconnect") return;
      if (this.ended !== null) this.afterTokenEnd(this.ended);
      else this.setTimer(() => this.socket.connect(), this.retryDelayMs);
    });
    socket.on("token_expired", (data: unknown) => this.tokenEnded("expired", messageOf(data, "the token expired")));
    socket.on("token_revoked", (data: unknown) => this.tokenEnded("revoked", messageOf(data, "the token was revoked")));
    socket.on("order_change", (change: OrderChange) => this.receive([change]));
    socket.on("order_changes", (batch: OrderChangeBatch) => this.receive(batch?.changes ?? []));
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
    this.applyHeld();
    this.apply(action);
  }

  private apply(action: LiveAction): void {
    const next = reduce(this.state, action);
    if (next === this.state) return;
    this.state = next;
    if (this.frame === null) {
      this.tell();
    } else {
      this.untold = true;
      this.requestFrame();
    }
  }

  private tell(): void {
    this.toldAt = this.now();
    for (const listener of this.listeners) listener();
  }

  /** Tells the listeners now of what is applied and untold (this tab's own actions). */
  private tellNow(): void {
    if (!this.untold) return;
    this.untold = false;
    this.tell();
  }

  // -- one render per frame -----------------------------------------------------------------
  /** Live changes: held until the next frame (applied at once without a frame scheduler). */
  private receive(changes: readonly OrderChange[]): void {
    if (changes.length === 0) return;
    if (this.frame === null) {
      this.apply({ type: "changes", changes, now: this.now() });
      return;
    }
    this.held.push(...changes);
    if (this.held.length >= MAX_HELD_CHANGES) this.applyHeld();
    this.requestFrame(this.toldAt + RENDER_EVERY_MS - this.now());
  }

  /** The changes held, applied together: one action, one announcement. */
  private applyHeld(): void {
    if (this.held.length === 0) return;
    const changes = this.held;
    this.held = [];
    this.apply({ type: "changes", changes, now: this.now() });
  }

  /** Asks for a frame (after `waitMs`, if positive) at which the held changes are applied and
   *  the listeners told; one at a time. */
  private requestFrame(waitMs = 0): void {
    const frame = this.frame;
    if (this.frameRequested || frame === null) return;
    this.frameRequested = true;
    const ask = () =>
      frame(() => {
        this.applyHeld(); // before the flag is down: applying them asks for no other frame
        this.frameRequested = false;
        if (!this.untold) return;
        this.untold = false;
        this.tell();
      });
    if (waitMs > 0) this.setTimer(ask, waitMs);
    else ask();
  }

  // -- the connection and its token --------------------------------------------------------
  /** Opens the connection: at once with a fixed token (or none); with a token URL, once it gave the
   *  first token. */
  start(): void {
    if (this.tokens !== null && this.tokens.refreshable && this.tokens.current() === undefined) {
      void this.tokens.fresh().then(() => this.reconnect());
    } else {
      this.socket.connect();
    }
  }

  /** Connects, unless connected or connecting already. */
  private reconnect(): void {
    if (!this.socket.connected && !this.socket.active) this.socket.connect();
  }

  /** A new token from the token URL (the one under way, if any); applied by tokenArrived. */
  private renew(): Promise<unknown> {
    this.renewed = true;
    return this.tokens === null ? Promise.resolve(undefined) : this.tokens.fresh();
  }

  /** Every new token: for the next connection, and in-band for the open one. */
  private tokenArrived(token: string): void {
    this.socket.auth = { token };
    if (!this.socket.connected) {
      // Waiting for this token (the token URL had failed): connect with it.
      if (this.state.phase === "refused" && this.state.refusal?.code === "token_unavailable") {
        this.dispatch({ type: "retrying" });
        this.reconnect();
      }
      return;
    }
    this.socket.timeout(this.ackTimeoutMs).emit("refresh_token", { token }, (_err: unknown, _ack?: RefreshAck) => {
      // {ok: true}: the connection goes on with the new token. Refused or unanswered: the old token
      // stays in force until its exp; then token_expired, and the next connection sends this one.
    });
  }

  /** The token URL failed: shown while there is no connection (an open one goes on meanwhile). */
  private tokenFailed(message: string, retryAt: number | null): void {
    if (this.socket.connected || this.socket.active) return;
    this.attempt += 1; // a pending retry of an earlier refusal is void: the token comes first
    const refusal: Refusal = { code: "token_unavailable", message, renewable: true };
    this.dispatch({ type: "refused", refusal, now: this.now(), retryAt, final: retryAt === null });
  }

  /** token_expired / token_revoked on the open connection: a new token is fetched at once (a token
   *  URL), unless the one held was renewed already (its refresh_token was refused); the server
   *  disconnects within its grace, and afterTokenEnd connects again. */
  private tokenEnded(end: TokenEnd, message: string): void {
    const tokens = this.tokens;
    let renewal: Promise<unknown> | null = null;
    if (tokens !== null && tokens.refreshable) {
      if (end === "expired" && lastsBeyond(tokens.current(), this.now())) renewal = Promise.resolve();
      else if (end === "expired" || !this.renewed) renewal = this.renew();
    }
    this.ended = { end, message, renewal };
  }

  private afterTokenEnd(ended: Ended): void {
    if (ended.renewal !== null) {
      void ended.renewal.then(() => this.reconnect());
      return;
    }
    const renewable = this.tokens?.refreshable ?? false;
    const refusal: Refusal = { code: `token_${ended.end}`, message: ended.message, renewable };
    this.attempt += 1;
    this.dispatch({ type: "refused", refusal, now: this.now(), retryAt: null, final: true });
  }

  // -- refused connections ------------------------------------------------------------------
  /** The server refused the connection: shown, and tried again after a growing, jittered delay.
   *  A refusal saying the token ended takes a new token at once from a token URL (once: then it is
   *  shown and retried like the others, with a new token each time), and is final for a fixed token. */
  private refused(error: Error): void {
    const renewable = this.tokens?.refreshable ?? false;
    const refusal: Refusal = { ...refusalOf(error), renewable };
    const end = tokenEndOf(refusal);
    const now = this.now();
    if (end !== null && renewable && !this.renewed) {
      void this.renew().then(() => this.reconnect());
      return;
    }
    if (end === "revoked" || (end === "expired" && !renewable)) {
      this.attempt += 1;
      this.dispatch({ type: "refused", refusal, now, retryAt: null, final: true });
      return;
    }
    const delay = retryDelayMs(this.state.refusedInARow + 1, this.random());
    this.dispatch({ type: "refused", refusal, now, retryAt: now + delay });
    const attempt = ++this.attempt;
    this.setTimer(() => {
      if (attempt === this.attempt) this.retryNow();
    }, delay);
  }

  /** Tries a refused connection again at once (the "Retry now" button, or the timer). With a token
   *  URL, a refusal of the token is tried with a new one. */
  retryNow(): void {
    if (this.state.phase !== "refused" || this.socket.connected || this.socket.active) return;
    const refusal = this.state.refusal;
    this.attempt += 1; // the pending timer, if any, is void
    this.dispatch({ type: "retrying" });
    if (refusal?.code === "token_unavailable") {
      this.tokens?.retryNow();
    } else if (
      this.tokens?.refreshable &&
      refusal !== null &&
      (refusal.code === "unauthorized" || tokenEndOf(refusal) !== null)
    ) {
      void this.renew().then(() => this.reconnect());
    } else {
      this.socket.connect();
    }
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
    this.tellNow();
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
    this.tellNow();
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
    this.tellNow();
    const result = await this.api.create(draft);
    return this.finish(key, result);
  }

  async update(id: number, changes: OrderEdit, ifMatch: number): Promise<WriteOutcome> {
    const key = this.key();
    this.dispatch({ type: "optimistic", write: { key, kind: "update", id, changes } });
    this.tellNow();
    const result = await this.api.update(id, changes as OrderPatch, ifMatch);
    return this.finish(key, result, id);
  }

  async remove(id: number, ifMatch?: number): Promise<WriteOutcome> {
    const key = this.key();
    this.dispatch({ type: "optimistic", write: { key, kind: "delete", id } });
    this.tellNow();
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
