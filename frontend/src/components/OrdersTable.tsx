import { type FormEvent, type KeyboardEvent, memo, useCallback, useEffect, useId, useRef, useState } from "react";
import { capitalize, relativeTime } from "../format";
import type { OrderEdit, Row } from "../liveState";
import type { WriteOutcome } from "../liveStore";
import { type Order, STATUSES, type Status } from "../protocol";
import "./orders/OrdersTable.css";
import { type FieldErrors, checkFields, hasErrors, serverFieldErrors } from "../validation";

export function StatusBadge({ status }: { status: Status }) {
  return (
    <span className={`badge badge-${status}`}>
      <span className="badge-dot" aria-hidden="true" />
      {capitalize(status)}
    </span>
  );
}

interface TableProps {
  rows: readonly Row[];
  now: number;
  editingId: number | null;
  confirmingId: number | null;
  onEdit: (id: number | null) => void;
  onConfirmDelete: (id: number | null) => void;
  onSave: (order: Order, changes: OrderEdit) => Promise<WriteOutcome | null>;
  onDelete: (order: Order) => void;
  serverValidationOnly: boolean;
  caption: string;
  /** Each row's Edit button, registered by order id (the focus goes back to it when its edit closes). */
  registerEditButton: (id: number, button: HTMLButtonElement | null) => void;
}

export function OrdersTable(props: TableProps) {
  const { rows } = props;
  return (
    <table className="orders">
      <caption className="sr-only">{props.caption}</caption>
      <thead>
        <tr>
          <th scope="col">Order</th>
          <th scope="col">Customer</th>
          <th scope="col">Product</th>
          <th scope="col">Status</th>
          <th scope="col">Updated</th>
          <th scope="col" className="num">
            Version
          </th>
          <th scope="col">
            <span className="sr-only">Actions</span>
          </th>
        </tr>
      </thead>
      <tbody>
        {rows.map((row) =>
          props.editingId === row.order.id && row.order.id > 0 ? (
            <EditRow
              key={row.order.id}
              row={row}
              onCancel={props.onEdit}
              onSave={props.onSave}
              serverValidationOnly={props.serverValidationOnly}
            />
          ) : (
            <OrderRow
              key={row.order.id}
              row={row}
              now={props.now}
              confirming={props.confirmingId === row.order.id}
              onEdit={props.onEdit}
              onConfirmDelete={props.onConfirmDelete}
              onDelete={props.onDelete}
              registerEditButton={props.registerEditButton}
            />
          ),
        )}
      </tbody>
    </table>
  );
}

