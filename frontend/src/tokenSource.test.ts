import { describe, expect, it } from "vitest";
import { retryDelayMs } from "./refusal";
import { MemoryStorage, flush, jwt, tokenUrlSource } from "./tokenFixtures";
import {
  jwtClaims,
  lastsBeyond,
  refreshDelayMs,
  tokenExpiry,
} from "./tokenExpiry";
import {
  GRANT_KEY,
  TOKEN_KEY,
  TOKEN_URL_KEY,
  keepOrigin,
  originFor,
  readFragment,
  storedOrigin,
} from "./tokenOrigin";
import { TOKEN_RETRY, TokenSource, fixedTokens } from "./tokenSource";

const json = (status: number, body: unknown) =>
  new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json" } });

describe("the fragment", () => {
  it("gives a fixed token, or a token URL with its grant, and what is left of it", () => {
    expect(readFragment("#token=abc")).toEqual({ given: { kind: "fixed", token: "abc" }, rest: "", found: true });
    expect(readFragment("#token-url=/demo/token&grant=g%201")).toEqual({
      given: { kind: "url", url: "/demo/token", grant: "g 1" },
      rest: "",
      found: true,
    });
    expect(readFragment("token-url=/t").given).toEqual({ kind: "url", url: "/t", grant: null });
    expect(readFragment("#status=pending&token=abc")).toEqual({
      given: { kind: "fixed", token: "abc" },
      rest: "status=pending",
      found: true,
    });
  });

  it("a token URL wins over a token; an empty token or a grant alone give nothing", () => {
    expect(readFragment("#token=abc&token-url=/t&grant=g").given).toEqual({ kind: "url", url: "/t", grant: "g" });
    expect(readFragment("#token=")).toEqual({ given: null, rest: "", found: true });
    expect(readFragment("#grant=g")).toEqual({ given: null, rest: "", found: true });
    expect(readFragment("")).toEqual({ given: null, rest: "", found: false });
    expect(readFragment("#status=shipped")).toEqual({ given: null, rest: "status=shipped", found: false });
  });
});

describe("storage", () => {
  it("keeps a fixed token in this tab's storage, and never writes the shared one", () => {
    const session = new MemoryStorage();
    const local = new MemoryStorage();
    const { origin, found } = originFor("#token=abc", session, local);
    expect(origin).toEqual({ kind: "fixed", token: "abc" });
    expect(found).toBe(true);
    expect(session.getItem(TOKEN_KEY)).toBe("abc");
    expect(local.items.size).toBe(0);
    // Opened again without a fragment (a reload): the same token.
    expect(originFor("", session, local).origin).toEqual({ kind: "fixed", token: "abc" });
  });

  it("keeps a token URL and its grant, replacing a fixed token (and the other way round)", () => {
    const session = new MemoryStorage();
    keepOrigin({ kind: "fixed", token: "abc" }, session);
    keepOrigin({ kind: "url", url: "/demo/token", grant: "g" }, session);
    expect(session.getItem(TOKEN_KEY)).toBeNull();
    expect(session.getItem(TOKEN_URL_KEY)).toBe("/demo/token");
    expect(session.getItem(GRANT_KEY)).toBe("g");
    expect(storedOrigin(session, null)).toEqual({ kind: "url", url: "/demo/token", grant: "g" });
    keepOrigin({ kind: "url", url: "/t", grant: null }, session);
    expect(session.getItem(GRANT_KEY)).toBeNull();
    keepOrigin({ kind: "fixed", token: "xyz" }, session);
    expect(session.getItem(TOKEN_URL_KEY)).toBeNull();
    expect(storedOrigin(session, null)).toEqual({ kind: "fixed", token: "xyz" });
  });

  it("reads a token an older dashboard kept in localStorage only when this tab holds none", () => {
    const session = new MemoryStorage();
    const local = new MemoryStorage();
    local.setItem(TOKEN_KEY, "old");
    expect(storedOrigin(session, local)).toEqual({ kind: "fixed", token: "old" });
    session.setItem(TOKEN_KEY, "mine");
    expect(storedOrigin(session, local)).toEqual({ kind: "fixed", token: "mine" });
    expect(storedOrigin(new MemoryStorage(), new MemoryStorage())).toEqual({ kind: "none" });
    expect(storedOrigin(null, null)).toEqual({ kind: "none" });
  });

  it("two tabs (two session storages) hold two identities side by side", () => {
    const local = new MemoryStorage();
    const a = new MemoryStorage();
    const b = new MemoryStorage();
    originFor("#token=alice", a, local);
    originFor("#token-url=/demo/token&grant=bob", b, local);
    expect(originFor("", a, local).origin).toEqual({ kind: "fixed", token: "alice" });
    expect(originFor("", b, local).origin).toEqual({ kind: "url", url: "/demo/token", grant: "bob" });
  });

  it("copes with storage that throws (turned off)", () => {
    const broken = {
      getItem: () => {
        throw new Error("SecurityError");
      },
      setItem: () => {
        throw new Error("SecurityError");
      },
      removeItem: () => {
        throw new Error("SecurityError");
      },
    };
    expect(originFor("#token=abc", broken, broken).origin).toEqual({ kind: "fixed", token: "abc" });
    expect(originFor("", broken, broken).origin).toEqual({ kind: "none" });
  });
});

