import { describe, expect, it } from "vitest";
import {
  type AgentEventSource,
  AgentFeed,
  agentRetryDelayMs,
  agentStreamUrl,
  explainClosed,
  tokenEndedText,
} from "./agentFeed";
import { describeTicketFailure, requestTicket } from "./streamTickets";
import { tokenUrlSource } from "./tokenFixtures";
import { type Tokens, fixedTokens } from "./tokenSource";

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

const json = (status: number, body: unknown) =>
  new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json" } });

interface SetupOptions {
  /** The answer to every request but a ticket's (the explanation of a closed stream). */
  answer?: Response | Error;
  /** A fixed token (shortcut for `tokens`). */
  token?: string;
  tokens?: Tokens;
  /** The answers to ticket requests, in turn; when they run out, tickets t1, t2, … */
  tickets?: (Response | Error)[];
  now?: () => number;
}

function setup(options: SetupOptions = {}) {
  const sources: FakeSource[] = [];
  const timers: { fn: () => void; ms: number }[] = [];
  const fetched: { url: string; init?: RequestInit }[] = [];
  const ticketAnswers = [...(options.tickets ?? [])];
  let issued = 0;
  const answer = options.answer ?? new Response("{}", { status: 200 });
  const feed = new AgentFeed({
    open: (url) => {
      const source = new FakeSource(url);
      sources.push(source);
      return source;
    },
    tokens: options.tokens ?? (options.token === undefined ? undefined : fixedTokens(options.token)),
    fetchImpl: async (input, init) => {
      fetched.push({ url: String(input), init });
      if (String(input) === "/api/stream-tickets") {
        const next = ticketAnswers.shift();
        if (next instanceof Error) throw next;
        if (next !== undefined) return next.clone();
        issued += 1;
        return json(201, { ticket: `t${issued}`, expires_in: 30 });
      }
      if (answer instanceof Error) throw answer;
      return answer.clone();
    },
    now: options.now ?? (() => 1_000),
    setTimer: (fn, ms) => timers.push({ fn, ms }),
    clearTimer: () => undefined,
    random: () => 0.5,
  });
  const tickets = () => fetched.filter((f) => f.url === "/api/stream-tickets");
  return { feed, sources, timers, fetched, tickets };
}

const flush = () => new Promise((resolve) => setTimeout(resolve, 0));

describe("agentStreamUrl", () => {
  it("puts after, and the ticket or the token, in the query", () => {
    expect(agentStreamUrl(null)).toBe("/api/agent/actions/stream");
    expect(agentStreamUrl(null, { ticket: "tk" })).toBe("/api/agent/actions/stream?ticket=tk");
    expect(agentStreamUrl(17, { ticket: "a/b" })).toBe("/api/agent/actions/stream?after=17&ticket=a%2Fb");
    expect(agentStreamUrl(null, { token: "s3cret" })).toBe("/api/agent/actions/stream?token=s3cret");
    expect(agentStreamUrl(17, { token: "a b" })).toBe("/api/agent/actions/stream?after=17&token=a+b");
  });

  it("retries after 1 s doubling up to 30 s, with jitter", () => {
    expect([1, 2, 3, 6, 7, 20].map((n) => agentRetryDelayMs(n, 0.5))).toEqual([1_000, 2_000, 4_000, 30_000, 30_000, 30_000]);
    expect(agentRetryDelayMs(1, 0)).toBe(800);
    expect(agentRetryDelayMs(1, 0.999)).toBe(1_200);
  });
});

