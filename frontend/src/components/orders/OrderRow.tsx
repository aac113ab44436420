import { type KeyboardEvent, memo, useEffect, useRef } from "react";
import type { Flash } from "../../liveView";
import type { Order } from "../../protocol";
import { RelativeTime } from "./RelativeTime";
import { StatusBadge } from "./StatusBadge";
import { useRowHighlight } from "./useRowHighlight";

export interface OrderRowProps {
  order: Order;
  /** A write of this tab is on its way for this order. */
  pending: "create" | "update" | null;
  flash: Flash | undefined;
  confirming: boolean;
  onEdit: (id: number | null) => void;
  onConfirmDelete: (id: number | null) => void;
  onDelete: (order: Order) => void;
  /** Registers the row's Edit button by order id (the focus goes back to it when its edit closes). */
  registerEditButton?: (id: number, button: HTMLButtonElement | null) => void;
  /** Where the row is among all rows (virtualised table: aria-rowindex and the measured size). */
  index?: number;
  measure?: (element: HTMLTableRowElement | null) => void;
}

/** One order. Memoised with the default comparison: every prop is a value or a stable callback,
 *  so a row re-renders only when its own order, highlight, state or place changes. Its cells are
 *  memoised apart from its place (`index`): when a change moves a row to the top, every row in
 *  view moves down one, and only their `<tr>` attributes are rendered again. */
export const OrderRow = memo(function OrderRow(props: OrderRowProps) {
  const { order, pending, flash, index, measure, ...cells } = props;
  const setRow = useRowHighlight<HTMLTableRowElement>(flash, measure);
  return (
    <tr
      ref={setRow}
      className={pending ? "row pending" : "row"}
      data-order-id={order.id < 0 ? undefined : order.id}
      data-status={order.status}
      data-index={index}
      aria-rowindex={index === undefined ? undefined : index + 2}
      aria-busy={pending ? true : undefined}
    >
      <OrderCells order={order} pending={pending} {...cells} />
    </tr>
  );
});

type OrderCellsProps = Omit<OrderRowProps, "flash" | "index" | "measure">;

const OrderCells = memo(function OrderCells(props: OrderCellsProps) {
  const { order, pending, confirming, onEdit, onConfirmDelete, onDelete, registerEditButton } = props;
  const keepRef = useRef<HTMLButtonElement>(null);
  const editRef = useRef<HTMLButtonElement>(null);
  const wasConfirming = useRef(false);
  const temporary = order.id < 0;
  const id = order.id;

  useEffect(() => {
    if (registerEditButton === undefined) return;
    registerEditButton(id, editRef.current);
    return () => registerEditButton(id, null);
  }, [id, registerEditButton, confirming]);

  useEffect(() => {
    if (confirming) keepRef.current?.focus();
    else if (wasConfirming.current) editRef.current?.focus();
    wasConfirming.current = confirming;
  }, [confirming]);

  const cancelDelete = () => onConfirmDelete(null);
  const onKeyDown = (event: KeyboardEvent) => {
    if (event.key === "Escape" && confirming) cancelDelete();
  };

  return (
    <>
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
        <RelativeTime iso={order.updated_at} />
      </td>
      <td data-label="Version" className="cell-version num">
        {pending ? <span className="saving">saving…</span> : `v${order.version}`}
      </td>
      <td className="cell-actions" onKeyDown={onKeyDown}>
        {temporary ? null : confirming ? (
          <div className="confirm" role="group" aria-label={`Confirm deleting order ${order.id}`}>
            <span className="confirm-text">Delete?</span>
            <button type="button" className="button danger small" onClick={() => onDelete(order)}>
              Delete
            </button>
            <button type="button" className="button small" ref={keepRef} onClick={cancelDelete}>
              Keep
            </button>
          </div>
        ) : (
          <div className="actions">
            <button
              type="button"
              className="button ghost small"
              ref={editRef}
              onClick={() => onEdit(order.id)}
              aria-label={`Edit order ${order.id}`}
            >
              Edit
            </button>
            <button
              type="button"
              className="button ghost small danger-text"
              onClick={() => onConfirmDelete(order.id)}
              aria-label={`Delete order ${order.id}`}
            >
              Delete
            </button>
          </div>
        )}
      </td>
    </>
  );
});
