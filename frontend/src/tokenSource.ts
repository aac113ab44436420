// The dashboard's access token and where it comes from: the URL fragment (never sent to a server),
// then this tab's sessionStorage (docs/protocol.md, "The dashboard's and /live.html's tokens").
//
// - `#token=<token>`: a fixed token (a JWT or a shared token). Kept in sessionStorage, per tab, so
//   that two tabs can hold two identities. A JWT is not refreshed: when it expires, the page says so.
// - `#token-url=<url>&grant=<grant>`: a refreshable source. `POST {"grant": "<grant>"}` (or `{}`) to
//   the URL, same origin, answers `{"token": "..."}`; a new token is asked before the current one
//   expires (at 80 % of its remaining lifetime, at most 60 s before its `exp`), and again with
//   growing, capped delays while the URL fails. The URL and the grant are kept in sessionStorage, so
//   that a reload works.
// A token kept in localStorage by an older dashboard is still read when this tab holds none (it is
// never written there any more). A token that is not a JWT (a shared token) never expires.
//
// The clock, the timers and fetch are injected, so that all of it is unit-tested without a browser.

import { type RetrySchedule, retryDelayMs } from "./refusal";
import { refreshDelayMs, tokenExpiry } from "./tokenExpiry";
import { jsonOrNull, recordOf } from "./responseBody";
import { NO_TOKEN, type TokenOrigin } from "./tokenOrigin";

// -- the source ---------------------------------------------------------------------------------

/** The delays between attempts while the token URL fails: 1 s doubling up to 30 s, ±20 %. */
export const TOKEN_RETRY: RetrySchedule = { baseMs: 1_000, factor: 2, maxMs: 30_000, jitter: 0.2 };

/** The token URL failed: why, and when the next attempt is (null: none by itself). */
export interface TokenError {
  message: string;
  retryAt: number | null;
}

/** What the live connection, the REST API and the event streams need of a token source. */
export interface Tokens {
  /** A new token can be had (a token URL); a fixed token or none cannot be renewed. */
  readonly refreshable: boolean;
  /** The token to send now; undefined without one (open mode, or before a token URL answered). */
  current(): string | undefined;
  /** A new token from the token URL (the attempt under way, if any, retried until one comes); the
   *  current token of a fixed source. */
  fresh(): Promise<string | undefined>;
  /** Called with every new token (a scheduled refresh, or fresh()). */
  onToken(listener: (token: string) => void): () => void;
  /** Called after every failed attempt of the token URL. */
  onError(listener: (error: TokenError) => void): () => void;
  /** Tries the token URL at once if it is waiting to try again. */
  retryNow(): void;
}

export interface TokenSourceOptions {
  fetchImpl?: typeof fetch;
  now?: () => number;
  setTimer?: (fn: () => void, ms: number) => unknown;
  clearTimer?: (timer: unknown) => void;
  /** A number in [0, 1) for the jitter of the retry delays. */
  random?: () => number;
  /** The page's origin: a token URL on another origin is refused. Default: `location.origin`. */
  pageOrigin?: string;
}

class TokenUrlError extends Error {
  constructor(
    message: string,
    /** Trying again would not help (a token URL on another origin). */
    readonly permanent = false,
  ) {
    super(message);
  }
}

interface Waiting {
  promise: Promise<string>;
  resolve: (token: string) => void;
}

export class TokenSource implements Tokens {
  readonly refreshable: boolean;
  private token: string | undefined;
  private readonly tokenListeners = new Set<(token: string) => void>();
  private readonly errorListeners = new Set<(error: TokenError) => void>();
  /** A refresh asked for and not answered yet (an attempt under way, or waiting to try again). */
  private waiting: Waiting | null = null;
  private inFlight = false;
  private failures = 0;
  private timer: unknown = null;
  /** When the next scheduled refresh is due. */
  private refreshDue: number | null = null;
  private error: TokenError | null = null;
  private stopped = false;
  private readonly fetchImpl: typeof fetch;
  private readonly now: () => number;
  private readonly setTimer: (fn: () => void, ms: number) => unknown;
  private readonly clearTimer: (timer: unknown) => void;
  private readonly random: () => number;
  private readonly pageOrigin: string | undefined;

  constructor(
    readonly origin: TokenOrigin,
    options: TokenSourceOptions = {},
  ) {
    this.refreshable = origin.kind === "url";
    this.token = origin.kind === "fixed" ? origin.token : undefined;
    this.fetchImpl = options.fetchImpl ?? ((...args) => fetch(...args));
    this.now = options.now ?? Date.now;
    this.setTimer = options.setTimer ?? ((fn, ms) => setTimeout(fn, ms));
    this.clearTimer = options.clearTimer ?? ((timer) => clearTimeout(timer as ReturnType<typeof setTimeout>));
    this.random = options.random ?? Math.random;
    this.pageOrigin = options.pageOrigin ?? (typeof location === "undefined" ? undefined : location.origin);
  }

