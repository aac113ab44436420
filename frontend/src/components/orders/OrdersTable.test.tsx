// @vitest-environment jsdom
// The table's highlight: the rows a change was applied to fade a ::after (Web Animations API),
// once per change (not when they re-render or move), and never with prefers-reduced-motion.

import { cleanup, render } from "@testing-library/react";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { order } from "../../liveFixtures";
import type { Row } from "../../liveState";
import { OrdersTable, type OrdersTableProps } from "./OrdersTable";
import { withViewport } from "./viewportFixture";

withViewport();

const animate = vi.fn((..._args: unknown[]) => ({ addEventListener: () => {} }));
let reduce = false;

beforeEach(() => {
  animate.mockClear();
  reduce = false;
  // jsdom has neither the Web Animations API nor media queries.
  Element.prototype.animate = animate as unknown as Element["animate"];
  window.matchMedia = ((query: string) => ({ matches: reduce && query === "(prefers-reduced-motion: reduce)" })) as typeof window.matchMedia;
});
afterEach(cleanup);

const noop = () => {};
function props(rows: readonly Row[]): OrdersTableProps {
  return {
    rows,
    editingId: null,
    confirmingId: null,
    onEdit: noop,
    onConfirmDelete: noop,
    onSave: async () => null,
    onDelete: noop,
    serverValidationOnly: false,
    caption: "Orders",
  };
}

const rows = (): Row[] => [
  { order: order(3), pending: null, flash: { serial: 7, at: Date.now() } },
  { order: order(2), pending: null, flash: undefined },
  { order: order(1), pending: null, flash: { serial: 1, at: Date.now() - 60_000 } }, // long ago
];

describe("OrdersTable highlight", () => {
  it("fades the ::after of the row of a fresh change, once", () => {
    const shown = rows();
    const { container, rerender } = render(<OrdersTable {...props(shown)} />);
    expect(animate).toHaveBeenCalledTimes(1);
    const [keyframes, timing] = animate.mock.calls[0];
    expect(keyframes).toEqual([{ opacity: 1 }, { opacity: 0 }]);
    expect(timing).toMatchObject({ pseudoElement: "::after" });
    // The row's first cell's ::after: a layer over the row that does not change its size.
    expect(animate.mock.contexts[0]).toBe(container.querySelector('tr[data-order-id="3"] > td:first-child'));

    // Re-rendered and moved (same change): no new highlight.
    rerender(<OrdersTable {...props([shown[1], shown[0], shown[2]])} />);
    expect(animate).toHaveBeenCalledTimes(1);
  });

  it("highlights nothing with prefers-reduced-motion", () => {
    reduce = true;
    render(<OrdersTable {...props(rows())} />);
    expect(animate).not.toHaveBeenCalled();
  });
});

describe("OrdersTable rows", () => {
  it("puts only the rows in view in the document, and says how many there are", () => {
    const many: Row[] = Array.from({ length: 5_000 }, (_, i) => ({ order: order(5_000 - i), pending: null, flash: undefined }));
    const { container } = render(<OrdersTable {...props(many)} />);
    expect(container.querySelector("table")?.getAttribute("aria-rowcount")).toBe("5001");
    const shown = container.querySelectorAll("tbody tr[data-order-id]");
    expect(shown.length).toBeGreaterThan(10); // an 800 px box of 46 px rows, and a few more
    expect(shown.length).toBeLessThan(40);
    expect(shown[0].getAttribute("data-order-id")).toBe("5000");
    expect(shown[0].getAttribute("aria-rowindex")).toBe("2"); // the header row is 1
  });
});
