import { describe, expect, it } from "vitest";
import { type AgentEventSource, AgentFeed, agentRetryDelayMs, agentStreamUrl, explainClosed } from "./agentFeed";

type Listener = (event: Event) => void;

/** Just enough of an EventSource: the test fires its events. */
class FakeSource implements AgentEventSource {
  readyState = 0;
  closed = false;
  handlers = new Map<string, Listener[]>();
  constructor(readonly url: string) {}
  addEventListener(type: string, listener: Listener) {
    this.handlers.set(type, [...(this.handlers.get(type) ?? []), listener]);
  }
  close() {
    this.closed = true;
    this.readyState = 2;
  }
  fire(type: string, data?: unknown) {
    const event = data === undefined ? new Event(type) : new MessageEvent(type, { data: typeof data === "string" ? data : JSON.stringify(data) });
    for (const listener of this.handlers.get(type) ?? []) listener(event);
  }
  open() {
    this.readyState = 1;
    this.fire("open");
  }
  /** A lost connection the browser retries by itself. */
  drop() {
    this.readyState = 0;
    this.fire("error");
  }
  /** An error answer: the browser gives up. */
  refuse() {
    this.readyState = 2;
    this.fire("error");
  }
}

const rec = (seq: number) => ({
  seq,
  kind: "action",
  trigger: "shipped",
  order_id: seq,
  order_version: 1,
  tool: "notify_customer",
  arguments: {},
  message: `m${seq}`,
  reason: null,
  model: "offline-planner",
  recorded_at: "2026-12-01T12:00:00.000Z",
});

function setup(answer: Response | Error = new Response("{}", { status: 200 }), token?: string) {
  const sources: FakeSource[] = [];
  const timers: { fn: () => void; ms: number }[] = [];
  const fetched: { url: string; init?: RequestInit }[] = [];
  const feed = new AgentFeed({
    open: (url) => {
      const source = new FakeSource(url);
      sources.push(source);
      return source;
    },
    token,
    fetchImpl: async (input, init) => {
      fetched.push({ url: String(input), init });
      if (answer instanceof Error) throw answer;
      return answer.clone();
    },
    now: () => 1_000,
    setTimer: (fn, ms) => timers.push({ fn, ms }),
    clearTimer: () => undefined,
    random: () => 0.5,
  });
  return { feed, sources, timers, fetched };
}

const flush = () => new Promise((resolve) => setTimeout(resolve, 0));

describe("agentStreamUrl", () => {
  it("puts the token and after in the query", () => {
    expect(agentStreamUrl(undefined, null)).toBe("/api/agent/actions/stream");
    expect(agentStreamUrl("s3cret", null)).toBe("/api/agent/actions/stream?token=s3cret");
    expect(agentStreamUrl("a b", 17)).toBe("/api/agent/actions/stream?after=17&token=a+b");
  });

  it("retries after 1 s doubling up to 30 s, with jitter", () => {
    expect([1, 2, 3, 6, 7, 20].map((n) => agentRetryDelayMs(n, 0.5))).toEqual([1_000, 2_000, 4_000, 30_000, 30_000, 30_000]);
    expect(agentRetryDelayMs(1, 0)).toBe(800);
    expect(agentRetryDelayMs(1, 0.999)).toBe(1_200);
  });
});

