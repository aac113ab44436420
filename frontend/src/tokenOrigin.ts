// Where the dashboard's token comes from: the URL fragment (never sent to a server), then this tab's
// sessionStorage (docs/protocol.md, "The dashboard's and /live.html's tokens").
//
// - `#token=<token>`: a fixed token. `#token-url=<url>&grant=<grant>`: a refreshable source.
// Both are kept in sessionStorage, per tab, so that two tabs can hold two identities; a token kept
// in localStorage by an older dashboard is still read when this tab holds none (never written).

export const TOKEN_KEY = "orders-live-token";
export const TOKEN_URL_KEY = "orders-live-token-url";
export const GRANT_KEY = "orders-live-grant";

/** Where the token comes from. */
export type TokenOrigin =
  | { kind: "none" }
  | { kind: "fixed"; token: string }
  | { kind: "url"; url: string; grant: string | null };

export const NO_TOKEN: TokenOrigin = { kind: "none" };

/** What the fragment says about tokens (`given`, null: nothing), and the fragment without those keys
 *  (`rest`, without "#"); `found` when there was a key to take out of the address bar. */
export function readFragment(hash: string): { given: TokenOrigin | null; rest: string; found: boolean } {
  const params = new URLSearchParams(hash.startsWith("#") ? hash.slice(1) : hash);
  const token = params.get("token");
  const url = params.get("token-url");
  const grant = params.get("grant");
  let given: TokenOrigin | null = null;
  if (url) given = { kind: "url", url, grant: grant || null };
  else if (token) given = { kind: "fixed", token };
  const found = params.has("token") || params.has("token-url") || params.has("grant");
  for (const key of ["token", "token-url", "grant"]) params.delete(key);
  return { given, rest: params.toString(), found };
}

/** The part of the Web Storage API used here (a Map-backed fake in tests). */
export interface KeyStore {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

function attempt<T>(fn: () => T, otherwise: T): T {
  try {
    return fn();
  } catch {
    return otherwise; // storage turned off: the token lives as long as the page
  }
}

/** Keeps a token origin given in the fragment in this tab's storage (replacing the other kind). */
export function keepOrigin(origin: TokenOrigin, session: KeyStore | null): void {
  if (session === null) return;
  attempt(() => {
    for (const key of [TOKEN_KEY, TOKEN_URL_KEY, GRANT_KEY]) session.removeItem(key);
    if (origin.kind === "fixed") session.setItem(TOKEN_KEY, origin.token);
    if (origin.kind === "url") {
      session.setItem(TOKEN_URL_KEY, origin.url);
      if (origin.grant !== null) session.setItem(GRANT_KEY, origin.grant);
    }
  }, undefined);
}

/** The token origin this tab holds; without one, a token an older version kept in `legacy`
 *  (localStorage); without that, none. */
export function storedOrigin(session: KeyStore | null, legacy: KeyStore | null): TokenOrigin {
  const read = (store: KeyStore | null, key: string) => (store === null ? null : attempt(() => store.getItem(key), null));
  const url = read(session, TOKEN_URL_KEY);
  if (url) return { kind: "url", url, grant: read(session, GRANT_KEY) || null };
  const token = read(session, TOKEN_KEY) || read(legacy, TOKEN_KEY);
  return token ? { kind: "fixed", token } : NO_TOKEN;
}

/** The origin for a page whose fragment is `hash`: the one it gives (kept in `session`), or the one
 *  kept. `rest` and `found` as in readFragment. */
export function originFor(
  hash: string,
  session: KeyStore | null,
  legacy: KeyStore | null,
): { origin: TokenOrigin; rest: string; found: boolean } {
  const { given, rest, found } = readFragment(hash);
  if (given !== null) keepOrigin(given, session);
  return { origin: given ?? storedOrigin(session, legacy), rest, found };
}