describe("AgentFeed", () => {
  it("opens the stream once, without a token in open mode", () => {
    const { feed, sources, fetched } = setup();
    feed.start();
    feed.start();
    expect(sources.map((s) => s.url)).toEqual(["/api/agent/actions/stream"]);
    expect(fetched).toEqual([]); // no ticket without a token
  });

  it("with a token, opens the stream once, with a ticket and no token in the URL", async () => {
    const { feed, sources, tickets } = setup({ token: "tok" });
    feed.start();
    feed.start();
    await flush();
    expect(sources.map((s) => s.url)).toEqual(["/api/agent/actions/stream?ticket=t1"]);
    expect(tickets()).toHaveLength(1);
    expect(tickets()[0].init?.method).toBe("POST");
    expect((tickets()[0].init?.headers as Record<string, string>).Authorization).toBe("Bearer tok");
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
    // A service older than stream tickets (404): the token goes in the URL, as before them.
    const { feed, sources, timers, fetched } = setup({
      answer: new Response(JSON.stringify({ error: { code: "forbidden", message: "no" } }), { status: 403 }),
      token: "wrong",
      tickets: [new Response("", { status: 404 })],
    });
    feed.start();
    await flush();
    expect(sources[0].url).toBe("/api/agent/actions/stream?token=wrong");
    fetched.length = 0;
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
    await flush();
    expect(sources[1].url).toBe("/api/agent/actions/stream?after=4&token=wrong");
    sources[1].refuse();
    expect(timers.map((t) => t.ms)).toEqual([1_000, 2_000]);
    timers[1].fn();
    await flush();
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

describe("AgentFeed with stream tickets", () => {
  const auth = (f: { init?: RequestInit }) => (f.init?.headers as Record<string, string>).Authorization;

  it("asks a new ticket for each stream: a dropped one is closed, not reconnected with a spent ticket", async () => {
    const { feed, sources, timers, tickets } = setup({ token: "tok" });
    feed.start();
    await flush();
    const es = sources[0];
    es.open();
    es.fire("action", rec(3));
    es.fire("caught_up", { seq: 3 });
    es.drop(); // the browser would reconnect with the same URL, and its spent ticket
    expect(es.closed).toBe(true);
    expect(feed.getState().phase).toBe("reconnecting");
    expect(timers.map((t) => t.ms)).toEqual([1_000]);
    timers[0].fn();
    await flush();
    expect(tickets()).toHaveLength(2);
    expect(sources[1].url).toBe("/api/agent/actions/stream?after=3&ticket=t2");
    expect(sources.every((s) => !new URL(s.url, "http://x").searchParams.has("token"))).toBe(true);
    sources[1].open();
    sources[1].fire("caught_up", { seq: 3 });
    expect(feed.getState().phase).toBe("live");
  });

  it("an error answer: a new stream with a new ticket after the delay", async () => {
    const { feed, sources, timers, tickets } = setup({ token: "tok" });
    feed.start();
    await flush();
    sources[0].refuse();
    expect(timers.map((t) => t.ms)).toEqual([1_000]);
    timers[0].fn();
    await flush();
    expect(tickets()).toHaveLength(2);
    expect(sources[1].url).toBe("/api/agent/actions/stream?ticket=t2");
  });

  it("a ticket the service does not give (503) is said and asked again later", async () => {
    const { feed, sources, timers, tickets } = setup({
      token: "tok",
      tickets: [json(503, { error: { code: "unavailable", message: "not live" } })],
    });
    feed.start();
    await flush();
    expect(sources).toHaveLength(0);
    expect(feed.getState().detail).toBe("a stream ticket was refused: 503 unavailable; next try in 1 s");
    expect(feed.getState().phase).toBe("connecting");
    timers[0].fn();
    await flush();
    expect(tickets()).toHaveLength(2);
    expect(sources[0].url).toBe("/api/agent/actions/stream?ticket=t1");
  });

  it("falls back to token= in the URL when the service has no tickets (404), and asks no more", async () => {
    const { feed, sources, timers, tickets } = setup({ token: "tok", tickets: [new Response("", { status: 404 })] });
    feed.start();
    await flush();
    expect(sources[0].url).toBe("/api/agent/actions/stream?token=tok");
    sources[0].refuse();
    timers[0].fn();
    await flush();
    expect(sources[1].url).toBe("/api/agent/actions/stream?token=tok");
    expect(tickets()).toHaveLength(1);
  });

  it("token_expired with a token URL: a new token, a new ticket with it, a new stream at once", async () => {
    const source = tokenUrlSource();
    const { feed, sources, timers, tickets } = setup({ tokens: source.tokens, now: () => source.clock.now });
    feed.start();
    await flush();
    const first = source.tokens.current()!;
    expect(auth(tickets()[0])).toBe(`Bearer ${first}`);
    sources[0].open();
    sources[0].fire("action", rec(7));
    sources[0].fire("caught_up", { seq: 7 });
    source.clock.now += 300_000; // at exp (the source's own refresh timer is not run here)
    sources[0].fire("token_expired", { exp: 0, message: "the token expired" });
    expect(sources[0].closed).toBe(true);
    await flush();
    await flush();
    expect(source.requests).toHaveLength(2);
    const second = source.tokens.current()!;
    expect(second).not.toBe(first);
    expect(auth(tickets()[1])).toBe(`Bearer ${second}`);
    expect(sources[1].url).toBe("/api/agent/actions/stream?after=7&ticket=t2");
    expect(timers).toHaveLength(0); // at once, no delay
  });

  it("token_expired when the token URL renewed the token already: a new ticket with it, no new token", async () => {
    const source = tokenUrlSource();
    const { feed, sources, tickets } = setup({ tokens: source.tokens, now: () => source.clock.now });
    feed.start();
    await flush();
    source.advance(240_000); // the scheduled refresh
    await flush();
    const renewed = source.tokens.current()!;
    source.clock.now += 60_000; // the first token's exp: its stream ends
    sources[0].fire("token_expired", { exp: 0 });
    await flush();
    await flush();
    expect(source.requests).toHaveLength(2);
    expect(auth(tickets()[1])).toBe(`Bearer ${renewed}`);
    expect(sources[1].url).toBe("/api/agent/actions/stream?ticket=t2");
  });

  it("token_revoked with a fixed token: the new ticket is refused, said, and not asked again", async () => {
    const { feed, sources, timers, tickets } = setup({
      token: "tok",
      tickets: [json(201, { ticket: "t1", expires_in: 30 }), json(401, { error: { code: "unauthorized", message: "the token was revoked" } })],
    });
    feed.start();
    await flush();
    sources[0].open();
    sources[0].fire("token_revoked", { message: "the token was revoked" });
    await flush();
    expect(tickets()).toHaveLength(2);
    expect(sources).toHaveLength(1);
    expect(timers).toHaveLength(0);
    expect(feed.getState()).toMatchObject({ phase: "unavailable", detail: tokenEndedText("revoked"), retryAt: null });
  });

  it("a fixed token that expired: 'open the dashboard with a new token', no loop", async () => {
    const { feed, sources, timers } = setup({
      token: "tok",
      tickets: [json(401, { error: { code: "unauthorized", message: "the token has expired" } })],
    });
    feed.start();
    await flush();
    expect(sources).toHaveLength(0);
    expect(timers).toHaveLength(0);
    expect(feed.getState().detail).toBe("your token expired: open the dashboard at /#token=<a new token>");
    expect(feed.getState().announcement?.text).toContain("your token expired");
  });

  it("a token URL whose token is refused (401): the next try takes a new token first", async () => {
    const source = tokenUrlSource();
    const { feed, sources, timers, tickets } = setup({
      tokens: source.tokens,
      tickets: [json(401, { error: { code: "unauthorized", message: "the token has expired" } })],
    });
    feed.start();
    await flush();
    expect(sources).toHaveLength(0);
    expect(feed.getState().phase).toBe("unavailable");
    expect(feed.getState().detail).toBe("the token was refused: the token has expired (unauthorized); next try in 1 s");
    timers[0].fn();
    await flush();
    await flush();
    expect(source.requests).toHaveLength(2);
    expect(auth(tickets()[1])).toBe(`Bearer ${source.tokens.current()}`);
    expect(sources[0].url).toBe("/api/agent/actions/stream?ticket=t1");
  });

  it("token_revoked with a token URL whose new token is revoked too: one new token, then said, and not asked again", async () => {
    const source = tokenUrlSource();
    const revoked = json(401, { error: { code: "unauthorized", message: "the token was revoked" } });
    const { feed, sources, timers, tickets } = setup({
      tokens: source.tokens,
      now: () => source.clock.now,
      tickets: [json(201, { ticket: "t1", expires_in: 30 }), revoked],
    });
    feed.start();
    await flush();
    sources[0].open();
    sources[0].fire("caught_up", { seq: 0 });
    sources[0].fire("token_revoked", { message: "the token was revoked" });
    await flush();
    await flush();
    expect(source.requests).toHaveLength(2); // one new token from the token URL
    expect(tickets()).toHaveLength(2); // its ticket is refused as revoked too
    expect(sources).toHaveLength(1);
    expect(timers).toHaveLength(0); // nothing is tried again by itself
    expect(feed.getState()).toMatchObject({ phase: "unavailable", detail: tokenEndedText("revoked"), retryAt: null });
  });

  it("stop() while a ticket is asked opens nothing", async () => {
    const { feed, sources } = setup({ token: "tok" });
    feed.start();
    feed.stop();
    await flush();
    expect(sources).toHaveLength(0);
  });
});

describe("requestTicket", () => {
  it("POSTs with the bearer token and reads the ticket", async () => {
    let seen: RequestInit | undefined;
    const answer = await requestTicket(async (_input, init) => {
      seen = init;
      return json(201, { ticket: "abc", expires_in: 30 });
    }, "tok");
    expect(answer).toEqual({ kind: "ticket", ticket: "abc", expiresIn: 30 });
    expect(seen?.method).toBe("POST");
    expect(seen?.body).toBeUndefined();
    expect((seen?.headers as Record<string, string>).Authorization).toBe("Bearer tok");
  });

  it("tells an older service (404), a refusal, and an unreachable one apart", async () => {
    expect(await requestTicket(async () => new Response("", { status: 404 }), "t")).toEqual({ kind: "unsupported" });
    const refused = await requestTicket(async () => json(401, { error: { code: "unauthorized", message: "the token has expired" } }), "t");
    expect(refused).toEqual({ kind: "refused", status: 401, code: "unauthorized", message: "the token has expired" });
    expect(describeTicketFailure(refused as never)).toEqual({
      detail: "the token was refused: the token has expired (unauthorized)",
      refused: true,
    });
    const unreachable = await requestTicket(async () => {
      throw new TypeError("Failed to fetch");
    }, "t");
    expect(unreachable).toEqual({ kind: "unreachable" });
    expect(describeTicketFailure({ kind: "refused", status: 403, code: "forbidden", message: "x" })).toEqual({
      detail: "the token was not accepted (forbidden)",
      refused: true,
    });
  });
});
