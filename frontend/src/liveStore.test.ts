import { describe, expect, it } from "vitest";
import { OrdersApi } from "./api";
import { type LiveSocket, LiveStore, MAX_HELD_CHANGES, RENDER_EVERY_MS } from "./liveStore";
import type { Counts, Order, SubscribeAck } from "./protocol";
import { explainRefusal } from "./refusal";
import { flush, jwt, tokenUrlSource } from "./tokenFixtures";
import { jwtClaims } from "./tokenExpiry";
import { type Tokens, fixedTokens } from "./tokenSource";

type Listener = (...args: unknown[]) => void;

/** Just enough of a socket.io-client Socket: records emits, lets the test answer acks. */
class FakeSocket implements LiveSocket {
  connected = false;
  active = false;
  connects = 0;
  auth?: unknown;
  /** socket.auth at each connect. */
  authAtConnect: unknown[] = [];
  /** The server's answer to the next connects: accept, or a CONNECT_ERROR like python-socketio's. */
  refuseWith: { message: string; code: string } | null = null;
  handlers = new Map<string, Listener[]>();
  sent: { event: string; payload: unknown; ack?: (err: unknown, answer?: unknown) => void }[] = [];
  on(event: string, listener: (...args: never[]) => void) {
    this.handlers.set(event, [...(this.handlers.get(event) ?? []), listener as Listener]);
    return this;
  }
  emit(event: string, payload?: unknown, ack?: (err: unknown, answer?: unknown) => void) {
    this.sent.push({ event, payload, ack });
    return this;
  }
  timeout() {
    return this;
  }
  connect() {
    this.connects += 1;
    this.authAtConnect.push(this.auth);
    this.active = true;
    if (this.refuseWith !== null) {
      // socket.io-client destroys the socket (no more reconnection), then emits connect_error.
      this.active = false;
      const error = Object.assign(new Error(this.refuseWith.message), { data: { code: this.refuseWith.code } });
      this.fire("connect_error", error);
      return this;
    }
    this.connected = true;
    this.fire("connect");
    return this;
  }
  disconnect() {
    this.connected = false; // a lost transport: still active, the client reconnects by itself
    this.fire("disconnect", "transport close");
    return this;
  }
  /** The server ends the connection (socket.io-client then does not reconnect by itself). */
  serverDisconnect() {
    this.connected = false;
    this.active = false;
    this.fire("disconnect", "io server disconnect");
    return this;
  }
  /** A connection attempt that found no server: still active, retried by the client itself. */
  failTransport() {
    this.active = true;
    this.fire("connect_error", new Error("websocket error"));
  }
  fire(event: string, ...args: unknown[]) {
    for (const listener of this.handlers.get(event) ?? []) listener(...args);
  }
  lastSubscribe() {
    return [...this.sent].reverse().find((s) => s.event === "subscribe")!;
  }
  sentOf(event: string) {
    return this.sent.filter((s) => s.event === event);
  }
}

const order = (id: number, version = 1, status: Order["status"] = "pending"): Order => ({
  id,
  customer_name: "Ada",
  product_name: "Lamp",
  status,
  updated_at: "2026-11-24T00:00:00.000Z",
  version,
});

function fakeApi(answer: (method: string, path: string, init: RequestInit) => Response): OrdersApi {
  return new OrdersApi("", async (input, init) => answer(init?.method ?? "GET", String(input), init ?? {}));
}

function json(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json" } });
}

const ALL: Counts = { pending: 0, shipped: 0, delivered: 0 };

/** The server's answer to the last subscribe: its snapshot as one page, then the ack. */
function snapshot(socket: FakeSocket, orders: Order[], position: string, counts: Counts = ALL) {
  socket.fire("snapshot", { filter: {}, orders, reset: true });
  const ack: SubscribeAck = { ok: true, filter: {}, position, counts, snapshot: orders.length, limit: 500 };
  socket.lastSubscribe().ack!(null, ack);
}

function setup(api = fakeApi(() => json(500, {})), random = 0.5, tokens?: Tokens, now: () => number = () => 1000) {
  const socket = new FakeSocket();
  const timers: (() => void)[] = [];
  const delays: number[] = [];
  const store = new LiveStore(socket, api, {
    tokens,
    now,
    setTimer: (fn, ms) => {
      timers.push(fn);
      delays.push(ms);
    },
    random: () => random,
    frame: null,
  });
  return { socket, store, timers, delays };
}

/** A store whose frames run when the test says (`nextFrame`), on a clock the test moves (`advance`,
 *  which runs the timers due), counting what its listener is told. */