describe("a JWT's expiry", () => {
  it("reads exp from the base64url payload, without verifying", () => {
    const token = jwt({ sub: "u", exp: 2_000_000_000, customer: "José Ünïcödé ✓" });
    expect(jwtClaims(token)).toMatchObject({ sub: "u", exp: 2_000_000_000, customer: "José Ünïcödé ✓" });
    expect(tokenExpiry(token)).toBe(2_000_000_000_000);
  });

  it("a token that is not a JWT (a shared token), or one without exp, never expires", () => {
    expect(tokenExpiry("reader-secret")).toBeNull();
    expect(tokenExpiry("a.b.c")).toBeNull(); // not base64url JSON
    expect(tokenExpiry(`x.${btoa("[1]")}.y`)).toBeNull(); // not an object
    expect(tokenExpiry(jwt({ sub: "u" }))).toBeNull();
    expect(tokenExpiry(jwt({ sub: "u", exp: "soon" }))).toBeNull();
    expect(tokenExpiry(undefined)).toBeNull();
    expect(refreshDelayMs("reader-secret", 0)).toBeNull();
    expect(lastsBeyond("reader-secret", 0)).toBe(true);
  });

  it("says whether a token lasts beyond a margin", () => {
    const token = jwt({ exp: 1_000 });
    expect(lastsBeyond(token, 990_000)).toBe(true);
    expect(lastsBeyond(token, 996_000)).toBe(false);
    expect(lastsBeyond(undefined, 0)).toBe(false);
  });
});

describe("the refresh schedule", () => {
  const now = 1_000_000_000; // ms; exp and iat are in s
  const at = (lifetimeS: number, claims: Record<string, unknown> = {}) =>
    refreshDelayMs(jwt({ exp: now / 1000 + lifetimeS, ...claims }), now);

  it("at 80 % of the remaining lifetime, at most 60 s before exp", () => {
    expect(at(300)).toBe(240_000); // 80 %: 60 s before
    expect(at(100)).toBe(80_000); // 80 %: 20 s before
    expect(at(3600)).toBe(3_540_000); // 60 s before (80 % would be 12 min before)
    expect(at(30)).toBe(24_000);
  });

  it("never sooner than 1 s, even for a token about to expire", () => {
    expect(at(1)).toBe(1_000);
    expect(at(-10)).toBe(1_000);
  });

  it("with iat, a clock ahead of or behind the issuer's does not make it refresh in a loop or too late", () => {
    const iat = now / 1000 + 3_600; // this clock is an hour behind the issuer's
    expect(refreshDelayMs(jwt({ iat, exp: iat + 300 }), now)).toBe(240_000);
    const early = now / 1000 - 3_600; // an hour ahead: the token seems long expired
    expect(refreshDelayMs(jwt({ iat: early, exp: early + 300 }), now)).toBe(240_000);
    // A sane clock: the remaining lifetime by this clock.
    expect(refreshDelayMs(jwt({ iat: now / 1000 - 100, exp: now / 1000 + 200 }), now)).toBe(160_000);
  });
});

describe("a fixed source", () => {
  it("holds its token, is not refreshable, and fresh() answers it", async () => {
    const tokens = fixedTokens("abc");
    expect(tokens.refreshable).toBe(false);
    expect(tokens.current()).toBe("abc");
    expect(await tokens.fresh()).toBe("abc");
    expect(fixedTokens().current()).toBeUndefined();
    expect(fixedTokens(jwt({ exp: 1_234 })).expiresAt()).toBe(1_234_000);
  });
});