/** Highlights a row briefly when a change was applied to it (not when it merely re-renders or moves). */
function useFlash(row: Row) {
  const ref = useRef<HTMLTableRowElement>(null);
  const serial = row.flash?.serial;
  useEffect(() => {
    const element = ref.current;
    const flash = row.flash;
    if (!element || !flash || Date.now() - flash.at > 2000) return;
    element.classList.remove("flash");
    void element.offsetWidth; // restart the animation
    element.classList.add("flash");
    const done = () => element.classList.remove("flash");
    element.addEventListener("animationend", done, { once: true });
    return () => element.removeEventListener("animationend", done);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [serial]);
  return ref;
}

interface RowProps {
  row: Row;
  now: number;
  confirming: boolean;
  onEdit: (id: number | null) => void;
  onConfirmDelete: (id: number | null) => void;
  onDelete: (order: Order) => void;
  registerEditButton: (id: number, button: HTMLButtonElement | null) => void;
}

/** Re-renders only when its own order, highlight or state changes (the callbacks are stable). */
const OrderRow = memo(
  function OrderRow({ row, now, confirming, onEdit, onConfirmDelete, onDelete, registerEditButton }: RowProps) {
    const id = row.order.id;
    const editButtonRef = useCallback((button: HTMLButtonElement | null) => registerEditButton(id, button), [id, registerEditButton]);
    return (
      <OrderRowView
        row={row}
        now={now}
        confirming={confirming}
        onEdit={() => onEdit(row.order.id)}
        onAskDelete={() => onConfirmDelete(row.order.id)}
        onCancelDelete={() => onConfirmDelete(null)}
        onDelete={() => onDelete(row.order)}
        editButtonRef={editButtonRef}
      />
    );
  },
  (a, b) =>
    a.row.order === b.row.order &&
    a.row.pending === b.row.pending &&
    a.row.flash === b.row.flash &&
    a.now === b.now &&
    a.confirming === b.confirming &&
    a.onEdit === b.onEdit &&
    a.onConfirmDelete === b.onConfirmDelete &&
    a.onDelete === b.onDelete &&
    a.registerEditButton === b.registerEditButton,
);

interface RowViewProps {
  row: Row;
  now: number;
  confirming: boolean;
  onEdit: () => void;
  onAskDelete: () => void;
  onCancelDelete: () => void;
  onDelete: () => void;
  editButtonRef: (button: HTMLButtonElement | null) => void;
}

function OrderRowView({ row, now, confirming, onEdit, onAskDelete, onCancelDelete, onDelete, editButtonRef }: RowViewProps) {
  const { order, pending } = row;
  const ref = useFlash(row);
  const keepRef = useRef<HTMLButtonElement>(null);
  const editRef = useRef<HTMLButtonElement>(null);
  const wasConfirming = useRef(false);
  const temporary = order.id < 0;

  useEffect(() => {
    if (confirming) keepRef.current?.focus();
    else if (wasConfirming.current) editRef.current?.focus();
    wasConfirming.current = confirming;
  }, [confirming]);

  useEffect(() => {
    editButtonRef(editRef.current);
    return () => editButtonRef(null);
  }, [editButtonRef]);

  const onKeyDown = (event: KeyboardEvent) => {
    if (event.key === "Escape" && confirming) onCancelDelete();
  };

  return (
    <tr
      ref={ref}
      className={pending ? "row pending" : "row"}
      data-order-id={temporary ? undefined : order.id}
      data-status={order.status}
      aria-busy={pending ? true : undefined}
    >
      <td data-label="Order" className="cell-id">
        {temporary ? <span className="muted">new</span> : `#${order.id}`}
      </td>
      <td data-label="Customer" className="cell-customer">
        {order.customer_name}
      </td>
      <td data-label="Product" className="cell-product">
        {order.product_name}
      </td>
      <td data-label="Status" className="cell-status">
        <StatusBadge status={order.status} />
      </td>
      <td data-label="Updated" className="cell-updated">
        <time dateTime={order.updated_at} title={order.updated_at}>
          {relativeTime(order.updated_at, now)}
        </time>
      </td>
      <td data-label="Version" className="cell-version num">
        {pending ? <span className="saving">saving…</span> : `v${order.version}`}
      </td>
      <td className="cell-actions" onKeyDown={onKeyDown}>
        {temporary ? null : confirming ? (
          <div className="confirm" role="group" aria-label={`Confirm deleting order ${order.id}`}>
            <span className="confirm-text">Delete?</span>
            <button type="button" className="button danger small" onClick={onDelete}>
              Delete
            </button>
            <button type="button" className="button small" ref={keepRef} onClick={onCancelDelete}>
              Keep
            </button>
          </div>
        ) : (
          <div className="actions">
            <button
              type="button"
              className="button ghost small"
              ref={editRef}
              onClick={onEdit}
              aria-label={`Edit order ${order.id}`}
            >
              Edit
            </button>
            <button
              type="button"
              className="button ghost small danger-text"
              onClick={onAskDelete}
              aria-label={`Delete order ${order.id}`}
            >
              Delete
            </button>
          </div>
        )}
      </td>
    </tr>
  );
}

interface EditProps {
  row: Row;
  onCancel: (id: null) => void;
  onSave: (order: Order, changes: OrderEdit) => Promise<WriteOutcome | null>;
  serverValidationOnly: boolean;
}

function EditRow({ row, onCancel, onSave, serverValidationOnly }: EditProps) {
  const id = useId();
  const [base] = useState(row.order); // the version this edit starts from (sent as If-Match)
  const [customer, setCustomer] = useState(base.customer_name);
  const [product, setProduct] = useState(base.product_name);
  const [status, setStatus] = useState<Status>(base.status);
  const [errors, setErrors] = useState<FieldErrors>({});
  const [busy, setBusy] = useState(false);
  const firstRef = useRef<HTMLInputElement>(null);
  const ref = useFlash(row);

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

  const described = (name: keyof FieldErrors) =>
    errors[name] ? { "aria-invalid": true, "aria-describedby": `${id}-${name}-error` } : {};
  const error = (name: keyof FieldErrors) =>
    errors[name] ? (
      <p className="field-error" id={`${id}-${name}-error`} data-field-error={name}>
        {errors[name]}
      </p>
    ) : null;
  const changedMeanwhile = row.order.version !== base.version;

  return (
    <tr ref={ref} className="editing" data-order-id={base.id} data-status={row.order.status}>
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
                Changed elsewhere since you started (now v{row.order.version}): saving will ask what to keep.
              </span>
            )}
          </div>
          <div className="edit-grid">
            <div className="field">
              <label htmlFor={`${id}-customer`}>Customer</label>
              <input
                id={`${id}-customer`}
                ref={firstRef}
                value={customer}
                onChange={(e) => setCustomer(e.target.value)}
                autoComplete="off"
                {...described("customer_name")}
              />
              {error("customer_name")}
            </div>
            <div className="field">
              <label htmlFor={`${id}-product`}>Product</label>
              <input
                id={`${id}-product`}
                value={product}
                onChange={(e) => setProduct(e.target.value)}
                autoComplete="off"
                {...described("product_name")}
              />
              {error("product_name")}
            </div>
            <div className="field field-status">
              <label htmlFor={`${id}-status`}>Status</label>
              <select
                id={`${id}-status`}
                value={status}
                onChange={(e) => setStatus(e.target.value as Status)}
                {...described("status")}
              >
                {STATUSES.map((s) => (
                  <option key={s} value={s}>
                    {capitalize(s)}
                  </option>
                ))}
              </select>
              {error("status")}
            </div>
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
}
