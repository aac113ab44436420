// A Socket.IO connection the server refused (docs/protocol.md, "Socket.IO" > refusals), and when
// to try again. Pure: no socket, no clock, no randomness of its own (both come in as arguments).
//
// python-socketio sends a CONNECT_ERROR `{"message": "...", "data": {"code": "..."}}`, which
// socket.io-client turns into a `connect_error` Error with `.message` and `.data`, and then stops:
// unlike a transport failure, a refusal is not retried by the client itself.

/** The refusal codes the server uses; any other string is shown as it comes. */
export type RefusalCode = "unauthorized" | "forbidden" | "too_many_connections";

export interface Refusal {
  /** The server's code (`data.code`), or null when it gave none. */
  code: string | null;
  /** The server's sentence (`message`). */
  message: string;
}

/** Reads a `connect_error` of socket.io-client: the server's refusal, if it is one. */
export function refusalOf(error: unknown): Refusal {
  const message = error instanceof Error ? error.message : typeof error === "string" ? error : "";
  const data = typeof error === "object" && error !== null ? (error as { data?: unknown }).data : undefined;
  const code =
    typeof data === "object" && data !== null && typeof (data as { code?: unknown }).code === "string"
      ? (data as { code: string }).code
      : null;
  return { code, message: message || "the server refused the connection" };
}

/** The delays between attempts after refusals in a row: doubling from `baseMs`, capped at `maxMs`,
 *  each one spread by ±`jitter` (so that many tabs refused at once do not come back at once). */
export const REFUSAL_RETRY = { baseMs: 500, factor: 2, maxMs: 20_000, jitter: 0.2 } as const;

/**
 * The delay before the next attempt, after `failures` refusals in a row (1 for the first one),
 * for a `random` number in [0, 1): 0.5 s, 1 s, 2 s, 4 s … up to 20 s, each ±20 %, never above
 * the cap.
 */
export function retryDelayMs(failures: number, random: number, retry = REFUSAL_RETRY): number {
  const step = Math.max(0, Math.floor(failures) - 1);
  const nominal = Math.min(retry.maxMs, retry.baseMs * retry.factor ** step);
  const spread = 1 - retry.jitter + 2 * retry.jitter * Math.min(Math.max(random, 0), 1);
  return Math.round(Math.min(retry.maxMs, nominal * spread));
}

export interface RefusalText {
  /** Short, for the connection indicator. */
  label: string;
  /** What follows the label in the connection indicator. */
  detail: string;
  /** What the refusal means, in a sentence fragment ("a read token is required"). */
  summary: string;
  /** What to do about it. */
  help: string;
}

/** What a refusal means for the person looking at the dashboard. */
export function explainRefusal(refusal: Refusal): RefusalText {
  switch (refusal.code) {
    case "unauthorized":
      return {
        label: "Refused",
        detail: "a read token is required",
        summary: "a read token is required",
        help: "This service needs an access token. Open the dashboard once at /#token=<your token>: it is kept in this browser.",
      };
    case "forbidden":
      return {
        label: "Refused",
        detail: "the token was not accepted",
        summary: "the token was not accepted",
        help: "The token this browser holds does not allow reading the orders. Open /#token=<the right token> to replace it.",
      };
    case "too_many_connections":
      return {
        label: "Server full",
        detail: "waiting for a free connection",
        summary: "the server is full",
        help: "It already holds as many live connections as it allows. The dashboard connects by itself as soon as one frees up.",
      };
    default:
      return {
        label: "Refused",
        detail: refusal.message,
        summary: refusal.message,
        help: "The server refused the live connection.",
      };
  }
}

/** Whole seconds left until `retryAt` (at least 1 while it is ahead), or 0 when it is due. */
export function secondsUntil(retryAt: number, now: number): number {
  return retryAt > now ? Math.ceil((retryAt - now) / 1000) : 0;
}

/** "retrying in 4 s" until the next attempt of a refusal made `at`; "retrying now…" once it is
 *  due or under way (`retryAt` null). `now` may lag behind `at` (a clock that ticks each second). */
export function retryText(retry: { at: number; retryAt: number | null }, now: number): string {
  const seconds = retry.retryAt === null ? 0 : secondsUntil(retry.retryAt, Math.max(now, retry.at));
  return seconds === 0 ? "retrying now…" : `retrying in ${seconds} s`;
}