function framed() {
  const socket = new FakeSocket();
  const frames: (() => void)[] = [];
  let now = 1000;
  let timers: { at: number; fn: () => void }[] = [];
  const store = new LiveStore(socket, fakeApi(() => json(500, {})), {
    now: () => now,
    setTimer: (fn, ms) => timers.push({ at: now + ms, fn }),
    frame: (fn) => frames.push(fn),
  });
  let told = 0;
  store.listen(() => (told += 1));
  const nextFrame = () => {
    const due = frames.splice(0);
    for (const fn of due) fn();
  };
  const advance = (ms: number) => {
    now += ms;
    const due = timers.filter((timer) => timer.at <= now);
    timers = timers.filter((timer) => timer.at > now);
    for (const timer of due) timer.fn();
  };
  socket.connect();
  snapshot(socket, [order(1)], "nx:5");
  nextFrame();
  advance(RENDER_EVERY_MS); // the snapshot's render is long past
  told = 0;
  return { socket, store, frames, nextFrame, advance, told: () => told };
}

const insert = (id: number, position: string) => ({
  op: "insert",
  id,
  order: order(id),
  position,
  committed_at: "x",
  counts: { ...ALL, pending: id },
});

describe("LiveStore and the socket", () => {
  it("subscribes on connect, resubscribes with since after a reconnect", () => {
    const { socket, store } = setup();
    socket.connect();
    expect(socket.lastSubscribe().payload).toEqual({ limit: 500 });
    snapshot(socket, [order(1)], "nx:5");
    socket.fire("order_change", { op: "insert", id: 2, order: order(2), position: "nx:6", committed_at: "2026-11-24T00:00:00.000Z" });
    expect(store.getState().position).toBe("nx:6");

    socket.disconnect();
    expect(store.getState().phase).toBe("reconnecting");
    socket.connect();
    expect(socket.lastSubscribe().payload).toEqual({ limit: 500, since: "nx:6" });
    expect(store.getState().phase).toBe("catching_up");
    socket.fire("order_change", { op: "delete", id: 1, order: null, position: "nx:7", committed_at: "x" });
    socket.lastSubscribe().ack!(null, { ok: true, filter: {}, replayed: 1, position: "nx:7", counts: ALL });
    expect(store.getState().phase).toBe("live");
    expect([...store.getState().orders.keys()]).toEqual([2]);
  });

  it("a status filter unsubscribes the old filter and subscribes to that status's room", () => {
    const { socket, store } = setup();
    socket.connect();
    snapshot(socket, [], "nx:5");
    store.setFilter("pending");
    expect(socket.sent.slice(-2).map((s) => [s.event, s.payload])).toEqual([
      ["unsubscribe", {}],
      ["subscribe", { status: "pending", limit: 500 }],
    ]);
    store.setFilter("shipped");
    expect(socket.sent.slice(-2).map((s) => [s.event, s.payload])).toEqual([
      ["unsubscribe", { status: "pending" }],
      ["subscribe", { status: "shipped", limit: 500 }],
    ]);
  });

  it("applies the order_changes batch event", () => {
    const { socket, store } = setup();
    socket.connect();
    snapshot(socket, [], "nx:5");
    socket.fire("order_changes", {
      changes: [
        { op: "insert", id: 1, order: order(1), position: "nx:6", committed_at: "x", counts: { ...ALL, pending: 1 } },
        { op: "insert", id: 2, order: order(2), position: "nx:7", committed_at: "x", counts: { ...ALL, pending: 2 } },
      ],
    });
    expect(store.getState().orders.size).toBe(2);
    expect(store.getState().position).toBe("nx:7");
    expect(store.getState().counts).toEqual({ pending: 2, shipped: 0, delivered: 0 });
  });

  it("retries a subscribe that timed out or found the feed unavailable", () => {
    const { socket, store, timers } = setup();
    socket.connect();
    socket.lastSubscribe().ack!(new Error("operation has timed out"));
    expect(store.getState().error).toMatch(/did not answer/);
    expect(timers).toHaveLength(1);
    timers[0]();
    const retry = socket.lastSubscribe();
    retry.ack!(null, { ok: false, error: { code: "unavailable", message: "not live", fields: {} } });
    expect(timers).toHaveLength(2);
    timers[1]();
    snapshot(socket, [order(3)], "nx:9");
    expect(store.getState().phase).toBe("live");
    expect(store.getState().error).toBeNull();
  });
});

