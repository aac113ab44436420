import { useEffect, useRef } from "react";
import { capitalize } from "../format";
import type { OrderEdit } from "../liveState";
import type { Order } from "../protocol";
import { StatusBadge } from "./orders/StatusBadge";
import "./ConflictPanel.css";

export interface Conflict {
  id: number;
  /** What this tab tried: an edit, or a delete. */
  attempted: { kind: "update"; changes: OrderEdit } | { kind: "delete" };
  baseVersion: number;
  current: Order;
}

const FIELD_NAMES: Record<keyof OrderEdit, string> = {
  customer_name: "Customer",
  product_name: "Product",
  status: "Status",
};

interface Props {
  conflict: Conflict;
  busy: boolean;
  onReapply: () => void;
  onDiscard: () => void;
}

export function ConflictPanel({ conflict, busy, onReapply, onDiscard }: Props) {
  const { current, attempted } = conflict;
  const headingRef = useRef<HTMLHeadingElement>(null);
  useEffect(() => headingRef.current?.focus(), [conflict]);
  return (
    <section className="card conflict" role="alertdialog" aria-labelledby="conflict-title" data-testid="conflict">
      <h2 id="conflict-title" tabIndex={-1} ref={headingRef}>
        Order #{current.id} changed before your {attempted.kind === "delete" ? "delete" : "edit"} was saved
      </h2>
      <p>
        You started from version {conflict.baseVersion}; the server now has version {current.version}. Nothing of
        yours was saved.
      </p>
      <div className="conflict-grid">
        <div>
          <h3>Now on the server</h3>
          <dl>
            <dt>Customer</dt>
            <dd>{current.customer_name}</dd>
            <dt>Product</dt>
            <dd>{current.product_name}</dd>
            <dt>Status</dt>
            <dd>
              <StatusBadge status={current.status} />
            </dd>
            <dt>Updated</dt>
            <dd>
              <time dateTime={current.updated_at}>{current.updated_at}</time>
            </dd>
          </dl>
        </div>
        <div>
          <h3>Your change</h3>
          {attempted.kind === "delete" ? (
            <p>Delete the order.</p>
          ) : (
            <dl>
              {(Object.keys(attempted.changes) as (keyof OrderEdit)[]).map((name) => (
                <div key={name} className="dl-pair">
                  <dt>{FIELD_NAMES[name]}</dt>
                  <dd>
                    {name === "status" ? capitalize(String(attempted.changes[name])) : attempted.changes[name]}
                  </dd>
                </div>
              ))}
            </dl>
          )}
        </div>
      </div>
      <div className="conflict-actions">
        <button type="button" className="button primary" onClick={onReapply} disabled={busy}>
          {attempted.kind === "delete" ? `Delete version ${current.version}` : `Re-apply my change to v${current.version}`}
        </button>
        <button type="button" className="button" onClick={onDiscard} disabled={busy}>
          Keep the server's version
        </button>
      </div>
    </section>
  );
}
