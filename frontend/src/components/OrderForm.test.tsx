// @vitest-environment jsdom
import { cleanup, render, screen } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { OrderDraft } from "../api";
import { order } from "../liveFixtures";
import type { WriteOutcome } from "../liveStore";
import { OrderForm } from "./OrderForm";

afterEach(cleanup);

function renderForm(outcome: WriteOutcome, serverValidationOnly = false) {
  const onCreate = vi.fn(async (_draft: OrderDraft) => outcome);
  render(<OrderForm onCreate={onCreate} serverValidationOnly={serverValidationOnly} />);
  return { onCreate, user: userEvent.setup() };
}

describe("OrderForm", () => {
  it("shows what is wrong with each field, marks it invalid and focuses the first, without sending", async () => {
    const { onCreate, user } = renderForm({ ok: true, order: null });
    await user.type(screen.getByLabelText("Customer"), "   ");
    await user.click(screen.getByRole("button", { name: "Create order" }));

    const customer = screen.getByLabelText("Customer");
    const product = screen.getByLabelText("Product");
    expect(customer).toHaveProperty("ariaInvalid", "true");
    expect(product).toHaveProperty("ariaInvalid", "true");
    expect(customer.getAttribute("aria-describedby")).not.toBe(product.getAttribute("aria-describedby"));
    // The message is the one the field points at.
    expect(document.getElementById(customer.getAttribute("aria-describedby") ?? "")?.textContent).toBe(
      "Required: enter at least 1 character.",
    );
    expect(document.getElementById(product.getAttribute("aria-describedby") ?? "")?.textContent).toBe(
      "Required: enter at least 1 character.",
    );
    expect(document.activeElement).toBe(customer);
    expect(onCreate).not.toHaveBeenCalled();
  });

  it("sends the trimmed draft, says which order was created and starts again from an empty form", async () => {
    const { onCreate, user } = renderForm({ ok: true, order: order(42) });
    await user.type(screen.getByLabelText("Customer"), "  Ada Lovelace ");
    await user.type(screen.getByLabelText("Product"), "Desk lamp");
    await user.selectOptions(screen.getByLabelText("Status"), "Shipped");
    await user.click(screen.getByRole("button", { name: "Create order" }));

    expect(onCreate).toHaveBeenCalledExactlyOnceWith({
      customer_name: "Ada Lovelace",
      product_name: "Desk lamp",
      status: "shipped",
    });
    expect(screen.getByRole("status").textContent).toBe("Order #42 created.");
    expect(screen.getByLabelText<HTMLInputElement>("Customer").value).toBe("");
    expect(screen.getByLabelText<HTMLInputElement>("Product").value).toBe("");
    expect(screen.getByLabelText<HTMLSelectElement>("Status").value).toBe("pending");
    expect(document.activeElement).toBe(screen.getByLabelText("Customer"));
    expect(screen.getByLabelText("Customer")).toHaveProperty("ariaInvalid", null);
  });

  it("shows the server's field errors on its fields, and keeps what was typed", async () => {
    const refused: WriteOutcome = {
      ok: false,
      status: 422,
      message: "The order was not valid.",
      fields: { product_name: "At most 200 characters." },
    };
    const { onCreate, user } = renderForm(refused, true);
    await user.type(screen.getByLabelText("Customer"), "Ada");
    await user.type(screen.getByLabelText("Product"), "Lamp");
    await user.click(screen.getByRole("button", { name: "Create order" }));

    expect(onCreate).toHaveBeenCalledOnce();
    const product = screen.getByLabelText<HTMLInputElement>("Product");
    expect(product.ariaInvalid).toBe("true");
    expect(document.getElementById(product.getAttribute("aria-describedby") ?? "")?.textContent).toBe(
      "At most 200 characters.",
    );
    expect(product.value).toBe("Lamp");
    expect(document.activeElement).toBe(product);
    expect(screen.getByLabelText("Customer")).toHaveProperty("ariaInvalid", null);
  });

  it("shows a refusal that is not about a field as an alert", async () => {
    const { user } = renderForm({ ok: false, status: 503, message: "The database is not reachable.", fields: {} });
    await user.type(screen.getByLabelText("Customer"), "Ada");
    await user.type(screen.getByLabelText("Product"), "Lamp");
    await user.click(screen.getByRole("button", { name: "Create order" }));

    expect(screen.getByRole("alert").textContent).toBe("The database is not reachable.");
  });
});
