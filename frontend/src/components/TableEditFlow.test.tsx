// @vitest-environment jsdom
// Editing a row of the orders table, as a person does it: Edit, change, Save or Cancel, with the
// focus handed back to the row's Edit button (useRowEditing, as App wires it).
import { cleanup, render, screen, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { order } from "../liveFixtures";
import type { OrderEdit, Row } from "../liveState";
import type { WriteOutcome } from "../liveStore";
import type { Order } from "../protocol";
import { useRowEditing } from "../useRowEditing";
import { OrdersTable } from "./orders/OrdersTable";
import { withViewport } from "./orders/viewportFixture";

withViewport();

beforeEach(() => {
  // jsdom has neither the Web Animations API nor media queries (the highlight uses both).
  Element.prototype.animate = vi.fn() as unknown as Element["animate"];
  window.matchMedia = (() => ({ matches: false })) as unknown as typeof window.matchMedia;
});
afterEach(cleanup);

type Save = (order: Order, changes: OrderEdit) => Promise<WriteOutcome>;

/** The table with App's row editing: a save that succeeds closes the edit. */
function EditableTable({ rows, save }: { rows: readonly Row[]; save: Save }) {
  const editing = useRowEditing();
  const onSave = async (base: Order, changes: OrderEdit) => {
    const outcome = await save(base, changes);
    if (outcome.ok) editing.closeEdit();
    return outcome;
  };
  return (
    <OrdersTable
      rows={rows}
      editingId={editing.editingId}
      confirmingId={editing.confirmingId}
      onEdit={editing.startEdit}
      onConfirmDelete={editing.confirmDelete}
      onSave={onSave}
      onDelete={() => undefined}
      serverValidationOnly={false}
      caption="Orders"
      registerEditButton={editing.registerEditButton}
    />
  );
}

const rowOf = (o: Order): Row => ({ order: o, pending: null, flash: undefined });
const ada = order(2, 1, "pending", { customer_name: "Ada", product_name: "Lamp" });

function renderTable(save: Save = vi.fn<Save>(async () => ({ ok: true, order: null }))) {
  const view = render(<EditableTable rows={[rowOf(order(3)), rowOf(ada)]} save={save} />);
  return { ...view, save, user: userEvent.setup() };
}

describe("editing a row", () => {
  it("opens a form with the order's fields, focused on the first, and saves only what changed", async () => {
    const save = vi.fn<Save>(async () => ({ ok: true, order: null }));
    const { user } = renderTable(save);
    await user.click(screen.getByRole("button", { name: "Edit order 2" }));

    const form = screen.getByRole("form", { name: "Edit order 2" });
    const customer = within(form).getByLabelText<HTMLInputElement>("Customer");
    expect(customer.value).toBe("Ada");
    expect(within(form).getByLabelText<HTMLInputElement>("Product").value).toBe("Lamp");
    expect(document.activeElement).toBe(customer);

    await user.selectOptions(within(form).getByLabelText("Status"), "Shipped");
    await user.click(within(form).getByRole("button", { name: "Save" }));

    expect(save).toHaveBeenCalledExactlyOnceWith(ada, { status: "shipped" });
    expect(screen.queryByRole("form", { name: "Edit order 2" })).toBeNull();
    expect(document.activeElement).toBe(screen.getByRole("button", { name: "Edit order 2" }));
  });

  it("shows a field's problem and does not save", async () => {
    const { save, user } = renderTable();
    await user.click(screen.getByRole("button", { name: "Edit order 2" }));
    const form = screen.getByRole("form", { name: "Edit order 2" });
    await user.clear(within(form).getByLabelText("Customer"));
    await user.click(within(form).getByRole("button", { name: "Save" }));

    const customer = within(form).getByLabelText("Customer");
    expect(customer.getAttribute("aria-invalid")).toBe("true");
    expect(document.getElementById(customer.getAttribute("aria-describedby") ?? "")?.textContent).toBe(
      "Required: enter at least 1 character.",
    );
    expect(save).not.toHaveBeenCalled();
  });

  it("shows the server's refusal of a field on that field, and stays open", async () => {
    const save = vi.fn<Save>(async () => ({
      ok: false,
      status: 422,
      message: "Not valid.",
      fields: { product_name: "Not sold any more." },
    }));
    const { user } = renderTable(save);
    await user.click(screen.getByRole("button", { name: "Edit order 2" }));
    const form = screen.getByRole("form", { name: "Edit order 2" });
    await user.type(within(form).getByLabelText("Product"), " shade");
    await user.click(within(form).getByRole("button", { name: "Save" }));

    expect(save).toHaveBeenCalledExactlyOnceWith(ada, { product_name: "Lamp shade" });
    const product = within(form).getByLabelText("Product");
    expect(document.getElementById(product.getAttribute("aria-describedby") ?? "")?.textContent).toBe(
      "Not sold any more.",
    );
  });

  it("cancels with Escape or Cancel, saving nothing, and gives the focus back to the Edit button", async () => {
    const { save, user } = renderTable();
    await user.click(screen.getByRole("button", { name: "Edit order 2" }));
    await user.keyboard("{Escape}");
    expect(screen.queryByRole("form", { name: "Edit order 2" })).toBeNull();
    expect(document.activeElement).toBe(screen.getByRole("button", { name: "Edit order 2" }));

    await user.click(screen.getByRole("button", { name: "Edit order 3" }));
    await user.click(screen.getByRole("button", { name: "Cancel" }));
    expect(document.activeElement).toBe(screen.getByRole("button", { name: "Edit order 3" }));
    expect(save).not.toHaveBeenCalled();
  });

  it("warns when the order changed elsewhere while it was being edited", async () => {
    const save = vi.fn<Save>(async () => ({ ok: true, order: null }));
    const { user, rerender } = renderTable(save);
    await user.click(screen.getByRole("button", { name: "Edit order 2" }));
    rerender(<EditableTable rows={[rowOf(order(3)), rowOf({ ...ada, version: 2, status: "shipped" })]} save={save} />);

    const form = screen.getByRole("form", { name: "Edit order 2" });
    expect(within(form).getByRole("status").textContent).toContain("now v2");
  });
});
