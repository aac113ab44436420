// @vitest-environment jsdom
import { act, cleanup, render, screen, within } from "@testing-library/react";
import { afterEach, describe, expect, it } from "vitest";
import { type AgentEventSource, AgentFeed } from "../agentFeed";
import { AgentPanel } from "./AgentPanel";

afterEach(cleanup);

type Listener = (event: Event) => void;

/** The stream the panel's feed reads: the test sends its events. */
class FakeStream implements AgentEventSource {
  readyState = 0;
  private readonly handlers = new Map<string, Listener[]>();
  addEventListener(type: string, listener: Listener) {
    this.handlers.set(type, [...(this.handlers.get(type) ?? []), listener]);
  }
  close() {
    this.readyState = 2;
  }
  send(type: string, data?: unknown) {
    const event = data === undefined ? new Event(type) : new MessageEvent(type, { data: JSON.stringify(data) });
    act(() => {
      for (const listener of this.handlers.get(type) ?? []) listener(event);
    });
  }
  /** The connection drops; the browser will retry by itself. */
  drop() {
    this.readyState = 0;
    this.send("error");
  }
}

const NOW = Date.parse("2026-12-01T12:00:30.000Z");

const record = (seq: number, extra: Record<string, unknown> = {}) => ({
  seq,
  kind: "action",
  trigger: "shipped",
  order_id: 40 + seq,
  order_version: 2,
  tool: "notify_customer",
  arguments: {},
  message: `Told customer ${seq} their order shipped.`,
  reason: null,
  model: "offline-planner",
  recorded_at: "2026-12-01T12:00:00.000Z",
  ...extra,
});

function renderPanel() {
  let stream: FakeStream | null = null;
  const feed = new AgentFeed({
    open: () => (stream = new FakeStream()),
    now: () => NOW,
    setTimer: () => undefined,
    clearTimer: () => undefined,
    random: () => 0.5,
  });
  render(<AgentPanel feed={feed} now={NOW} />);
  feed.start();
  if (stream === null) throw new Error("the feed opened no stream");
  const opened: FakeStream = stream;
  opened.readyState = 1;
  opened.send("open");
  return { stream: opened, panel: screen.getByRole("region", { name: "Agent" }) };
}

const items = (panel: HTMLElement) =>
  within(within(panel).getByRole("list", { name: "Agent actions, newest first" })).getAllByRole("listitem");

describe("AgentPanel", () => {
  it("loads the log, then shows it newest first and says it is live", () => {
    const { stream, panel } = renderPanel();
    expect(panel.textContent).toContain("Loading the agent's actions…");

    stream.send("action", record(1));
    stream.send("action", record(2, { kind: "refusal", tool: null, message: null, reason: "Order 42 changed again." }));
    stream.send("caught_up", { seq: 2 });

    const shown = items(panel);
    expect(shown.map((item) => within(item).getByTestId("agent-text").textContent)).toEqual([
      "Order 42 changed again.",
      "Told customer 1 their order shipped.",
    ]);
    expect(shown.map((item) => within(item).getByTestId("agent-kind").textContent)).toEqual(["Refused", "Action"]);
    expect(within(shown[1]).getByText("30 s ago", { exact: false })).toBeDefined();
    expect(within(panel).getByTestId("agent-state").textContent).toContain("Live");
  });

  it("announces a record that comes in once live, and not the ones it loaded", () => {
    const { stream, panel } = renderPanel();
    stream.send("action", record(1));
    stream.send("caught_up", { seq: 1 });
    const announcer = within(panel).getByTestId("agent-announcer");
    expect(announcer.textContent).not.toContain("Told customer 1");

    stream.send("action", record(2));
    expect(announcer.textContent).toContain("Told customer 2 their order shipped.");
    expect(items(panel)).toHaveLength(2);
  });

  it("says when the log is empty, and when the connection is lost", () => {
    const { stream, panel } = renderPanel();
    stream.send("caught_up", { seq: 0 });
    expect(panel.textContent).toContain("No agent actions recorded yet.");

    stream.drop();
    expect(within(panel).getByTestId("agent-state").textContent).toContain("Reconnecting");
    expect(within(panel).getByTestId("agent-announcer").textContent).toBe("Agent log: connection lost, reconnecting.");
  });
});