describe("AgentFeed", () => {
  it("opens the stream once, with the token", () => {
    const { feed, sources } = setup(undefined, "tok");
    feed.start();
    feed.start();
    expect(sources.map((s) => s.url)).toEqual(["/api/agent/actions/stream?token=tok"]);
  });

  it("loads, is live at caught_up, and takes new records as they come", () => {
    const { feed, sources } = setup();
    let notified = 0;
    feed.listen(() => (notified += 1));
    feed.start();
    const es = sources[0];
    es.open();
    es.fire("action", rec(1));
    es.fire("action", rec(2));
    expect(feed.getState().phase).toBe("connecting");
    es.fire("caught_up", { seq: 2 });
    expect(feed.getState().phase).toBe("live");
    es.fire("action", rec(3));
    es.fire("action", "not json");
    expect(feed.getState().records.map((r) => r.seq)).toEqual([3, 2, 1]);
    expect(feed.getState().malformed).toBe(1);
    expect(feed.getState().announcement?.text).toContain("m3");
    expect(notified).toBeGreaterThan(0);
  });

  it("lets the browser reconnect a lost stream (Last-Event-ID) and keeps the order", () => {
    const { feed, sources, timers } = setup();
    feed.start();
    const es = sources[0];
    es.open();
    es.fire("action", rec(1));
    es.fire("caught_up", { seq: 1 });
    es.drop();
    expect(feed.getState().phase).toBe("reconnecting");
    expect(sources).toHaveLength(1); // no new EventSource: the browser retries this one
    expect(timers).toHaveLength(0);
    es.open();
    es.fire("action", rec(1)); // resent
    es.fire("action", rec(2));
    es.fire("caught_up", { seq: 2 });
    expect(feed.getState().phase).toBe("live");
    expect(feed.getState().records.map((r) => r.seq)).toEqual([2, 1]);
  });

  it("opens a new stream after an error answer, with after= the last seq, after a growing delay", async () => {
    const { feed, sources, timers, fetched } = setup(
      new Response(JSON.stringify({ error: { code: "forbidden", message: "no" } }), { status: 403 }),
      "wrong",
    );
    feed.start();
    sources[0].open();
    sources[0].fire("action", rec(4));
    sources[0].fire("caught_up", { seq: 4 });
    sources[0].refuse();
    expect(feed.getState().phase).toBe("reconnecting");
    expect(feed.getState().detail).toBe("next try in 1 s");
    await flush();
    expect(fetched[0].url).toBe("/api/agent/actions?limit=1");
    expect((fetched[0].init?.headers as Record<string, string>).Authorization).toBe("Bearer wrong");
    expect(feed.getState().phase).toBe("unavailable");
    expect(feed.getState().detail).toBe("the token was not accepted (forbidden); next try in 1 s");

    expect(timers.map((t) => t.ms)).toEqual([1_000]);
    timers[0].fn();
    expect(sources[1].url).toBe("/api/agent/actions/stream?after=4&token=wrong");
    sources[1].refuse();
    expect(timers.map((t) => t.ms)).toEqual([1_000, 2_000]);
    timers[1].fn();
    sources[2].open();
    expect(feed.getState().phase).toBe("reconnecting");
    sources[2].fire("action", rec(5));
    sources[2].fire("caught_up", { seq: 5 });
    expect(feed.getState().phase).toBe("live");
    expect(feed.getState().records.map((r) => r.seq)).toEqual([5, 4]);
    // After a success the delays start again from the first.
    sources[2].refuse();
    expect(timers.at(-1)?.ms).toBe(1_000);
  });

  it("ignores the events of a stream it gave up on", () => {
    const { feed, sources, timers } = setup();
    feed.start();
    sources[0].refuse();
    sources[0].fire("action", rec(9));
    timers[0].fn();
    expect(sources).toHaveLength(2);
    expect(feed.getState().records).toEqual([]);
  });

  it("stops: closes the stream, and a pending retry opens none", () => {
    const { feed, sources, timers } = setup();
    feed.start();
    sources[0].refuse();
    feed.stop();
    timers[0].fn();
    expect(sources).toHaveLength(1);
    const other = setup();
    other.feed.start();
    other.feed.stop();
    expect(other.sources[0].closed).toBe(true);
  });
});

describe("explainClosed", () => {
  const answer = (status: number, body?: unknown) => async () =>
    new Response(body === undefined ? "" : JSON.stringify(body), { status });

  it("tells a missing log, a missing or wrong token, and other answers apart", async () => {
    expect(await explainClosed(answer(404), undefined)).toEqual({ detail: "this service keeps no agent log (404)", refused: true });
    expect(await explainClosed(answer(401, { error: { code: "unauthorized" } }), undefined)).toEqual({
      detail: "a read token is required (unauthorized)",
      refused: true,
    });
    expect(await explainClosed(answer(403, { error: { code: "forbidden" } }), "t")).toEqual({
      detail: "the token was not accepted (forbidden)",
      refused: true,
    });
    expect(await explainClosed(answer(503, { error: { code: "too_many_connections" } }), "t")).toEqual({
      detail: "the server answered 503 too_many_connections",
      refused: false,
    });
    expect(await explainClosed(answer(200, { actions: [] }), undefined)).toBeNull();
    expect(
      await explainClosed(async () => {
        throw new TypeError("failed to fetch");
      }, undefined),
    ).toEqual({ detail: "the service is not reachable", refused: false });
  });
});