describe("LiveStore renders at most once per frame", () => {
  it("holds the changes between two frames and applies them together: one notification, one announcement", () => {
    const { socket, store, frames, nextFrame, told } = framed();
    const before = store.getState().announcement?.serial ?? 0;
    for (let id = 2; id <= 40; id += 1) socket.fire("order_change", insert(id, `nx:${id + 10}`));
    socket.fire("order_changes", { changes: [insert(41, "nx:51"), insert(42, "nx:52")] });
    expect(store.getState().orders.size).toBe(1); // nothing applied before the frame
    expect(told()).toBe(0);
    expect(frames).toHaveLength(1); // one frame asked for, not one per change

    nextFrame();
    expect(store.getState().orders.size).toBe(42);
    expect(store.getState().position).toBe("nx:52");
    expect(told()).toBe(1);
    expect(store.getState().announcement).toEqual({ text: "41 changes applied.", serial: before + 1 });
    nextFrame();
    expect(told()).toBe(1); // nothing new: no frame asked, nothing told
  });

  it("another event applies the held changes first, and is told with them at the same frame", () => {
    const { socket, store, nextFrame, told } = framed();
    socket.fire("order_change", insert(2, "nx:6"));
    socket.disconnect(); // the change came before the disconnect: it is in the view
    expect(store.getState().orders.size).toBe(2);
    expect(store.getState().phase).toBe("reconnecting");
    expect(told()).toBe(0);
    nextFrame();
    expect(told()).toBe(1);
    socket.connect();
    expect(socket.lastSubscribe().payload).toEqual({ limit: 500, since: "nx:6" });
  });

  it("this tab's own actions are told before the call returns, with the changes held before them", () => {
    const { socket, store, nextFrame, told } = framed();
    socket.fire("order_change", insert(2, "nx:6"));
    store.setFilter("pending"); // a radio React renders from the store: it must be checked now
    expect(store.getState().filter).toBe("pending");
    expect(told()).toBe(1);
    void store.update(1, { status: "shipped" }, 1);
    expect(told()).toBe(2);
    nextFrame();
    expect(told()).toBe(2); // nothing untold is left for the frame
  });

  it("renders live changes at most every RENDER_EVERY_MS: one that comes sooner waits, with those after it", () => {
    const { socket, store, frames, nextFrame, advance, told } = framed();
    socket.fire("order_change", insert(2, "nx:6"));
    nextFrame(); // long after the last render: at the next frame
    expect(told()).toBe(1);

    advance(30);
    socket.fire("order_change", insert(3, "nx:7")); // 30 ms after that render: it waits
    expect(frames).toHaveLength(0);
    advance(40);
    socket.fire("order_change", insert(4, "nx:8"));
    expect(frames).toHaveLength(0);
    advance(RENDER_EVERY_MS - 70); // the interval is over: a frame is asked for
    expect(frames).toHaveLength(1);
    nextFrame();
    expect(told()).toBe(2); // both changes, in one render
    expect(store.getState().orders.size).toBe(4);
    expect(store.getState().position).toBe("nx:8");
  });

  it("a hidden tab (no frames) holds at most MAX_HELD_CHANGES changes before applying them", () => {
    const { socket, store, told } = framed();
    const batch = Array.from({ length: MAX_HELD_CHANGES }, (_, i) => insert(i + 2, `nx:${i + 100}`));
    socket.fire("order_changes", { changes: batch });
    expect(store.getState().orders.size).toBe(MAX_HELD_CHANGES + 1);
    expect(told()).toBe(0); // applied, told at the next frame
  });
});

