// The tokens and the shared rules first: the components' own sheets come after them and win a tie.
import "./styles.css";
import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { io } from "socket.io-client";
import { App } from "./App";
import { AgentFeed } from "./agentFeed";
import { OrdersApi } from "./api";
import { LiveStore } from "./liveStore";
import { isStatus } from "./protocol";
import { type KeyStore, originFor, readFragment } from "./tokenOrigin";
import { TokenSource } from "./tokenSource";

const params = new URLSearchParams(window.location.search);
const status = params.get("status");

/** window.sessionStorage / localStorage, or null where storage is turned off (reading it throws). */
function storage(which: "sessionStorage" | "localStorage"): KeyStore | null {
  try {
    return window[which];
  } catch {
    return null;
  }
}

// A service with access tokens: open the dashboard at /#token=<token> (a fixed token) or at
// /#token-url=<url>&grant=<grant> (a token URL, asked for a new token before each one expires).
// What the fragment gives is kept in this tab's sessionStorage (two tabs, two identities) and
// taken out of the address bar (a fragment never reaches a server log); see tokenSource.ts.
const { origin, rest, found } = originFor(window.location.hash, storage("sessionStorage"), storage("localStorage"));
if (found) {
  window.history.replaceState(null, "", window.location.pathname + window.location.search + (rest ? `#${rest}` : ""));
}
const tokens = new TokenSource(origin);
// A token given later (the refusal banner says to open /#token=<token>) changes the hash only,
// which does not load the page again: take it up the same way.
window.addEventListener("hashchange", () => {
  if (readFragment(window.location.hash).given !== null) window.location.reload();
});

// Same origin as the page; WebSocket only (no long-polling, so no sticky sessions needed). The
// store keeps `auth` up to date with the token source.
const socket = io({
  transports: ["websocket"],
  reconnection: true,
  reconnectionDelay: 300,
  reconnectionDelayMax: 3000,
  autoConnect: false,
});
const store = new LiveStore(socket, new OrdersApi("", undefined, tokens), {
  filter: isStatus(status) ? status : null,
  tokens,
});
tokens.start();
store.start();

// The agent's action log, over Server-Sent Events (with a stream ticket per stream when there is
// a token). Opened once the orders feed is in: with a tight connection cap the orders come first.
const agent = new AgentFeed({ open: (url) => new EventSource(url), tokens });
const stopWaiting = store.listen(() => {
  if (!store.getState().connected) return;
  stopWaiting();
  agent.start();
});

createRoot(document.getElementById("root") as HTMLElement).render(
  <StrictMode>
    <App store={store} agent={agent} serverValidationOnly={params.get("validation") === "server"} />
  </StrictMode>,
);
