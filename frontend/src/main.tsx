import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { io } from "socket.io-client";
import { App } from "./App";
import { AgentFeed } from "./agentFeed";
import { OrdersApi } from "./api";
import { LiveStore } from "./liveStore";
import { isStatus } from "./protocol";
import "./styles.css";

const params = new URLSearchParams(window.location.search);
const status = params.get("status");

// A service with access tokens: open the dashboard at /#token=<token> once. The token is kept
// in this browser's storage and taken out of the address bar (a fragment never reaches a server log).
const fragment = new URLSearchParams(window.location.hash.slice(1));
const given = fragment.get("token");
if (given) {
  window.localStorage.setItem("orders-live-token", given);
  window.history.replaceState(null, "", window.location.pathname + window.location.search);
}
const token = given ?? window.localStorage.getItem("orders-live-token") ?? undefined;
// A token given later (the refusal banner says to open /#token=<token>) changes the hash only,
// which does not load the page again: take it up the same way.
window.addEventListener("hashchange", () => {
  if (new URLSearchParams(window.location.hash.slice(1)).get("token")) window.location.reload();
});

// Same origin as the page; WebSocket only (no long-polling, so no sticky sessions needed).
const socket = io({
  auth: token ? { token } : undefined,
  transports: ["websocket"],
  reconnection: true,
  reconnectionDelay: 300,
  reconnectionDelayMax: 3000,
  autoConnect: false,
});
const store = new LiveStore(socket, new OrdersApi("", undefined, token), { filter: isStatus(status) ? status : null });
socket.connect();

// The agent's action log, over Server-Sent Events. Opened once the orders feed is in: with a
// tight connection cap (max_connections) the orders come first.
const agent = new AgentFeed({ open: (url) => new EventSource(url), token });
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
