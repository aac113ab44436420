import { type FormEvent, useId, useRef, useState } from "react";
import type { OrderDraft } from "../api";
import type { WriteOutcome } from "../liveStore";
import type { Status } from "../protocol";
import { type FieldErrors, checkFields, hasErrors, serverFieldErrors } from "../validation";
import { Field, STATUS_OPTIONS } from "./Field";

interface Props {
  onCreate: (draft: OrderDraft) => Promise<WriteOutcome>;
  /** Skip the client-side checks (the server's own 422 answers show instead). */
  serverValidationOnly: boolean;
}

export function OrderForm({ onCreate, serverValidationOnly }: Props) {
  const id = useId();
  const [customer, setCustomer] = useState("");
  const [product, setProduct] = useState("");
  const [status, setStatus] = useState<Status>("pending");
  const [errors, setErrors] = useState<FieldErrors>({});
  const [busy, setBusy] = useState(false);
  const [created, setCreated] = useState<string | null>(null);
  const customerRef = useRef<HTMLInputElement>(null);
  const productRef = useRef<HTMLInputElement>(null);

  async function submit(event: FormEvent) {
    event.preventDefault();
    setCreated(null);
    const checked = checkFields({ customer_name: customer, product_name: product, status });
    if (!serverValidationOnly && hasErrors(checked.errors)) {
      setErrors(checked.errors);
      (checked.errors.customer_name ? customerRef : productRef).current?.focus();
      return;
    }
    setErrors({});
    setBusy(true);
    const draft: OrderDraft = serverValidationOnly
      ? { customer_name: customer, product_name: product, status }
      : (checked.value as OrderDraft);
    const outcome = await onCreate(draft);
    setBusy(false);
    if (outcome.ok) {
      setCustomer("");
      setProduct("");
      setStatus("pending");
      setCreated(outcome.order ? `Order #${outcome.order.id} created.` : "Order created.");
      customerRef.current?.focus();
      return;
    }
    const fieldErrors =
      outcome.status === 422 ? serverFieldErrors(outcome.fields, outcome.message) : { form: outcome.message };
    setErrors(fieldErrors);
    if (fieldErrors.customer_name) customerRef.current?.focus();
    else if (fieldErrors.product_name) productRef.current?.focus();
  }

  return (
    <form className="card order-form" onSubmit={submit} noValidate aria-labelledby={`${id}-title`}>
      <h2 id={`${id}-title`}>New order</h2>
      <div className="form-grid">
        <Field
          label="Customer"
          name="customer_name"
          ref={customerRef}
          value={customer}
          onChange={setCustomer}
          placeholder="e.g. Ada Lovelace"
          error={errors.customer_name}
        />
        <Field
          label="Product"
          name="product_name"
          ref={productRef}
          value={product}
          onChange={setProduct}
          placeholder="e.g. Desk lamp"
          error={errors.product_name}
        />
        <Field
          label="Status"
          name="status"
          className="field-status"
          options={STATUS_OPTIONS}
          value={status}
          onChange={(value) => setStatus(value as Status)}
          error={errors.status}
        />
        <div className="field field-submit">
          <button type="submit" className="button primary" disabled={busy}>
            {busy ? "Creating…" : "Create order"}
          </button>
        </div>
      </div>
      {errors.form && (
        <p className="form-error" role="alert">
          {errors.form}
        </p>
      )}
      <p className="form-note" role="status">
        {created}
      </p>
    </form>
  );
}
