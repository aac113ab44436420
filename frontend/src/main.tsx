import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { io } from "socket.io-client";
import { App } from "./App";
import { OrdersApi } from "./api";
import { LiveStore } from "./liveStore";
import { isStatus } from "./protocol";
import "./styles.css";

const params = new URLSearchParams(window.location.search);
const status = params.get("status");

// Same origin as the page; WebSocket only (no long-polling, so no sticky sessions needed).
const socket = io({
  transports: ["websocket"],
  reconnection: true,
  reconnectionDelay: 300,
  reconnectionDelayMax: 3000,
  autoConnect: false,
});
const store = new LiveStore(socket, new OrdersApi(), { filter: isStatus(status) ? status : null });
socket.connect();

createRoot(document.getElementById("root") as HTMLElement).render(
  <StrictMode>
    <App store={store} serverValidationOnly={params.get("validation") === "server"} />
  </StrictMode>,
);