  current = (): string | undefined => this.token;

  /** When the current token expires (ms since the epoch); null when it does not. */
  expiresAt(): number | null {
    return tokenExpiry(this.token);
  }

  /** When the next refresh is due (ms since the epoch); null when none is scheduled. */
  refreshAt(): number | null {
    return this.refreshDue;
  }

  /** The last failure of the token URL, until a token comes. */
  lastError(): TokenError | null {
    return this.error;
  }

  onToken(listener: (token: string) => void): () => void {
    this.tokenListeners.add(listener);
    return () => this.tokenListeners.delete(listener);
  }

  onError(listener: (error: TokenError) => void): () => void {
    this.errorListeners.add(listener);
    return () => this.errorListeners.delete(listener);
  }

  /** Asks the token URL for the first token (a fixed source has it already). */
  start(): void {
    this.stopped = false;
    if (this.refreshable && this.token === undefined) void this.fresh();
  }

  /** No more refreshes or retries. */
  stop(): void {
    this.stopped = true;
    this.cancelTimer();
  }

  fresh(): Promise<string | undefined> {
    if (!this.refreshable) return Promise.resolve(this.token);
    if (this.waiting === null) {
      let resolve: (token: string) => void = () => {};
      const promise = new Promise<string>((r) => (resolve = r));
      this.waiting = { promise, resolve };
      this.stopped = false;
      this.cancelTimer(); // a scheduled refresh: this is it
      this.attempt();
    }
    return this.waiting.promise;
  }

  retryNow(): void {
    if (this.waiting === null || this.inFlight) return;
    this.cancelTimer();
    this.attempt();
  }

  private cancelTimer(): void {
    if (this.timer !== null) this.clearTimer(this.timer);
    this.timer = null;
    this.refreshDue = null;
  }

  private attempt(): void {
    this.timer = null;
    this.inFlight = true;
    this.request().then(
      (token) => this.obtained(token),
      (error: unknown) => this.failed(error),
    );
  }

  private obtained(token: string): void {
    this.inFlight = false;
    this.failures = 0;
    this.error = null;
    this.token = token;
    const waiting = this.waiting;
    this.waiting = null;
    const delay = refreshDelayMs(token, this.now());
    if (delay !== null && !this.stopped) {
      this.refreshDue = this.now() + delay;
      this.timer = this.setTimer(() => {
        this.timer = null;
        this.refreshDue = null;
        void this.fresh();
      }, delay);
    }
    for (const listener of [...this.tokenListeners]) listener(token);
    waiting?.resolve(token);
  }

  private failed(error: unknown): void {
    this.inFlight = false;
    this.failures += 1;
    const permanent = error instanceof TokenUrlError && error.permanent;
    const message = error instanceof Error ? error.message : String(error);
    let retryAt: number | null = null;
    if (!permanent && !this.stopped) {
      const delay = retryDelayMs(this.failures, this.random(), TOKEN_RETRY);
      retryAt = this.now() + delay;
      this.timer = this.setTimer(() => this.attempt(), delay);
    }
    this.error = { message, retryAt };
    for (const listener of [...this.errorListeners]) listener(this.error);
  }

  /** One request to the token URL: its token, or an error that says why not. */
  private async request(): Promise<string> {
    if (this.origin.kind !== "url") throw new TokenUrlError("no token URL", true);
    const { url, grant } = this.origin;
    let target = url;
    if (this.pageOrigin !== undefined) {
      let resolved: URL;
      try {
        resolved = new URL(url, this.pageOrigin);
      } catch {
        throw new TokenUrlError(`the token URL ${url} is not a URL`, true);
      }
      if (resolved.origin !== this.pageOrigin) {
        throw new TokenUrlError(`the token URL ${url} is not on this page's origin`, true);
      }
      target = resolved.href;
    }
    let response: Response;
    try {
      response = await this.fetchImpl(target, {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "application/json" },
        body: JSON.stringify(grant === null ? {} : { grant }),
        credentials: "same-origin",
        cache: "no-store",
      });
    } catch {
      throw new TokenUrlError(`the token URL ${url} is not reachable`);
    }
    const record = recordOf(await jsonOrNull(response));
    if (!response.ok) {
      const error = recordOf(record.error);
      const code = typeof error.code === "string" ? ` ${error.code}` : "";
      const said = typeof error.message === "string" ? `: ${error.message}` : "";
      throw new TokenUrlError(`the token URL answered ${response.status}${code}${said}`);
    }
    if (typeof record.token !== "string" || record.token === "") {
      throw new TokenUrlError("the token URL's answer holds no token");
    }
    return record.token;
  }
}

/** A source with a fixed token (or none): for tests and for code that takes a token as it is. */
export function fixedTokens(token?: string): TokenSource {
  return new TokenSource(token ? { kind: "fixed", token } : NO_TOKEN);
}
