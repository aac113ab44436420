import { type FormEvent, useId, useRef, useState } from "react";
import type { OrderDraft } from "../api";
import { capitalize } from "../format";
import type { WriteOutcome } from "../liveStore";
import { STATUSES, type Status } from "../protocol";
import { type FieldErrors, checkFields, hasErrors, serverFieldErrors } from "../validation";

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

  const field = (name: "customer_name" | "product_name") => ({
    "aria-invalid": errors[name] ? true : undefined,
    "aria-describedby": errors[name] ? `${id}-${name}-error` : undefined,
  });

  return (
    <form className="card order-form" onSubmit={submit} noValidate aria-labelledby={`${id}-title`}>
      <h2 id={`${id}-title`}>New order</h2>
      <div className="form-grid">
        <div className="field">
          <label htmlFor={`${id}-customer`}>Customer</label>
          <input
            id={`${id}-customer`}
            ref={customerRef}
            name="customer_name"
            autoComplete="off"
            value={customer}
            onChange={(e) => setCustomer(e.target.value)}
            placeholder="e.g. Ada Lovelace"
            {...field("customer_name")}
          />
          {errors.customer_name && (
            <p className="field-error" id={`${id}-customer_name-error`} data-field-error="customer_name">
              {errors.customer_name}
            </p>
          )}
        </div>
        <div className="field">
          <label htmlFor={`${id}-product`}>Product</label>
          <input
            id={`${id}-product`}
            ref={productRef}
            name="product_name"
            autoComplete="off"
            value={product}
            onChange={(e) => setProduct(e.target.value)}
            placeholder="e.g. Desk lamp"
            {...field("product_name")}
          />
          {errors.product_name && (
            <p className="field-error" id={`${id}-product_name-error`} data-field-error="product_name">
              {errors.product_name}
            </p>
          )}
        </div>
        <div className="field field-status">
          <label htmlFor={`${id}-status`}>Status</label>
          <select
            id={`${id}-status`}
            name="status"
            value={status}
            onChange={(e) => setStatus(e.target.value as Status)}
            aria-invalid={errors.status ? true : undefined}
            aria-describedby={errors.status ? `${id}-status-error` : undefined}
          >
            {STATUSES.map((s) => (
              <option key={s} value={s}>
                {capitalize(s)}
              </option>
            ))}
          </select>
          {errors.status && (
            <p className="field-error" id={`${id}-status-error`} data-field-error="status">
              {errors.status}
            </p>
          )}
        </div>
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
