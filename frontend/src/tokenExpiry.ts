// A JWT's expiry, read without verifying it (the service verifies), and when to ask for the next
// token: at 80 % of its remaining lifetime, and never more than a minute before its `exp`. A token
// that is not a JWT (a shared token) never expires.

/** The payload of a JWT (three base64url parts, the middle one a JSON object), not verified; null
 *  for anything else (a shared token). */
export function jwtClaims(token: string): Record<string, unknown> | null {
  const parts = token.split(".");
  if (parts.length !== 3 || parts[1] === "") return null;
  try {
    const base64 = parts[1].replace(/-/g, "+").replace(/_/g, "/");
    const binary = atob(base64 + "=".repeat((4 - (base64.length % 4)) % 4));
    const claims: unknown = JSON.parse(new TextDecoder().decode(Uint8Array.from(binary, (c) => c.charCodeAt(0))));
    return typeof claims === "object" && claims !== null && !Array.isArray(claims) ? (claims as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

const seconds = (value: unknown): number | null => (typeof value === "number" && Number.isFinite(value) ? value : null);

/** When the token expires, in ms since the epoch: its `exp`; null when it does not (not a JWT, no exp). */
export function tokenExpiry(token: string | undefined): number | null {
  if (token === undefined) return null;
  const exp = seconds(jwtClaims(token)?.exp);
  return exp === null ? null : exp * 1_000;
}

/** Whether the token is good for at least `marginMs` more (a token that does not expire always is). */
export function lastsBeyond(token: string | undefined, now: number, marginMs = 5_000): boolean {
  if (token === undefined) return false;
  const expiry = tokenExpiry(token);
  return expiry === null || expiry > now + marginMs;
}

/** The refresh schedule: at `share` of the remaining lifetime, at most `maxLeadMs` before `exp`,
 *  never sooner than `minDelayMs` after the token came. */
export interface RefreshSchedule {
  share: number;
  maxLeadMs: number;
  minDelayMs: number;
}

export const TOKEN_REFRESH: RefreshSchedule = { share: 0.8, maxLeadMs: 60_000, minDelayMs: 1_000 };


/**
 * How long after `now` (when the token came) to ask for the next one; null for a token that does
 * not expire. The remaining lifetime is `exp - now`; when that cannot be right (this clock is ahead
 * of the issuer's by more than the lifetime, or behind it: the token seems to live longer than
 * `exp - iat`), it is `exp - iat`. The refresh comes at `share` of it, but never more than
 * `maxLeadMs` before the end: a 300 s token at 240 s, a 1 h token 60 s before its end.
 */
export function refreshDelayMs(token: string, now: number, schedule: RefreshSchedule = TOKEN_REFRESH): number | null {
  const claims = jwtClaims(token);
  const exp = seconds(claims?.exp);
  if (exp === null) return null;
  let remaining = exp * 1_000 - now;
  const iat = seconds(claims?.iat);
  if (iat !== null && exp > iat) {
    const lifetime = (exp - iat) * 1_000;
    if (remaining <= 0 || remaining > lifetime) remaining = lifetime;
  }
  const lead = Math.min(remaining * (1 - schedule.share), schedule.maxLeadMs);
  return Math.max(schedule.minDelayMs, Math.round(remaining - lead));
}
