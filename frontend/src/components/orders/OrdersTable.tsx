import { type ReactNode, useState } from "react";
import type { OrderEdit, Row } from "../../liveState";
import type { WriteOutcome } from "../../liveStore";
import type { Order } from "../../protocol";
import { EditRow } from "./EditRow";
import { OrderRow } from "./OrderRow";
import "./OrdersTable.css";
import { VirtualRows } from "./VirtualRows";

export interface OrdersTableProps {
  rows: readonly Row[];
  editingId: number | null;
  confirmingId: number | null;
  onEdit: (id: number | null) => void;
  onConfirmDelete: (id: number | null) => void;
  onSave: (order: Order, changes: OrderEdit) => Promise<WriteOutcome | null>;
  onDelete: (order: Order) => void;
  serverValidationOnly: boolean;
  caption: string;
  /** Each row's Edit button, registered by order id (the focus goes back to it when its edit closes). */
  registerEditButton?: (id: number, button: HTMLButtonElement | null) => void;
}

/** The orders, newest change first. Only the rows in view (and the one being edited) are in the
 *  document, whatever the number held (VirtualRows.tsx). `orders-live bench --dashboard`, 500 rows
 *  at 5 changes/s: the main thread 81 % busy when every row was in the table (a row that moves to
 *  the top re-lays out the table), 7 % with the rows in view only; at 99 rows and 50 changes/s a
 *  plain table saturated it. */
export function OrdersTable(props: OrdersTableProps) {
  const { rows, editingId } = props;
  // State, not a ref: the rows are laid out once the box exists (a child's effects run before
  // its parent's ref is set).
  const [scrollBox, setScrollBox] = useState<HTMLDivElement | null>(null);

  const renderRow = (row: Row, index: number, measure: (element: HTMLTableRowElement | null) => void): ReactNode =>
    editingId === row.order.id && row.order.id > 0 ? (
      <EditRow
        key={row.order.id}
        order={row.order}
        flash={row.flash}
        onCancel={props.onEdit}
        onSave={props.onSave}
        serverValidationOnly={props.serverValidationOnly}
        index={index}
        measure={measure}
      />
    ) : (
      <OrderRow
        key={row.order.id}
        order={row.order}
        pending={row.pending}
        flash={row.flash}
        confirming={props.confirmingId === row.order.id}
        onEdit={props.onEdit}
        onConfirmDelete={props.onConfirmDelete}
        onDelete={props.onDelete}
        registerEditButton={props.registerEditButton}
        index={index}
        measure={measure}
      />
    );

  const table = (
    <table className="orders" aria-rowcount={rows.length + 1}>
      <caption className="sr-only">{props.caption}</caption>
      <thead>
        <tr aria-rowindex={1}>
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
        <VirtualRows
          rows={rows}
          scrollBox={scrollBox}
          keepIndex={editingId === null ? -1 : rows.findIndex((row) => row.order.id === editingId)}
          renderRow={renderRow}
        />
      </tbody>
    </table>
  );
  return (
    // A scroll box of its own, which the rows in view are taken from; focusable, so that the
    // keyboard scrolls it too.
    <div className="orders-scroll" ref={setScrollBox} tabIndex={0} role="region" aria-label={props.caption}>
      {table}
    </div>
  );
}