describe("LiveStore and a refused connection", () => {
  it("shows the refusal and tries again with growing delays, reset once connected", () => {
    const { socket, store, timers, delays } = setup();
    socket.refuseWith = { message: "the server is full", code: "too_many_connections" };
    socket.connect();
    expect(store.getState().phase).toBe("refused");
    expect(store.getState().refusal).toMatchObject({ code: "too_many_connections", message: "the server is full" });
    expect(store.getState().refusal?.retryAt).toBe(1000 + 500);
    expect(delays).toEqual([500]);

    timers[0]();
    expect(socket.connects).toBe(2);
    timers[1]();
    timers[2]();
    expect(delays).toEqual([500, 1000, 2000, 4000]);
    expect(store.getState().refusedInARow).toBe(4);

    socket.refuseWith = null;
    timers[3]();
    expect(socket.connected).toBe(true);
    expect(store.getState().refusal).toBeNull();
    expect(store.getState().refusedInARow).toBe(0);
    snapshot(socket, [order(1)], "nx:5");
    expect(store.getState().phase).toBe("live");

    // Refused again later (the server restarted, still full): the delays start over.
    socket.connected = false;
    socket.refuseWith = { message: "the server is full", code: "too_many_connections" };
    socket.connect();
    expect(delays.at(-1)).toBe(500);
  });

  it("the delays never pass the cap, and a stale timer does nothing after Retry now", () => {
    const { socket, store, timers, delays } = setup(undefined, 0.999);
    socket.refuseWith = { message: "this token does not allow reads", code: "forbidden" };
    socket.connect();
    for (let i = 0; i < 12; i++) timers[i]();
    expect(Math.max(...delays)).toBeLessThanOrEqual(20_000);
    expect(delays.at(-1)).toBe(20_000);

    const before = socket.connects;
    store.retryNow();
    expect(socket.connects).toBe(before + 1);
    timers[12](); // the timer of the refusal before Retry now
    expect(socket.connects).toBe(before + 1);
  });

  it("a transport failure is left to the client's own reconnection", () => {
    const { socket, store, timers } = setup();
    socket.connect();
    snapshot(socket, [], "nx:5");
    socket.disconnect();
    socket.failTransport();
    expect(store.getState().phase).toBe("reconnecting");
    expect(store.getState().refusal).toBeNull();
    expect(timers).toHaveLength(0);

    // After a refusal, a retry that finds no server goes back to "reconnecting".
    socket.refuseWith = { message: "the server is full", code: "too_many_connections" };
    socket.connect();
    expect(store.getState().phase).toBe("refused");
    socket.refuseWith = null;
    socket.connect = () => {
      socket.failTransport();
      return socket;
    };
    timers[0]();
    expect(store.getState().phase).toBe("reconnecting");
    expect(store.getState().refusal).toBeNull();
    expect(timers).toHaveLength(1);
  });
});

describe("LiveStore snapshot pages and resyncs", () => {
  it("applies the pages as they arrive and goes live on the ack", () => {
    const { socket, store } = setup();
    socket.connect();
    socket.fire("snapshot", { filter: {}, orders: [order(1), order(2)], reset: true });
    expect(store.getState().orders.size).toBe(2);
    expect(store.getState().loaded).toBe(false);
    socket.fire("snapshot", { filter: {}, orders: [order(3)], removed: [1] });
    expect([...store.getState().orders.keys()].sort()).toEqual([2, 3]);
    socket.lastSubscribe().ack!(null, { ok: true, filter: {}, position: "nx:5", counts: { pending: 900, shipped: 0, delivered: 0 }, snapshot: 3 });
    expect(store.getState()).toMatchObject({ phase: "live", loaded: true, position: "nx:5" });
    expect(store.getState().announcement?.text).toBe("Showing 2 of 900 orders.");
  });

  it("a resync event ends the pages before it; a disconnect during them drops since", () => {
    const { socket, store } = setup();
    socket.connect();
    snapshot(socket, [order(1)], "nx:5");
    socket.fire("snapshot", { filter: {}, orders: [order(4)], reset: true });
    socket.fire("resync", { reason: "slow_client", filter: {}, position: "nx:30", counts: ALL, snapshot: 1 });
    expect(store.getState()).toMatchObject({ phase: "resynced", position: "nx:30" });
    expect([...store.getState().orders.keys()]).toEqual([4]);

    socket.fire("snapshot", { filter: {}, orders: [], reset: true }); // another resync, cut off
    socket.disconnect();
    socket.connect();
    expect(socket.lastSubscribe().payload).toEqual({ limit: 500 });
  });
});

