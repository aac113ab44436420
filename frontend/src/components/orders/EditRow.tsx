import { type FormEvent, memo, useEffect, useRef, useState } from "react";
import type { OrderEdit } from "../../liveState";
import type { WriteOutcome } from "../../liveStore";
import type { Flash } from "../../liveView";
import { type Order, type Status, isStatus } from "../../protocol";
import { type FieldErrors, checkFields, hasErrors, serverFieldErrors } from "../../validation";
import { Field, STATUS_OPTIONS } from "../Field";
import { useRowHighlight } from "./useRowHighlight";

export interface EditRowProps {
  order: Order;
  flash: Flash | undefined;
  onCancel: (id: null) => void;
  onSave: (order: Order, changes: OrderEdit) => Promise<WriteOutcome | null>;
  serverValidationOnly: boolean;
  index?: number;
  measure?: (element: HTMLTableRowElement | null) => void;
}

/** An order edited in place: the form starts from the version shown when it opened (sent as
 *  If-Match), and says so when the order changed elsewhere meanwhile. */
export const EditRow = memo(function EditRow(props: EditRowProps) {
  const { order, flash, onCancel, onSave, serverValidationOnly, index, measure } = props;
  const [base] = useState(order); // the version this edit starts from (sent as If-Match)
  const [customer, setCustomer] = useState(base.customer_name);
  const [product, setProduct] = useState(base.product_name);
  const [status, setStatus] = useState<Status>(base.status);
  const [errors, setErrors] = useState<FieldErrors>({});
  const [busy, setBusy] = useState(false);
  const firstRef = useRef<HTMLInputElement>(null);
  const setRow = useRowHighlight<HTMLTableRowElement>(flash, measure);

  useEffect(() => firstRef.current?.focus(), []);

  async function submit(event: FormEvent) {
    event.preventDefault();
    const edit: OrderEdit = {};
    if (customer !== base.customer_name) edit.customer_name = customer;
    if (product !== base.product_name) edit.product_name = product;
    if (status !== base.status) edit.status = status;
    const checked = checkFields(edit);
    if (!serverValidationOnly && hasErrors(checked.errors)) {
      setErrors(checked.errors);
      return;
    }
    const changes = serverValidationOnly ? edit : checked.value;
    if (Object.keys(changes).length === 0) {
      onCancel(null);
      return;
    }
    setBusy(true);
    const outcome = await onSave(base, changes);
    setBusy(false);
    if (outcome && !outcome.ok && outcome.status === 422) {
      setErrors(serverFieldErrors(outcome.fields, outcome.message));
    }
  }

  const changedMeanwhile = order.version !== base.version;

  return (
    <tr
      ref={setRow}
      className="editing"
      data-order-id={base.id}
      data-status={order.status}
      data-index={index}
      aria-rowindex={index === undefined ? undefined : index + 2}
    >
      <td colSpan={7}>
        <form
          className="edit-form"
          onSubmit={submit}
          noValidate
          onKeyDown={(e) => e.key === "Escape" && onCancel(null)}
          aria-label={`Edit order ${base.id}`}
        >
          <div className="edit-title">
            <strong>Editing #{base.id}</strong> <span className="muted">v{base.version}</span>
            {changedMeanwhile && (
              <span className="edit-warning" role="status">
                Changed elsewhere since you started (now v{order.version}): saving will ask what to keep.
              </span>
            )}
          </div>
          <div className="edit-grid">
            <Field
              label="Customer"
              name="customer_name"
              ref={firstRef}
              value={customer}
              onChange={setCustomer}
              error={errors.customer_name}
            />
            <Field label="Product" name="product_name" value={product} onChange={setProduct} error={errors.product_name} />
            <Field
              label="Status"
              name="status"
              className="field-status"
              options={STATUS_OPTIONS}
              value={status}
              onChange={(value) => isStatus(value) && setStatus(value)}
              error={errors.status}
            />
            <div className="field field-submit edit-buttons">
              <button type="submit" className="button primary" disabled={busy}>
                {busy ? "Saving…" : "Save"}
              </button>
              <button type="button" className="button" onClick={() => onCancel(null)}>
                Cancel
              </button>
            </div>
          </div>
          {errors.form && (
            <p className="form-error" role="alert">
              {errors.form}
            </p>
          )}
        </form>
      </td>
    </tr>
  );
});
