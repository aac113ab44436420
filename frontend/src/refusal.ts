// A Socket.IO connection the server refused (docs/protocol.md, "Socket.IO" > refusals), and when
// to try again. Pure: no socket, no clock, no randomness of its own (both come in as arguments).
//
// python-socketio sends a CONNECT_ERROR `{"message": "...", "data": {"code": "..."}}`, which
// socket.io-client turns into a `connect_error` Error with `.message` and `.data`, and then stops:
// unlike a transport failure, a refusal is not retried by the client itself.
//
// The dashboard also ends a connection as a refusal of its own when its token ended: the server's
// `token_expired` and `token_revoked` events (codes of the same names), and a token URL that gives
// no token (`token_unavailable`).

/** The refusal codes the server uses, and the dashboard's own; any other string is shown as it comes. */
export type RefusalCode =
  | "unauthorized"
  | "forbidden"
  | "too_many_connections"
  | "token_expired"
  | "token_revoked"
  | "token_unavailable";

export interface Refusal {
  /** The server's code (`data.code`), or null when it gave none. */
  code: string | null;
  /** The server's sentence (`message`). */
  message: string;
  /** The dashboard gets new tokens by itself (a token URL), so an expired token is no dead end. */
  renewable?: boolean;
}

/** How a token ended: it expired, or the service revoked it. */
export type TokenEnd = "expired" | "revoked";

/** Whether the refusal says the token ended: the `token_expired` / `token_revoked` events, or an
 *  `unauthorized` refusal whose message says so ("the token has expired", "the token was revoked"). */
export function tokenEndOf(refusal: Refusal): TokenEnd | null {
  if (refusal.code === "token_expired") return "expired";
  if (refusal.code === "token_revoked") return "revoked";
  if (refusal.code !== "unauthorized") return null;
  if (/\brevoked\b/i.test(refusal.message)) return "revoked";
  if (/\bexpired\b/i.test(refusal.message)) return "expired";
  return null;
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
export interface RetrySchedule {
  baseMs: number;
  factor: number;
  maxMs: number;
  jitter: number;
}

export const REFUSAL_RETRY: RetrySchedule = { baseMs: 500, factor: 2, maxMs: 20_000, jitter: 0.2 };

/**
 * The delay before the next attempt, after `failures` refusals in a row (1 for the first one),
 * for a `random` number in [0, 1): 0.5 s, 1 s, 2 s, 4 s … up to 20 s, each ±20 %, never above
 * the cap.
 */
export function retryDelayMs(failures: number, random: number, retry: RetrySchedule = REFUSAL_RETRY): number {
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
  /** The banner's heading: a sentence. */
  title: string;
  /** What to do about it. */
  help: string;
}

const refusedTitle = (summary: string) => `The server refused the connection: ${summary}`;

/** What a refusal means for the person looking at the dashboard. */
export function explainRefusal(refusal: Refusal): RefusalText {
  const end = tokenEndOf(refusal);
  if (end === "expired" && refusal.renewable) {
    return {
      label: "Refused",
      detail: "the token expired, getting a new one",
      summary: "the token expired",
      title: refusedTitle("the token expired"),
      help: "The dashboard asks its token URL for a new token before each new try.",
    };
  }
  if (end === "expired") {
    return {
      label: "Token expired",
      detail: "a new token is needed",
      summary: "your token expired",
      title: "Your token expired: open the dashboard at /#token=<a new token>",
      help:
        "The dashboard does not try again with a token that has expired; the last orders it had stay on screen. " +
        "This tab keeps the new token until it is closed.",
    };
  }
  if (end === "revoked") {
    return {
      label: "Token revoked",
      detail: "the service no longer accepts this token",
      summary: "your token was revoked",
      title: "Your token was revoked",
      help: refusal.renewable
        ? "The token URL gives a token the service no longer accepts. Open the dashboard with another grant, or at /#token=<a new token>."
        : "The service no longer accepts this token. Open the dashboard at /#token=<a new token>.",
    };
  }
  switch (refusal.code) {
    case "unauthorized":
      return {
        label: "Refused",
        detail: "a read token is required",
        summary: "a read token is required",
        title: refusedTitle("a read token is required"),
        help: refusal.renewable
          ? "The token from the token URL was not accepted. The dashboard asks for a new one before each new try."
          : "This service needs an access token. Open the dashboard once at /#token=<your token>: this tab keeps it.",
      };
    case "forbidden":
      return {
        label: "Refused",
        detail: "the token was not accepted",
        summary: "the token was not accepted",
        title: refusedTitle("the token was not accepted"),
        help: "The token this tab holds does not allow reading the orders. Open /#token=<the right token> to replace it.",
      };
    case "too_many_connections":
      return {
        label: "Server full",
        detail: "waiting for a free connection",
        summary: "the server is full",
        title: "The server is full",
        help: "It already holds as many live connections as it allows. The dashboard connects by itself as soon as one frees up.",
      };
    case "token_unavailable":
      return {
        label: "No token",
        detail: "the token URL gave none",
        summary: "no token could be had",
        title: "The dashboard could not get a token from its token URL",
        help: "It asks the token URL (#token-url=…) again by itself, and connects as soon as a token comes.",
      };
    default:
      return {
        label: "Refused",
        detail: refusal.message,
        summary: refusal.message,
        title: refusedTitle(refusal.message),
        help: "The server refused the live connection.",
      };
  }
}

/** Whole seconds left until `retryAt` (at least 1 while it is ahead), or 0 when it is due. */
export function secondsUntil(retryAt: number, now: number): number {
  return retryAt > now ? Math.ceil((retryAt - now) / 1000) : 0;
}

/** "retrying in 4 s" until the next attempt of a refusal made `at`; "retrying now…" once it is
 *  due or under way (`retryAt` null); "not retrying by itself" for a `final` one (a token that
 *  ended). `now` may lag behind `at` (a clock that ticks each second). */
export function retryText(retry: { at: number; retryAt: number | null; final?: boolean }, now: number): string {
  if (retry.final) return "not retrying by itself";
  const seconds = retry.retryAt === null ? 0 : secondsUntil(retry.retryAt, Math.max(now, retry.at));
  return seconds === 0 ? "retrying now…" : `retrying in ${seconds} s`;
}
