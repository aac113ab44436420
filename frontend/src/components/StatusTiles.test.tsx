// @vitest-environment jsdom
import { cleanup, render, screen, within } from "@testing-library/react";
import { afterEach, describe, expect, it } from "vitest";
import { StatusTiles } from "./StatusTiles";

afterEach(cleanup);

describe("StatusTiles", () => {
  it("shows the counts, and a status the filter hides as unknown", () => {
    render(
      <StatusTiles
        filter="shipped"
        counts={{ byStatus: { pending: null, shipped: 1234, delivered: null }, total: 1234, held: 500 }}
      />,
    );
    const tiles = screen.getByRole("region", { name: "Orders per status" });
    expect(within(tiles).getByTestId("count-total").textContent).toBe("1,234");
    expect(within(tiles).getByText("In view")).toBeDefined();
    expect(within(tiles).getByTestId("count-shipped").dataset.count).toBe("1234");
    const pending = within(tiles).getByTestId("count-pending");
    expect(pending.textContent).toBe("–");
    expect(pending.parentElement?.title).toBe("Not in this view (filtered to shipped)");
  });
});
