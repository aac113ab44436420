// Wires the agent's action log (`GET /api/agent/actions/stream`, Server-Sent Events) to the pure
// reducer of agentActions.ts. Framework-free: React reads it through useSyncExternalStore.
//
// Without a token (open mode) the browser reconnects a lost EventSource by itself and sends
// Last-Event-ID (the last record's seq), so the records after it come again, then `caught_up`.
// An error answer (401, 403, 404, 503) ends an EventSource for good: the feed then opens a new one
// after a growing delay, with `?after=<the last seq>` (a new EventSource sends no Last-Event-ID).
//
// With a token, no token goes in the URL: before each stream the feed asks a stream ticket
// (`POST /api/stream-tickets`, streamTickets.ts) and opens `?ticket=<ticket>&after=<seq>`. A ticket
// is good once, so the browser must not reconnect with the same URL: on any error the feed closes
// the stream and opens a new one with a new ticket. `token_expired` / `token_revoked` end a stream:
// a new one at once (with a new token from a token URL; a fixed token that ended is said, and not
// tried again). A service older than tickets (404) gets the token in the URL (`?token=`), as before.

import { type AgentAction, type AgentState, initialAgentState, reduceAgent } from "./agentActions";
import { tokenEndOf } from "./refusal";
import { type TicketAnswer, describeTicketFailure, requestTicket } from "./streamTickets";
import { lastsBeyond } from "./tokenExpiry";
import type { Tokens } from "./tokenSource";

export const AGENT_STREAM = "/api/agent/actions/stream";

/** What the feed needs of an EventSource (a fake one in tests). */
export interface AgentEventSource {
  readonly readyState: number;
  addEventListener(type: string, listener: (event: Event) => void): void;
  close(): void;
}

const CLOSED = 2; // EventSource.CLOSED

export interface AgentFeedOptions {
  /** Opens an EventSource on the URL. */
  open: (url: string) => AgentEventSource;
  /** The dashboard's token source; none (or one without a token): open mode. */
  tokens?: Tokens;
  fetchImpl?: typeof fetch;
  now?: () => number;
  setTimer?: (fn: () => void, ms: number) => unknown;
  clearTimer?: (timer: unknown) => void;
  /** A number in [0, 1) for the jitter of the retry delays. */
  random?: () => number;
}

/** The delay before the feed's `attempt`-th new stream: 1 s doubling up to 30 s, ±20 %. */
export function agentRetryDelayMs(attempt: number, random: number): number {
  const ceiling = Math.min(30_000, 1_000 * 2 ** Math.max(0, attempt - 1));
  return Math.round(ceiling * (0.8 + random * 0.4));
}

/** How a stream is let in: nothing (open mode), a ticket, or the token itself (a service older
 *  than tickets). */
export type StreamAccess = { ticket: string } | { token: string } | null;

/** The stream's address: for a new stream after a closed one, `after`; then the ticket or token. */
export function agentStreamUrl(after: number | null, access: StreamAccess = null): string {
  const params = new URLSearchParams();
  if (after !== null) params.set("after", String(after));
  if (access !== null && "ticket" in access) params.set("ticket", access.ticket);
  if (access !== null && "token" in access) params.set("token", access.token);
  const search = params.toString();
  return search ? `${AGENT_STREAM}?${search}` : AGENT_STREAM;
}

/** What the page says when the token ended and no new one can be had. */
export function tokenEndedText(end: "expired" | "revoked"): string {
  return end === "expired" ? "your token expired: open the dashboard at /#token=<a new token>" : "your token was revoked";
}

/** A stream about to be opened, or the ticket request that failed. */
type Prepared =
  | { kind: "open"; url: string; ticketed: boolean }
  | { kind: "failed"; answer: Exclude<TicketAnswer, { kind: "ticket" | "unsupported" }> };

