// @vitest-environment jsdom
import { act, cleanup, render, renderHook, screen } from "@testing-library/react";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { Notices, useNotices } from "./Notices";

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  cleanup();
  vi.useRealTimers();
});

describe("useNotices", () => {
  it("shows a notice until it times out: 6 s, or 12 s for an error", () => {
    const { result } = renderHook(() => useNotices());
    act(() => {
      result.current.notify("info", "Order #1 deleted.");
      result.current.notify("error", "Order #2 was not saved.");
    });
    expect(result.current.notices.map((n) => n.text)).toEqual(["Order #1 deleted.", "Order #2 was not saved."]);
    act(() => vi.advanceTimersByTime(6_000));
    expect(result.current.notices.map((n) => n.text)).toEqual(["Order #2 was not saved."]);
    act(() => vi.advanceTimersByTime(6_000));
    expect(result.current.notices).toEqual([]);
  });

  it("keeps the 4 newest, each with its own id, and each instance counts its own", () => {
    const first = renderHook(() => useNotices());
    const second = renderHook(() => useNotices());
    act(() => {
      for (const n of [1, 2, 3, 4, 5]) first.result.current.notify("info", `n${n}`);
      second.result.current.notify("info", "other");
    });
    const shown = first.result.current.notices;
    expect(shown.map((n) => n.text)).toEqual(["n2", "n3", "n4", "n5"]);
    expect(new Set(shown.map((n) => n.id)).size).toBe(4);
    expect(second.result.current.notices[0].id).toBe(1);
  });

  it("clears a dismissed notice's timer, and every timer on unmount", () => {
    const { result, unmount } = renderHook(() => useNotices());
    act(() => {
      result.current.notify("info", "a");
      result.current.notify("error", "b");
    });
    expect(vi.getTimerCount()).toBe(2);
    act(() => result.current.dismiss(result.current.notices[0].id));
    expect(result.current.notices.map((n) => n.text)).toEqual(["b"]);
    expect(vi.getTimerCount()).toBe(1);
    unmount();
    expect(vi.getTimerCount()).toBe(0);
  });
});

describe("Notices", () => {
  it("shows an error as an alert, other notices as a status, each with a Dismiss button", () => {
    const onDismiss = vi.fn();
    render(
      <Notices
        notices={[
          { id: 1, tone: "error", text: "Order #2 was not saved." },
          { id: 2, tone: "info", text: "Order #1 deleted." },
        ]}
        onDismiss={onDismiss}
      />,
    );
    expect(screen.getByRole("alert").textContent).toContain("Order #2 was not saved.");
    expect(screen.getByRole("status").textContent).toContain("Order #1 deleted.");
    act(() => screen.getAllByRole("button", { name: "Dismiss" })[1].click());
    expect(onDismiss).toHaveBeenCalledExactlyOnceWith(2);
  });
});
