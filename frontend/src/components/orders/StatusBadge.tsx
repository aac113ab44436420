import { memo } from "react";
import { capitalize } from "../../format";
import type { Status } from "../../protocol";
import "./OrdersTable.css";

/** An order's status as a coloured pill (the table, the conflict panel). */
export const StatusBadge = memo(function StatusBadge({ status }: { status: Status }) {
  return (
    <span className={`badge badge-${status}`}>
      <span className="badge-dot" aria-hidden="true" />
      {capitalize(status)}
    </span>
  );
});