describe("a token URL", () => {
  it("POSTs the grant as JSON, same origin, and takes the token of the answer", async () => {
    const { tokens, requests } = tokenUrlSource();
    const seen: string[] = [];
    tokens.onToken((token) => seen.push(token));
    expect(tokens.refreshable).toBe(true);
    expect(tokens.current()).toBeUndefined();
    tokens.start();
    const token = await tokens.fresh(); // joins the request under way
    expect(requests).toHaveLength(1);
    expect(requests[0].url).toBe("http://orders.test/demo/token");
    expect(requests[0].init).toMatchObject({ method: "POST", credentials: "same-origin" });
    expect(JSON.parse(String(requests[0].init?.body))).toEqual({ grant: "g" });
    expect((requests[0].init?.headers as Record<string, string>)["Content-Type"]).toBe("application/json");
    expect(token).toBe(tokens.current());
    expect(jwtClaims(token!)).toMatchObject({ sub: "u", n: 1 });
    expect(seen).toEqual([token]);
  });

  it("without a grant, POSTs {}", async () => {
    let body = "";
    const tokens = new TokenSource(
      { kind: "url", url: "/t", grant: null },
      {
        fetchImpl: async (_input, init) => {
          body = String(init?.body);
          return json(200, { token: "plain" });
        },
        setTimer: () => 0,
      },
    );
    expect(await tokens.fresh()).toBe("plain");
    expect(JSON.parse(body)).toEqual({});
    expect(tokens.refreshAt()).toBeNull(); // not a JWT: never refreshed
  });

  it("refreshes at 80 % of the lifetime, on the fake clock, and tells the listeners", async () => {
    const { tokens, requests, timers, clock, advance } = tokenUrlSource();
    const seen: string[] = [];
    tokens.onToken((token) => seen.push(token));
    const first = await tokens.fresh();
    expect(tokens.refreshAt()).toBe(clock.now + 240_000);
    expect(timers.filter((t) => !t.cleared).map((t) => t.ms)).toEqual([240_000]);
    advance(239_000);
    expect(requests).toHaveLength(1);
    advance(1_000);
    await flush();
    expect(requests).toHaveLength(2);
    expect(seen).toHaveLength(2);
    expect(tokens.current()).not.toBe(first);
    expect(jwtClaims(tokens.current()!)).toMatchObject({ n: 2 });
    expect(tokens.refreshAt()).toBe(clock.now + 240_000); // and the next one
  });

  it("fresh() asks at once, once, however many ask, and replaces the scheduled refresh", async () => {
    const { tokens, requests, timers } = tokenUrlSource();
    await tokens.fresh();
    const [a, b] = [tokens.fresh(), tokens.fresh()];
    expect(await a).toBe(await b);
    expect(requests).toHaveLength(2);
    expect(timers[0].cleared).toBe(true);
    expect(timers.filter((t) => !t.cleared)).toHaveLength(1);
  });

  it("retries with growing, capped delays while the URL fails, and says why", async () => {
    const failures = [
      new TypeError("Failed to fetch"),
      json(401, { error: { code: "unauthorized", message: "unknown grant" } }),
      json(200, { nothing: true }),
      new Response("not json", { status: 502 }),
      json(503, {}),
      json(503, {}),
      json(503, {}),
    ];
    const { tokens, requests, timers, clock, advance } = tokenUrlSource(failures);
    const errors: { message: string; retryAt: number | null }[] = [];
    tokens.onError((error) => errors.push(error));
    const got = tokens.fresh();
    for (let i = 0; i < failures.length; i++) {
      await flush();
      advance(timers.filter((t) => !t.cleared).at(-1)?.ms ?? 0);
    }
    await flush();
    expect(requests).toHaveLength(failures.length + 1);
    const delays = timers.map((t) => t.ms).slice(0, failures.length);
    expect(delays).toEqual(failures.map((_, i) => retryDelayMs(i + 1, 0.5, TOKEN_RETRY)));
    expect(delays).toEqual([1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000]);
    expect(errors.map((e) => e.message)).toEqual([
      "the token URL /demo/token is not reachable",
      "the token URL answered 401 unauthorized: unknown grant",
      "the token URL's answer holds no token",
      "the token URL answered 502",
      "the token URL answered 503",
      "the token URL answered 503",
      "the token URL answered 503",
    ]);
    expect(errors[0].retryAt).toBeGreaterThan(0);
    expect(await got).toBe(tokens.current());
    expect(tokens.lastError()).toBeNull();
    expect(tokens.refreshAt()).toBe(clock.now + 240_000); // back on the schedule
  });

  it("a failed scheduled refresh is retried; the old token stays meanwhile; retryNow does not wait", async () => {
    const start = 1_000_000;
    const iat = start / 1000;
    const { tokens, requests, advance } = tokenUrlSource([json(200, { token: jwt({ iat, exp: iat + 300 }) }), new TypeError("down")], start);
    const first = await tokens.fresh();
    advance(240_000); // the scheduled refresh, which fails
    await flush();
    expect(requests).toHaveLength(2);
    expect(tokens.current()).toBe(first);
    expect(tokens.lastError()).toEqual({ message: "the token URL /demo/token is not reachable", retryAt: start + 240_000 + 1_000 });
    tokens.retryNow();
    await flush();
    expect(requests).toHaveLength(3);
    expect(tokens.current()).not.toBe(first);
    expect(tokens.lastError()).toBeNull();
  });

  it("refuses a token URL on another origin, without asking it or retrying", async () => {
    let asked = 0;
    const timers: number[] = [];
    const tokens = new TokenSource(
      { kind: "url", url: "https://evil.example/token", grant: "g" },
      {
        fetchImpl: async () => {
          asked += 1;
          return json(200, { token: "x" });
        },
        setTimer: (_fn, ms) => timers.push(ms),
        pageOrigin: "http://orders.test",
      },
    );
    const errors: { message: string; retryAt: number | null }[] = [];
    tokens.onError((error) => errors.push(error));
    void tokens.fresh();
    await flush();
    expect(asked).toBe(0);
    expect(timers).toEqual([]);
    expect(errors).toEqual([{ message: "the token URL https://evil.example/token is not on this page's origin", retryAt: null }]);
  });

  it("stop() ends the refreshes", async () => {
    const { tokens, requests, advance } = tokenUrlSource();
    await tokens.fresh();
    tokens.stop();
    advance(600_000);
    await flush();
    expect(requests).toHaveLength(1);
    expect(tokens.refreshAt()).toBeNull();
  });
});