/** Why a closed stream was refused, from a plain request (EventSource does not say). */
export async function explainClosed(
  fetchImpl: typeof fetch,
  token: string | undefined,
): Promise<{ detail: string; refused: boolean } | null> {
  let response: Response;
  try {
    response = await fetchImpl("/api/agent/actions?limit=1", {
      headers: token ? { Accept: "application/json", Authorization: `Bearer ${token}` } : { Accept: "application/json" },
      cache: "no-store",
    });
  } catch {
    return { detail: "the service is not reachable", refused: false };
  }
  if (response.ok) return null; // the next stream will tell
  if (response.status === 404) return { detail: "this service keeps no agent log (404)", refused: true };
  let code = "";
  try {
    const body: unknown = await response.json();
    if (typeof body === "object" && body !== null && "error" in body) {
      const error = (body as { error?: { code?: unknown } }).error;
      if (typeof error?.code === "string") code = error.code;
    }
  } catch {
    // not JSON
  }
  if (response.status === 401) return { detail: `a read token is required (${code || "401"})`, refused: true };
  if (response.status === 403) return { detail: `the token was not accepted (${code || "403"})`, refused: true };
  return { detail: `the server answered ${response.status}${code ? ` ${code}` : ""}`, refused: false };
}

export class AgentFeed {
  private state: AgentState = initialAgentState();
  private readonly listeners = new Set<() => void>();
  private source: AgentEventSource | null = null;
  private timer: unknown = null;
  /** New streams opened after a closed one since the last caught_up. */
  private failures = 0;
  private started = false;
  /** Increases with every stream begun (and at stop): a ticket answer for an older one does nothing. */
  private serial = 0;
  /** The service answered 404 to a ticket request: it is older than tickets, the token goes in the URL. */
  private noTickets = false;
  /** The next stream takes a new token from the token URL first (the token was refused, or ended). */
  private renewFirst = false;
  /** A new token was taken because the last one was refused or ended, and no stream got through
   *  since: a revoked refusal now is final (the token URL gives revoked tokens), as in LiveStore. */
  private renewed = false;
  private readonly fetchImpl: typeof fetch;
  private readonly now: () => number;
  private readonly setTimer: (fn: () => void, ms: number) => unknown;
  private readonly clearTimer: (timer: unknown) => void;
  private readonly random: () => number;

  constructor(private readonly options: AgentFeedOptions) {
    this.fetchImpl = options.fetchImpl ?? ((...args) => fetch(...args));
    this.now = options.now ?? Date.now;
    this.setTimer = options.setTimer ?? ((fn, ms) => setTimeout(fn, ms));
    this.clearTimer = options.clearTimer ?? ((timer) => clearTimeout(timer as ReturnType<typeof setTimeout>));
    this.random = options.random ?? Math.random;
  }

  // -- for React ------------------------------------------------------------------------------
  getState = (): AgentState => this.state;

  listen = (listener: () => void): (() => void) => {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  };

  dispatch(action: AgentAction): void {
    const next = reduceAgent(this.state, action);
    if (next === this.state) return;
    this.state = next;
    for (const listener of this.listeners) listener();
  }

  // -- the stream -----------------------------------------------------------------------------
  /** Opens the stream (once; later calls do nothing). */
  start(): void {
    if (this.started) return;
    this.started = true;
    this.dispatch({ type: "started" });
    this.connect();
  }

  stop(): void {
    this.started = false;
    this.serial += 1;
    if (this.timer !== null) this.clearTimer(this.timer);
    this.timer = null;
    this.source?.close();
    this.source = null;
  }

  private token(): string | undefined {
    return this.options.tokens?.current();
  }

  /** Opens a new stream: at once in open mode, after a ticket (and a new token, if due) with one. */
  private connect(): void {
    this.timer = null;
    const serial = ++this.serial;
    const tokens = this.options.tokens;
    if (tokens === undefined || (!tokens.refreshable && tokens.current() === undefined)) {
      // The first stream sends the newest records; a later one resumes after the last seq held.
      this.open(agentStreamUrl(this.state.lastSeq), false);
      return;
    }
    void this.prepare(tokens).then((prepared) => {
      if (!this.started || serial !== this.serial || this.source !== null) return; // stopped, or overtaken
      if (prepared.kind === "open") this.open(prepared.url, prepared.ticketed);
      else this.ticketFailed(prepared.answer);
    });
  }

  private async prepare(tokens: Tokens): Promise<Prepared> {
    let token = tokens.current();
    // A ticket carries the token's exp: one about to expire (or none yet) is renewed first.
    if (tokens.refreshable && (this.renewFirst || !lastsBeyond(token, this.now()))) {
      this.renewed = this.renewed || this.renewFirst;
      this.renewFirst = false;
      token = await tokens.fresh();
    }
    if (token === undefined) return { kind: "open", url: agentStreamUrl(this.state.lastSeq), ticketed: false };
    if (!this.noTickets) {
      const answer = await requestTicket(this.fetchImpl, token);
      if (answer.kind === "ticket") {
        return { kind: "open", url: agentStreamUrl(this.state.lastSeq, { ticket: answer.ticket }), ticketed: true };
      }
      if (answer.kind !== "unsupported") return { kind: "failed", answer };
      this.noTickets = true;
    }
    return { kind: "open", url: agentStreamUrl(this.state.lastSeq, { token }), ticketed: false };
  }

