// @vitest-environment jsdom
import { cleanup, render, screen, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, describe, expect, it, vi } from "vitest";
import { order } from "../liveFixtures";
import { type Conflict, ConflictPanel } from "./ConflictPanel";

afterEach(cleanup);

const current = order(7, 3, "shipped", { customer_name: "Grace Hopper", product_name: "Compiler" });

function renderPanel(conflict: Conflict, busy = false) {
  const onReapply = vi.fn();
  const onDiscard = vi.fn();
  render(<ConflictPanel conflict={conflict} busy={busy} onReapply={onReapply} onDiscard={onDiscard} />);
  return { onReapply, onDiscard, user: userEvent.setup() };
}

describe("ConflictPanel", () => {
  it("shows the server's order next to this tab's edit, and takes the focus", () => {
    renderPanel({ id: 7, attempted: { kind: "update", changes: { status: "delivered" } }, baseVersion: 2, current });

    const panel = screen.getByRole("alertdialog", { name: "Order #7 changed before your edit was saved" });
    expect(document.activeElement).toBe(within(panel).getByRole("heading", { level: 2 }));
    expect(panel.textContent).toContain("You started from version 2; the server now has version 3.");
    const side = (title: string) =>
      within(within(panel).getByRole("heading", { name: title }).parentElement as HTMLElement)
        .getAllByRole("definition")
        .map((dd) => dd.textContent);
    const server = side("Now on the server");
    const mine = side("Your change");
    expect(server.slice(0, 3)).toEqual(["Grace Hopper", "Compiler", "Shipped"]);
    expect(mine).toEqual(["Delivered"]);
  });

  it("re-applies the change to the current version, or keeps the server's", async () => {
    const { onReapply, onDiscard, user } = renderPanel({
      id: 7,
      attempted: { kind: "update", changes: { customer_name: "Ada" } },
      baseVersion: 2,
      current,
    });
    await user.click(screen.getByRole("button", { name: "Re-apply my change to v3" }));
    expect(onReapply).toHaveBeenCalledOnce();
    await user.click(screen.getByRole("button", { name: "Keep the server's version" }));
    expect(onDiscard).toHaveBeenCalledOnce();
  });

  it("offers to delete the current version after a refused delete", () => {
    renderPanel({ id: 7, attempted: { kind: "delete" }, baseVersion: 2, current });
    expect(screen.getByRole("alertdialog").textContent).toContain("Delete the order.");
    expect(screen.getByRole("button", { name: "Delete version 3" })).toBeDefined();
  });

  it("takes no second click while the re-apply is under way", async () => {
    const { onReapply, onDiscard, user } = renderPanel(
      { id: 7, attempted: { kind: "delete" }, baseVersion: 2, current },
      true,
    );
    await user.click(screen.getByRole("button", { name: "Delete version 3" }));
    await user.click(screen.getByRole("button", { name: "Keep the server's version" }));
    expect(onReapply).not.toHaveBeenCalled();
    expect(onDiscard).not.toHaveBeenCalled();
  });
});
