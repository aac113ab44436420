// @vitest-environment jsdom
import { cleanup, render, screen } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, describe, expect, it, vi } from "vitest";
import { FilterBar } from "./FilterBar";

afterEach(cleanup);

describe("FilterBar", () => {
  it("chooses a status, or all, and searches", async () => {
    const onFilter = vi.fn();
    const onQuery = vi.fn();
    render(<FilterBar filter={null} onFilter={onFilter} query="" onQuery={onQuery} />);
    const user = userEvent.setup();
    expect(screen.getByRole<HTMLInputElement>("radio", { name: "All" }).checked).toBe(true);

    await user.click(screen.getByRole("radio", { name: "Delivered" }));
    expect(onFilter).toHaveBeenCalledExactlyOnceWith("delivered");
    await user.type(screen.getByRole("searchbox", { name: "Search orders" }), "a");
    expect(onQuery).toHaveBeenCalledExactlyOnceWith("a");
  });
});