  /** The ticket was not given: said, and tried again after a growing delay (with a new token from
   *  a token URL after a 401). A fixed token that expired or was revoked is not tried again. */
  private ticketFailed(answer: Exclude<TicketAnswer, { kind: "ticket" | "unsupported" }>): void {
    if (answer.kind === "refused" && answer.status === 401) {
      const end = tokenEndOf({ code: answer.code ?? "unauthorized", message: answer.message });
      const refreshable = this.options.tokens?.refreshable ?? false;
      if (refreshable && !(end === "revoked" && this.renewed)) {
        this.renewFirst = true;
      } else if (end !== null) {
        this.dispatch({ type: "ended", detail: tokenEndedText(end) });
        return;
      }
    }
    const { seconds } = this.retryLater();
    const why = describeTicketFailure(answer);
    this.dispatch({ type: "explained", detail: `${why.detail}; next try in ${seconds} s`, refused: why.refused });
  }

  /** Counts a failure and opens a new stream after the next delay; says so (`closed`). */
  private retryLater(): { seconds: string; failures: number } {
    this.failures += 1;
    const delay = agentRetryDelayMs(this.failures, this.random());
    const seconds = delay < 1_000 ? (delay / 1_000).toFixed(1) : String(Math.round(delay / 1_000));
    this.dispatch({ type: "closed", retryAt: this.now() + delay, detail: `next try in ${seconds} s` });
    this.timer = this.setTimer(() => {
      if (this.started && this.source === null) this.connect();
    }, delay);
    return { seconds, failures: this.failures };
  }

  private open(url: string, ticketed: boolean): void {
    const es = this.options.open(url);
    this.source = es;
    const current = () => this.source === es;
    es.addEventListener("open", () => {
      if (current()) this.dispatch({ type: "opened" });
    });
    const data = (event: Event): unknown => {
      try {
        return JSON.parse(String((event as MessageEvent).data));
      } catch {
        return undefined; // counted as malformed
      }
    };
    es.addEventListener("action", (event) => {
      if (current()) this.dispatch({ type: "record", data: data(event) });
    });
    es.addEventListener("caught_up", (event) => {
      if (!current()) return;
      this.failures = 0;
      this.renewed = false;
      this.dispatch({ type: "caught_up", data: data(event) });
    });
    // The stream ends at its token's exp (or at a revocation): a new one at once, with a new ticket.
    es.addEventListener("token_expired", () => {
      if (current()) this.tokenEnded(es, "expired");
    });
    es.addEventListener("token_revoked", () => {
      if (current()) this.tokenEnded(es, "revoked");
    });
    es.addEventListener("error", () => {
      if (!current()) return;
      const dropped = es.readyState !== CLOSED; // a lost connection, which the browser would retry
      if (dropped && !ticketed) {
        this.dispatch({ type: "lost" }); // the browser reconnects, with Last-Event-ID
        return;
      }
      es.close();
      this.source = null;
      if (dropped) {
        // Its ticket is spent: a new stream with a new ticket, resuming after the last seq.
        this.dispatch({ type: "lost" });
        this.failures += 1;
        const delay = agentRetryDelayMs(this.failures, this.random());
        this.timer = this.setTimer(() => {
          if (this.started && this.source === null) this.connect();
        }, delay);
        return;
      }
      const { seconds, failures } = this.retryLater();
      void explainClosed(this.fetchImpl, this.token()).then((why) => {
        // Out of date once another stream is open (or another failure came).
        if (why === null || this.source !== null || failures !== this.failures) return;
        this.dispatch({ type: "explained", detail: `${why.detail}; next try in ${seconds} s`, refused: why.refused });
      });
    });
  }

  private tokenEnded(es: AgentEventSource, end: "expired" | "revoked"): void {
    es.close();
    this.source = null;
    this.dispatch({ type: "lost" });
    // A token URL's token is usually renewed before its exp already (prepare renews it if not); a
    // revoked one is replaced.
    if (end === "revoked" && this.options.tokens?.refreshable) this.renewFirst = true;
    this.connect();
  }
}