describe("LiveStore loading older orders", () => {
  const at = (id: number, updated_at: string): Order => ({ ...order(id), updated_at });

  it("asks the page before the oldest order held, then before next_before, with the token and the status", async () => {
    const asked: { path: string; auth?: string }[] = [];
    const pages = [
      { orders: [at(3, "2026-11-02T00:00:00.000Z"), at(2, "2026-11-01T00:00:00.000Z")], next_before: "2026-11-01T00:00:00.000Z_2" },
      { orders: [at(1, "2026-10-01T00:00:00.000Z")], next_before: null },
    ];
    const api = new OrdersApi(
      "",
      async (input, init) => {
        asked.push({ path: String(input), auth: (init?.headers as Record<string, string>).Authorization });
        return json(200, { ...pages[asked.length - 1], position: "pg:9", counts: {} });
      },
      "secret-token",
    );
    const { socket, store } = setup(api);
    socket.connect();
    store.setFilter("pending");
    socket.fire("snapshot", {
      filter: { status: "pending" },
      orders: [at(5, "2026-11-24T00:00:02.000Z"), at(4, "2026-11-24T00:00:01.000Z")],
      reset: true,
    });
    socket.lastSubscribe().ack!(null, { ok: true, filter: { status: "pending" }, position: "pg:8", counts: { pending: 5 }, snapshot: 2 });

    await store.loadOlder();
    expect(asked[0]).toEqual({
      path: "/api/orders?status=pending&limit=100&before=2026-11-24T00%3A00%3A01.000Z_4",
      auth: "Bearer secret-token",
    });
    expect([...store.getState().orders.keys()].sort()).toEqual([2, 3, 4, 5]);
    expect(store.getState().older.cursor).toBe("2026-11-01T00:00:00.000Z_2");

    await store.loadOlder();
    expect(asked[1].path).toBe("/api/orders?status=pending&limit=100&before=2026-11-01T00%3A00%3A00.000Z_2");
    expect(store.getState().orders.size).toBe(5);
    expect(store.getState().older.exhausted).toBe(true);
    await store.loadOlder(); // nothing older: not asked
    expect(asked).toHaveLength(2);
  });

  it("asks one page at a time, and says when it failed", async () => {
    let answer: (r: Response) => void = () => {};
    let calls = 0;
    const api = new OrdersApi("", () => {
      calls += 1;
      return new Promise<Response>((resolve) => (answer = resolve));
    });
    const { socket, store } = setup(api);
    socket.connect();
    snapshot(socket, [order(1)], "nx:5", { pending: 10, shipped: 0, delivered: 0 });
    const first = store.loadOlder();
    void store.loadOlder();
    expect(calls).toBe(1);
    expect(store.getState().older.loading).toBe(true);
    answer(json(503, { error: { code: "unavailable", message: "not live", fields: {} } }));
    await first;
    expect(store.getState().older).toMatchObject({ loading: false, error: "not live" });
  });
});

describe("LiveStore writes", () => {
  it("sends If-Match with an update and rolls back on 409 with the current order", async () => {
    const seen: { method: string; path: string; headers: Record<string, string>; body: unknown }[] = [];
    const api = fakeApi((method, path, init) => {
      seen.push({ method, path, headers: init.headers as Record<string, string>, body: JSON.parse(String(init.body)) });
      return json(409, {
        error: { code: "version_conflict", message: "order 1 is at version 2", fields: {} },
        order: order(1, 2, "shipped"),
      });
    });
    const { socket, store } = setup(api);
    socket.connect();
    snapshot(socket, [order(1)], "nx:5");
    const outcome = await store.update(1, { status: "delivered" }, 1);
    expect(seen[0]).toMatchObject({ method: "PATCH", path: "/api/orders/1", body: { status: "delivered" } });
    expect(seen[0].headers["If-Match"]).toBe('"1"');
    expect(outcome).toMatchObject({ ok: false, status: 409, current: { version: 2 } });
    expect(store.getState().optimistic).toHaveLength(0);
    expect(store.getState().orders.get(1)).toMatchObject({ status: "shipped", version: 2 });
  });

  it("returns the server's field errors of a 422 and leaves nothing behind", async () => {
    const api = fakeApi(() =>
      json(422, {
        error: {
          code: "validation_failed",
          message: "the request has invalid fields",
          fields: { customer_name: "String should have at least 1 character" },
        },
      }),
    );
    const { store } = setup(api);
    const outcome = await store.create({ customer_name: " ", product_name: "Lamp", status: "pending" });
    expect(outcome).toMatchObject({ ok: false, status: 422, fields: { customer_name: expect.any(String) } });
    expect(store.getState().optimistic).toHaveLength(0);
    expect(store.getState().orders.size).toBe(0);
  });

  it("a network failure is a refusal, not an exception", async () => {
    const api = new OrdersApi("", async () => {
      throw new TypeError("Failed to fetch");
    });
    const { store } = setup(api);
    const result = await store.remove(3, 1);
    expect(result).toMatchObject({ ok: false, status: 0 });
  });

  it("a create answered 201 lands in the view", async () => {
    const api = fakeApi(() => json(201, order(5)));
    const { socket, store } = setup(api);
    socket.connect();
    snapshot(socket, [], "nx:5");
    const outcome: { ok: boolean } = await store.create({ customer_name: "Ada", product_name: "Lamp", status: "pending" });
    expect(outcome.ok).toBe(true);
    expect(store.getState().orders.get(5)).toEqual(order(5));
  });
});


