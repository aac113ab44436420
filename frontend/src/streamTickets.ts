// Stream tickets (`POST /api/stream-tickets`): an EventSource cannot send `Authorization`, and a
// token in a URL ends up in logs and in the history. A ticket is good for one stream request
// within `expires_in` seconds (30), so every new EventSource needs a new one. Tickets work in every
// mode; a service older than them answers 404, and then the token goes in the URL as before.

import { jsonOrNull, recordOf } from "./responseBody";

export const STREAM_TICKETS = "/api/stream-tickets";

export type TicketAnswer =
  | { kind: "ticket"; ticket: string; expiresIn: number | null }
  /** 404: a service older than tickets. */
  | { kind: "unsupported" }
  /** Any other error answer (401 with a token that expired, was revoked or does not verify, 403,
   *  503, …), with the server's code and message when it gave them. */
  | { kind: "refused"; status: number; code: string | null; message: string }
  | { kind: "unreachable" };

/** Asks a ticket for a stream, with the token (none: open mode). Never throws. */
export async function requestTicket(fetchImpl: typeof fetch, token: string | undefined): Promise<TicketAnswer> {
  let response: Response;
  try {
    response = await fetchImpl(STREAM_TICKETS, {
      method: "POST",
      headers: token ? { Accept: "application/json", Authorization: `Bearer ${token}` } : { Accept: "application/json" },
      cache: "no-store",
    });
  } catch {
    return { kind: "unreachable" };
  }
  if (response.status === 404) return { kind: "unsupported" };
  const record = recordOf(await jsonOrNull(response));
  if (response.ok && typeof record.ticket === "string" && record.ticket !== "") {
    const expiresIn = typeof record.expires_in === "number" ? record.expires_in : null;
    return { kind: "ticket", ticket: record.ticket, expiresIn };
  }
  const error = recordOf(record.error);
  return {
    kind: "refused",
    status: response.status,
    code: typeof error.code === "string" ? error.code : null,
    message: typeof error.message === "string" ? error.message : response.ok ? "the answer holds no ticket" : "",
  };
}

/** What a failed ticket request means, for a state line; `refused` when it will not be served as
 *  things stand (the token was refused). */
export function describeTicketFailure(answer: Exclude<TicketAnswer, { kind: "ticket" | "unsupported" }>): {
  detail: string;
  refused: boolean;
} {
  if (answer.kind === "unreachable") return { detail: "the service is not reachable", refused: false };
  const code = answer.code ?? String(answer.status);
  if (answer.status === 401) {
    return { detail: `the token was refused: ${answer.message || "a token is required"} (${code})`, refused: true };
  }
  if (answer.status === 403) return { detail: `the token was not accepted (${code})`, refused: true };
  return { detail: `a stream ticket was refused: ${answer.status}${answer.code ? ` ${answer.code}` : ""}`, refused: false };
}
