// @vitest-environment jsdom
// The table's relative times read one shared ticker: a tick re-renders only the cells whose text
// changed, and the ticker stops once no cell is mounted.

import { act, cleanup, render, screen } from "@testing-library/react";
import { Profiler } from "react";
import { afterEach, describe, expect, it } from "vitest";
import { type Interval, Ticker } from "../../ticker";
import { RelativeTime } from "./RelativeTime";

afterEach(cleanup);

const T0 = Date.parse("2026-11-24T01:00:00.000Z");

function fakeTicker() {
  let now = T0;
  const running = new Set<() => void>();
  const interval: Interval = {
    set: (fn) => (running.add(fn), fn),
    clear: (fn) => running.delete(fn as () => void),
  };
  const ticker = new Ticker(10_000, () => now, interval);
  const advance = (ms: number) => {
    now += ms;
    act(() => running.forEach((fn) => fn()));
  };
  return { ticker, advance, running };
}

describe("RelativeTime", () => {
  it("a tick re-renders the cells whose text changed, not the others", () => {
    const { ticker, advance } = fakeTicker();
    const renders = new Map<string, number>();
    const counted = (id: string) => () => renders.set(id, (renders.get(id) ?? 0) + 1);
    const { unmount } = render(
      <>
        <Profiler id="recent" onRender={counted("recent")}>
          <RelativeTime iso="2026-11-24T00:59:30.000Z" ticker={ticker} />
        </Profiler>
        <Profiler id="old" onRender={counted("old")}>
          <RelativeTime iso="2026-11-23T22:00:00.000Z" ticker={ticker} />
        </Profiler>
      </>,
    );
    expect(screen.getByText("30 s ago").getAttribute("datetime")).toBe("2026-11-24T00:59:30.000Z");
    expect(screen.getByText("3 h ago")).toBeTruthy();
    renders.clear();

    advance(10_000);
    expect(screen.getByText("40 s ago")).toBeTruthy();
    expect(renders.get("recent")).toBe(1);
    expect(renders.get("old")).toBeUndefined(); // still "3 h ago": not rendered again
    unmount();
    expect(ticker.running).toBe(false);
  });
});