describe("OrdersApi with a token", () => {
  it("sends it as a bearer token", async () => {
    let seen: Record<string, string> = {};
    const api = new OrdersApi(
      "",
      async (_input, init) => {
        seen = init?.headers as Record<string, string>;
        return new Response(JSON.stringify({ id: 1 }), { status: 201, headers: { "Content-Type": "application/json" } });
      },
      "secret-token",
    );
    await api.create({ customer_name: "Ada", product_name: "Lamp", status: "pending" });
    expect(seen.Authorization).toBe("Bearer secret-token");
  });
});

describe("LiveStore and a token URL", () => {
  /** A store on a token URL, started: the first token fetched, connected, the snapshot in. */
  async function live() {
    const source = tokenUrlSource();
    const { socket, store, timers } = setup(undefined, 0.5, source.tokens, () => source.clock.now);
    store.start();
    expect(socket.connects).toBe(0); // not before the first token
    await flush();
    expect(socket.connects).toBe(1);
    const first = source.tokens.current()!;
    expect(socket.authAtConnect[0]).toEqual({ token: first });
    snapshot(socket, [order(1)], "nx:5");
    socket.fire("order_change", { op: "insert", id: 2, order: order(2), position: "nx:6", committed_at: "x" });
    return { source, socket, store, timers, first };
  }

  it("sends refresh_token with the new token before exp, and keeps socket.auth current", async () => {
    const { source, socket, store, first } = await live();
    source.advance(239_000);
    await flush();
    expect(socket.sentOf("refresh_token")).toHaveLength(0);
    source.advance(1_000); // 80 % of 300 s
    await flush();
    const second = source.tokens.current()!;
    expect(second).not.toBe(first);
    expect(socket.sentOf("refresh_token").map((s) => s.payload)).toEqual([{ token: second }]);
    expect(socket.auth).toEqual({ token: second });
    socket.sentOf("refresh_token")[0].ack!(null, { ok: true, exp: jwtClaims(second)!.exp });
    // Nothing else happens: same connection, same subscription.
    expect(socket.connects).toBe(1);
    expect(socket.sentOf("subscribe")).toHaveLength(1);
    expect(store.getState().phase).toBe("live");
  });

  it("a refused refresh_token leaves the connection as it is (the new token waits in socket.auth)", async () => {
    const { source, socket, store } = await live();
    source.advance(240_000);
    await flush();
    socket.sentOf("refresh_token")[0].ack!(null, { ok: false, error: { code: "forbidden", message: "another sub", fields: {} } });
    expect(store.getState().phase).toBe("live");
    expect(socket.auth).toEqual({ token: source.tokens.current() });
  });

  it("after token_expired: a new token, socket.auth, connect() again, resubscribed with since, no gap", async () => {
    const { source, socket, store, timers, first } = await live();
    source.tokens.stop(); // say the scheduled refresh did not happen (a sleeping computer)
    source.clock.now += 300_000;
    socket.fire("token_expired", { exp: jwtClaims(first)!.exp, message: "the token expired" });
    await flush();
    expect(source.requests).toHaveLength(2); // fetched at once, while the server's grace runs
    const second = source.tokens.current()!;
    socket.serverDisconnect();
    await flush();
    expect(socket.connects).toBe(2);
    expect(socket.authAtConnect[1]).toEqual({ token: second });
    expect(socket.lastSubscribe().payload).toEqual({ limit: 500, since: "nx:6" });
    expect(timers).toHaveLength(0); // no refusal, no generic reconnect timer
    // What the server replays, then its ack: live again with the same view.
    socket.fire("order_change", { op: "insert", id: 3, order: order(3), position: "nx:7", committed_at: "x" });
    socket.lastSubscribe().ack!(null, { ok: true, filter: {}, replayed: 1, position: "nx:7", counts: ALL });
    expect(store.getState().phase).toBe("live");
    expect([...store.getState().orders.keys()].sort()).toEqual([1, 2, 3]);
    expect(store.getState().refusal).toBeNull();
  });

  it("after token_expired, a token renewed already (its refresh_token was refused) is used as it is", async () => {
    const { source, socket, first } = await live();
    source.advance(240_000); // the scheduled refresh
    await flush();
    const second = source.tokens.current()!;
    socket.sentOf("refresh_token")[0].ack!(null, { ok: false, error: { code: "unauthorized", message: "no", fields: {} } });
    source.clock.now += 60_000; // the first token's exp
    socket.fire("token_expired", { exp: jwtClaims(first)!.exp });
    socket.serverDisconnect();
    await flush();
    expect(source.requests).toHaveLength(2); // no third token
    expect(socket.connects).toBe(2);
    expect(socket.authAtConnect[1]).toEqual({ token: second });
    expect(socket.lastSubscribe().payload).toEqual({ limit: 500, since: "nx:6" });
  });

  it("the disconnect may come before the new token: connect() waits for it", async () => {
    let release: (r: Response) => void = () => {};
    // The second token comes only when the test says.
    const slow = new Promise<Response>((resolve) => (release = resolve));
    const source = tokenUrlSource([null, slow]);
    const { socket, store } = setup(undefined, 0.5, source.tokens, () => source.clock.now);
    store.start();
    await flush();
    snapshot(socket, [order(1)], "nx:5");
    source.clock.now += 300_000;
    socket.fire("token_expired", {});
    socket.serverDisconnect();
    await flush();
    expect(socket.connects).toBe(1);
    expect(store.getState().phase).toBe("reconnecting");
    release(new Response(JSON.stringify({ token: jwt({ sub: "u", exp: 2_000_000_000 }) }), { status: 200 }));
    await flush();
    await flush();
    expect(socket.connects).toBe(2);
    expect(socket.lastSubscribe().payload).toEqual({ limit: 500, since: "nx:5" });
  });

  it("a connection refused because the token expired takes a new token and tries again", async () => {
    const source = tokenUrlSource();
    const { socket, store, timers } = setup(undefined, 0.5, source.tokens, () => source.clock.now);
    socket.refuseWith = { message: "the token has expired", code: "unauthorized" };
    const connect = socket.connect.bind(socket);
    socket.connect = () => {
      connect();
      socket.refuseWith = null; // refused once only
      return socket;
    };
    store.start();
    await flush();
    await flush();
    expect(source.requests).toHaveLength(2);
    expect(socket.connects).toBe(2);
    expect(socket.authAtConnect[1]).toEqual({ token: source.tokens.current() });
    expect(store.getState().refusal).toBeNull();
    expect(timers).toHaveLength(0);
  });

  it("refused as expired again with the new token: shown, and retried with a new token each time", async () => {
    const source = tokenUrlSource();
    const { socket, store, timers } = setup(undefined, 0.5, source.tokens, () => source.clock.now);
    socket.refuseWith = { message: "the token has expired", code: "unauthorized" };
    store.start();
    await flush();
    await flush();
    await flush();
    expect(socket.connects).toBe(2);
    expect(store.getState().phase).toBe("refused");
    expect(store.getState().refusal).toMatchObject({ final: false, renewable: true });
    expect(explainRefusal(store.getState().refusal!).detail).toBe("the token expired, getting a new one");
    timers[0]();
    await flush();
    await flush();
    expect(source.requests).toHaveLength(3);
    expect(socket.connects).toBe(3);
  });

  it("revoked: one new token; revoked again, the banner says so and nothing loops", async () => {
    const { source, socket, store, timers } = await live();
    socket.fire("token_revoked", { message: "the token was revoked" });
    await flush();
    socket.refuseWith = { message: "the token was revoked", code: "unauthorized" };
    socket.serverDisconnect();
    await flush();
    expect(source.requests).toHaveLength(2);
    expect(socket.connects).toBe(2);
    expect(store.getState().phase).toBe("refused");
    expect(store.getState().refusal).toMatchObject({ final: true, retryAt: null });
    expect(explainRefusal(store.getState().refusal!).title).toBe("Your token was revoked");
    expect(timers).toHaveLength(0);
    await flush();
    expect(socket.connects).toBe(2);
  });

  it("a token URL that fails is shown as a refusal until it gives a token, then it connects", async () => {
    const source = tokenUrlSource([json(401, { error: { code: "unauthorized", message: "unknown grant" } })]);
    const { socket, store } = setup(undefined, 0.5, source.tokens, () => source.clock.now);
    store.start();
    await flush();
    expect(store.getState().phase).toBe("refused");
    expect(store.getState().refusal).toMatchObject({
      code: "token_unavailable",
      message: "the token URL answered 401 unauthorized: unknown grant",
      retryAt: 1_000_000 + 1_000,
    });
    expect(explainRefusal(store.getState().refusal!).label).toBe("No token");
    store.retryNow(); // the "Retry now" button: asks the token URL at once
    await flush();
    await flush();
    expect(socket.connects).toBe(1);
    expect(socket.auth).toEqual({ token: source.tokens.current() });
    expect(store.getState().refusal).toBeNull();
  });
});

