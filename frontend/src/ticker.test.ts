// The shared ticker of the relative times: one interval while anyone reads it, none otherwise.

import { describe, expect, it } from "vitest";
import { relativeTime } from "./format";
import { type Interval, Ticker } from "./ticker";

function fakeInterval() {
  const running = new Map<number, () => void>();
  let handles = 0;
  const interval: Interval = {
    set: (fn) => {
      handles += 1;
      running.set(handles, fn);
      return handles;
    },
    clear: (handle) => running.delete(handle as number),
  };
  const tick = () => [...running.values()].forEach((fn) => fn());
  return { interval, running, tick };
}

const T0 = Date.parse("2026-11-24T01:00:00.000Z");

describe("Ticker", () => {
  it("runs one interval for all its readers, and none once the last one left", () => {
    let now = T0;
    const { interval, running, tick } = fakeInterval();
    const ticker = new Ticker(10_000, () => now, interval);
    const heard: string[] = [];
    const stops = ["a", "b", "c"].map((name) => ticker.subscribe(() => heard.push(name)));
    expect(running.size).toBe(1);
    now += 10_000;
    tick();
    expect(ticker.now()).toBe(T0 + 10_000);
    expect(heard).toEqual(["a", "b", "c"]);
    stops[0]();
    stops[1]();
    expect(ticker.running).toBe(true);
    stops[2]();
    expect(ticker.running).toBe(false);
    expect(running.size).toBe(0);
  });

  it("is stable between ticks, and current again when a reader comes back", () => {
    let now = T0;
    const { interval } = fakeInterval();
    const ticker = new Ticker(10_000, () => now, interval);
    now += 5_000;
    expect(ticker.now()).toBe(T0); // no tick yet: the same value for every render
    ticker.subscribe(() => {})();
    now += 60_000;
    ticker.subscribe(() => {});
    expect(ticker.now()).toBe(T0 + 65_000);
  });

  it("a tick changes the text of a recent time only: an older cell keeps its text (no re-render)", () => {
    let now = T0;
    const { interval, tick } = fakeInterval();
    const ticker = new Ticker(10_000, () => now, interval);
    ticker.subscribe(() => {});
    const recent = "2026-11-24T00:59:30.000Z";
    const old = "2026-11-23T22:00:00.000Z";
    const before = [relativeTime(recent, ticker.now()), relativeTime(old, ticker.now())];
    now += 10_000;
    tick();
    const after = [relativeTime(recent, ticker.now()), relativeTime(old, ticker.now())];
    expect(before).toEqual(["30 s ago", "3 h ago"]);
    expect(after).toEqual(["40 s ago", "3 h ago"]);
  });
});
