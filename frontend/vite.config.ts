import react from "@vitejs/plugin-react";
import { defineConfig } from "vitest/config";

// The service serves dist/index.html at / and dist/assets at /assets (same origin as the API).
// `npm run dev` proxies the API and Socket.IO to a service on :8080.
export default defineConfig({
  plugins: [react()],
  build: {
    outDir: "dist",
    assetsDir: "assets",
    emptyOutDir: true,
    sourcemap: true,
    target: "es2022",
  },
  server: {
    proxy: {
      "/api": "http://127.0.0.1:8080",
      "/socket.io": { target: "ws://127.0.0.1:8080", ws: true },
    },
  },
  test: {
    // Node by default; a component test sets jsdom in its first line (`// @vitest-environment jsdom`).
    environment: "node",
    include: ["src/**/*.test.{ts,tsx}"],
  },
});