describe("LiveStore and a fixed token", () => {
  const token = jwt({ sub: "u", exp: 2_000_000_000 });

  it("puts the token in socket.auth", () => {
    const { socket, store } = setup(undefined, 0.5, fixedTokens(token));
    store.start();
    expect(socket.authAtConnect).toEqual([{ token }]);
  });

  it("after token_expired, shows 'Your token expired' and does not reconnect", () => {
    const { socket, store, timers } = setup(undefined, 0.5, fixedTokens(token));
    store.start();
    snapshot(socket, [order(1)], "nx:5");
    socket.fire("token_expired", { exp: 2_000_000_000, message: "the token expired" });
    expect(store.getState().phase).toBe("live"); // until the server disconnects
    socket.serverDisconnect();
    expect(socket.connects).toBe(1);
    expect(timers).toHaveLength(0);
    const state = store.getState();
    expect(state.phase).toBe("refused");
    expect(state.refusal).toMatchObject({ code: "token_expired", message: "the token expired", final: true, retryAt: null });
    expect(explainRefusal(state.refusal!).title).toBe("Your token expired: open the dashboard at /#token=<a new token>");
    expect(state.announcement?.text).toBe("Your token expired: open the dashboard at /#token=<a new token>.");
    expect([...state.orders.keys()]).toEqual([1]); // the last known view stays
    // "Retry now" still tries, by hand.
    store.retryNow();
    expect(socket.connects).toBe(2);
  });

  it("after token_revoked, shows 'Your token was revoked'", () => {
    const { socket, store, timers } = setup(undefined, 0.5, fixedTokens(token));
    store.start();
    socket.fire("token_revoked", { message: "the token was revoked" });
    socket.serverDisconnect();
    expect(timers).toHaveLength(0);
    expect(explainRefusal(store.getState().refusal!).title).toBe("Your token was revoked");
  });

  it("a connection refused as expired is final: no retry loop", () => {
    const { socket, store, timers } = setup(undefined, 0.5, fixedTokens(token));
    socket.refuseWith = { message: "the token has expired", code: "unauthorized" };
    store.start();
    expect(store.getState().refusal).toMatchObject({ code: "unauthorized", final: true });
    expect(explainRefusal(store.getState().refusal!).title).toBe("Your token expired: open the dashboard at /#token=<a new token>");
    expect(timers).toHaveLength(0);
    expect(socket.connects).toBe(1);
  });

  it("a server disconnect for another reason still reconnects after the delay", () => {
    const { socket, store, timers } = setup(undefined, 0.5, fixedTokens(token));
    store.start();
    socket.serverDisconnect();
    expect(timers).toHaveLength(1);
    timers[0]();
    expect(socket.connects).toBe(2);
  });
});

