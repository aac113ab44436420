// Shared by the tests of tokenSource.ts, liveStore.ts and agentFeed.ts: unsigned JWTs, a storage
// in memory, and a token URL source on a fake clock with fake timers.

import type { KeyStore } from "./tokenOrigin";
import { TokenSource } from "./tokenSource";

const base64url = (text: string) =>
  btoa(String.fromCharCode(...new TextEncoder().encode(text)))
    .replace(/\+/g, "-")
    .replace(/\//g, "_")
    .replace(/=+$/, "");

/** A JWT with these claims (the signature is not checked by the dashboard). */
export function jwt(claims: Record<string, unknown>): string {
  return `${base64url(JSON.stringify({ alg: "HS256", typ: "JWT" }))}.${base64url(JSON.stringify(claims))}.c2ln`;
}

export class MemoryStorage implements KeyStore {
  readonly items = new Map<string, string>();
  getItem(key: string): string | null {
    return this.items.get(key) ?? null;
  }
  setItem(key: string, value: string): void {
    this.items.set(key, value);
  }
  removeItem(key: string): void {
    this.items.delete(key);
  }
}

export interface FakeTimer {
  fn: () => void;
  ms: number;
  at: number;
  cleared: boolean;
}

/** A token URL (`/demo/token`, grant `g`) that answers from `answers` in turn (null: a token as
 *  below; a promise: when the test resolves it), then 300 s JWTs (`sub` "u", numbered by `n`), on a
 *  clock the test moves (`clock.now`). */
export function tokenUrlSource(answers: (Response | Error | Promise<Response> | null)[] = [], start = 1_000_000) {
  const clock = { now: start };
  const timers: FakeTimer[] = [];
  const requests: { url: string; init?: RequestInit }[] = [];
  let issued = 0;
  const pending = [...answers];
  const tokens = new TokenSource(
    { kind: "url", url: "/demo/token", grant: "g" },
    {
      fetchImpl: async (input, init) => {
        requests.push({ url: String(input), init });
        const next = pending.shift();
        if (next instanceof Error) throw next;
        if (next !== undefined && next !== null) return next;
        issued += 1;
        const iat = Math.floor(clock.now / 1000);
        return new Response(JSON.stringify({ token: jwt({ sub: "u", n: issued, iat, exp: iat + 300 }), expires_in: 300 }), {
          status: 200,
          headers: { "Content-Type": "application/json" },
        });
      },
      now: () => clock.now,
      setTimer: (fn, ms) => {
        const timer: FakeTimer = { fn, ms, at: clock.now + ms, cleared: false };
        timers.push(timer);
        return timer;
      },
      clearTimer: (timer) => {
        (timer as FakeTimer).cleared = true;
      },
      random: () => 0.5,
      pageOrigin: "http://orders.test",
    },
  );
  /** Runs the timers due by `ms` from now, in order, moving the clock. */
  const advance = (ms: number) => {
    const until = clock.now + ms;
    for (;;) {
      const due = timers.filter((t) => !t.cleared && t.at <= until).sort((a, b) => a.at - b.at)[0];
      if (due === undefined) break;
      due.cleared = true;
      clock.now = Math.max(clock.now, due.at);
      due.fn();
    }
    clock.now = until;
  };
  return { tokens, clock, timers, requests, advance };
}

/** Lets the promises settle (fetch answers, then what waits on them). */
export const flush = () => new Promise((resolve) => setTimeout(resolve, 0));
