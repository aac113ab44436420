// Wires the agent's action log (`GET /api/agent/actions/stream`, Server-Sent Events) to the pure
// reducer of agentActions.ts. Framework-free: React reads it through useSyncExternalStore.
//
// The browser reconnects a lost EventSource by itself and sends Last-Event-ID (the last record's
// seq), so the records after it come again, then `caught_up`. An error answer (401, 403, 404,
// 503) ends an EventSource for good: the feed then opens a new one after a growing delay, with
// `?after=<the last seq>` (a new EventSource sends no Last-Event-ID).

import { type AgentAction, type AgentState, initialAgentState, reduceAgent } from "./agentActions";

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
  /** The dashboard's token: sent as `?token=` (EventSource cannot send headers). */
  token?: string;
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

/** The stream's address: the token and, for a new stream after a closed one, `after`. */
export function agentStreamUrl(token: string | undefined, after: number | null): string {
  const params = new URLSearchParams();
  if (after !== null) params.set("after", String(after));
  if (token) params.set("token", token);
  const search = params.toString();
  return search ? `${AGENT_STREAM}?${search}` : AGENT_STREAM;
}

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
    if (this.timer !== null) this.clearTimer(this.timer);
    this.timer = null;
    this.source?.close();
    this.source = null;
  }

  private connect(): void {
    this.timer = null;
    // The first stream sends the newest records; a later one resumes after the last seq held.
    const es = this.options.open(agentStreamUrl(this.options.token, this.state.lastSeq));
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
      this.dispatch({ type: "caught_up", data: data(event) });
    });
    es.addEventListener("error", () => {
      if (!current()) return;
      if (es.readyState !== CLOSED) {
        this.dispatch({ type: "lost" }); // the browser reconnects, with Last-Event-ID
        return;
      }
      es.close();
      this.source = null;
      this.failures += 1;
      const delay = agentRetryDelayMs(this.failures, this.random());
      const seconds = delay < 1_000 ? (delay / 1_000).toFixed(1) : String(Math.round(delay / 1_000));
      this.dispatch({ type: "closed", retryAt: this.now() + delay, detail: `next try in ${seconds} s` });
      const failures = this.failures;
      this.timer = this.setTimer(() => {
        if (this.started && this.source === null) this.connect();
      }, delay);
      void explainClosed(this.fetchImpl, this.options.token).then((why) => {
        // Out of date once another stream is open (or another failure came).
        if (why === null || this.source !== null || failures !== this.failures) return;
        this.dispatch({ type: "explained", detail: `${why.detail}; next try in ${seconds} s`, refused: why.refused });
      });
    });
  }
}
