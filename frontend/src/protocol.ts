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

/** Payload of the `order_change` event. */
export interface OrderChange {
  op: Op;
  id: number;
  order: Order | null;
  /** Opaque: stored and sent back as `since`, never parsed or compared. */
  position: string;
  committed_at: string;
  conflated?: boolean;
}

/** Payload of the `order_changes` event: changes batched by the server, applied in order (as
 *  so many `order_change` events). */
export interface OrderChangeBatch {
  changes: OrderChange[];
}

/** Payload of the `resync` event. */
export interface ResyncMessage {
  reason: string;
  filter: WireFilter;
  orders: Order[];
  position: string;
}

export interface ApiErrorBody {
  code: string;
  message: string;
  fields: Record<string, string>;
}

export interface SnapshotAck {
  ok: true;
  filter: WireFilter;
  orders: Order[];
  position: string;
  resync?: string;
}

export interface ReplayAck {
  ok: true;
  filter: WireFilter;
  replayed: number;
  position: string;
}

export interface ErrorAck {
  ok: false;
  error: ApiErrorBody;
}

export type SubscribeAck = SnapshotAck | ReplayAck | ErrorAck;

export function wireFilter(filter: StatusFilter): WireFilter {
  return filter === null ? {} : { status: filter };
}

/** Does a wire filter (from an ack or a resync) name this dashboard filter? */
export function sameFilter(wire: WireFilter | undefined, filter: StatusFilter): boolean {
  if (wire === undefined || wire === null || typeof wire !== "object") return false;
  if (wire.id !== undefined) return false;
  return (wire.status ?? null) === filter;
}
