// The wire format of orders-live (docs/protocol.md), as TypeScript types.

export const STATUSES = ["pending", "shipped", "delivered"] as const;
export type Status = (typeof STATUSES)[number];

export function isStatus(value: unknown): value is Status {
  return typeof value === "string" && (STATUSES as readonly string[]).includes(value);
}

export interface Order {
  id: number;
  customer_name: string;
  product_name: string;
  status: Status;
  /** ISO-8601 UTC with milliseconds and a trailing Z. */
  updated_at: string;
  version: number;
}

/** The subscription filters the dashboard uses: all orders, or one status. */
export type StatusFilter = Status | null;

export interface WireFilter {
  status?: Status;
  id?: number;
}

export type Op = "insert" | "update" | "delete";

/** Orders per status. In an ack or resync: the statuses the filter covers. In an `order_change`:
 *  all three, for ALL orders right after that change (global, not per filter). */
export type Counts = Partial<Record<Status, number>>;

/** Payload of the `order_change` event. */
export interface OrderChange {
  op: Op;
  id: number;
  order: Order | null;
  /** Opaque: stored and sent back as `since`, never parsed or compared. */
  position: string;
  committed_at: string;
  conflated?: boolean;
  /** Absent on some replayed changes (the ack carries the counts then). */
  counts?: Counts;
}

/** Payload of the `order_changes` event: changes batched by the server, applied in order (as
 *  so many `order_change` events). */
export interface OrderChangeBatch {
  changes: OrderChange[];
}

/** Payload of the `snapshot` event: one page of a snapshot. Every snapshot has at least one page,
 *  and its first has `reset: true` (drop the view and forget the position until the ack). */
export interface SnapshotPage {
  filter: WireFilter;
  orders: Order[];
  /** Ids to remove from the view (unknown ids: ignored). */
  removed?: number[];
  reset?: boolean;
}

/** Payload of the `resync` event: it ends a snapshot whose pages came before it. */
export interface ResyncMessage {
  reason: string;
  filter: WireFilter;
  position: string;
  counts: Counts;
  /** How many orders its pages carried. */
  snapshot: number;
}

export interface ApiErrorBody {
  code: string;
  message: string;
  fields: Record<string, string>;
}

/** The ack that ends a snapshot (its pages came before it). */
export interface SnapshotAck {
  ok: true;
  filter: WireFilter;
  position: string;
  counts: Counts;
  /** How many orders the pages carried. */
  snapshot: number;
  /** The window asked for, echoed. */
  limit?: number;
  /** Present when `since` was given but could not be honoured. */
  resync?: string;
}

export interface ReplayAck {
  ok: true;
  filter: WireFilter;
  replayed: number;
  position: string;
  counts: Counts;
}

export interface ErrorAck {
  ok: false;
  error: ApiErrorBody;
}

export type SubscribeAck = SnapshotAck | ReplayAck | ErrorAck;

/** The `subscribe` payload of the dashboard: a status (or all), a window, and `since` to resume. */
export interface SubscribePayload {
  status?: Status;
  limit?: number;
  since?: string;
}

/** The answer of `GET /api/orders`: newest first; `next_before` continues it (null: nothing older). */
export interface OrdersPage {
  orders: Order[];
  position: string;
  counts: Counts;
  next_before: string | null;
}

export function wireFilter(filter: StatusFilter): WireFilter {
  return filter === null ? {} : { status: filter };
}

/** Does a wire filter (from an ack or a resync) name this dashboard filter? */
export function sameFilter(wire: WireFilter | undefined, filter: StatusFilter): boolean {
  if (wire === undefined || wire === null || typeof wire !== "object") return false;
  if (wire.id !== undefined) return false;
  return (wire.status ?? null) === filter;
}