describe("OrdersApi and a token source", () => {
  it("reads the token at each call", async () => {
    const source = tokenUrlSource();
    const seen: string[] = [];
    const api = new OrdersApi(
      "",
      async (_input, init) => {
        seen.push((init?.headers as Record<string, string>).Authorization);
        return json(200, { orders: [], next_before: null, position: "p", counts: {} });
      },
      source.tokens,
    );
    await source.tokens.fresh();
    await api.list();
    await source.tokens.fresh();
    await api.list();
    expect(seen).toHaveLength(2);
    expect(seen[0]).not.toBe(seen[1]);
    expect(seen[1]).toBe(`Bearer ${source.tokens.current()}`);
  });

  it("a 401 with a token URL is sent once more with a new token", async () => {
    const source = tokenUrlSource();
    await source.tokens.fresh();
    const seen: string[] = [];
    const api = new OrdersApi(
      "",
      async (_input, init) => {
        seen.push((init?.headers as Record<string, string>).Authorization);
        return seen.length === 1
          ? json(401, { error: { code: "unauthorized", message: "the token has expired", fields: {} } })
          : json(201, order(9));
      },
      source.tokens,
    );
    const result = await api.create({ customer_name: "Ada", product_name: "Lamp", status: "pending" });
    expect(result.ok).toBe(true);
    expect(seen).toHaveLength(2);
    expect(seen[1]).toBe(`Bearer ${source.tokens.current()}`);
    expect(seen[0]).not.toBe(seen[1]);
  });

  it("a 401 with a fixed token is the answer", async () => {
    let calls = 0;
    const api = new OrdersApi(
      "",
      async () => {
        calls += 1;
        return json(401, { error: { code: "unauthorized", message: "the token has expired", fields: {} } });
      },
      fixedTokens("t"),
    );
    const result = await api.remove(1, 1);
    expect(result).toMatchObject({ ok: false, status: 401 });
    expect(calls).toBe(1);
  });
});
