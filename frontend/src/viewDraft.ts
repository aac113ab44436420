// Applying changes, snapshot pages and older pages to a mutable copy of the view (orders,
// highlights, tombstones, departed orders), committed as one new state: idempotent by version,
// deleted ids never brought back, the old maps kept when nothing changed.

import type { Flash, LiveState } from "./liveView";
import type { Order, StatusFilter } from "./protocol";

const MAX_TOMBSTONES = 5000;

/** What one change did to the view (for the announcement). */
export type Effect =
  | { kind: "ignored" }
  | { kind: "inserted"; after: Order }
  | { kind: "updated"; before: Order; after: Order }
  | { kind: "moved_out"; before: Order; after: Order }
  | { kind: "deleted"; before: Order };

export class Draft {
  orders: Map<number, Order>;
  flashes: Map<number, Flash>;
  tombstones: Set<number> | null = null;
  departed: Map<number, number> | null = null;
  serial: number;

  constructor(private readonly state: LiveState) {
    this.orders = new Map(state.orders);
    this.flashes = new Map(state.flashes);
    this.serial = state.serial;
  }

  /** Drops the whole view (a snapshot's first page). */
  clear(): void {
    this.orders = new Map();
    this.flashes = new Map();
    this.serial += 1;
  }

  /** An order a change showed outside the filter, at this version. */
  private depart(id: number, version: number): void {
    if (this.departed === null) this.departed = new Map(this.state.departed);
    this.departed.delete(id); // re-inserted: the newest last
    this.departed.set(id, version);
    while (this.departed.size > MAX_TOMBSTONES) {
      const oldest = this.departed.keys().next().value as number;
      this.departed.delete(oldest);
    }
  }

  private bury(id: number): void {
    if (this.state.tombstones.has(id) && this.tombstones === null) return;
    if (this.tombstones === null) this.tombstones = new Set(this.state.tombstones);
    this.tombstones.add(id);
    while (this.tombstones.size > MAX_TOMBSTONES) {
      const oldest = this.tombstones.values().next().value as number;
      this.tombstones.delete(oldest);
    }
  }

  private isBuried(id: number): boolean {
    return (this.tombstones ?? this.state.tombstones).has(id);
  }

  /** One change (from the feed or from a REST answer), idempotently. */
  apply(id: number, order: Order | null, filter: StatusFilter, now: number): Effect {
    const held = this.orders.get(id);
    if (order === null) {
      this.bury(id);
      if (held === undefined) return { kind: "ignored" };
      this.orders.delete(id);
      this.flashes.delete(id);
      this.serial += 1;
      return { kind: "deleted", before: held };
    }
    if (this.isBuried(id)) return { kind: "ignored" };
    if (held !== undefined && order.version <= held.version) return { kind: "ignored" };
    if (filter !== null && order.status !== filter) {
      this.depart(id, order.version);
      if (held === undefined) return { kind: "ignored" };
      this.orders.delete(id);
      this.flashes.delete(id);
      this.serial += 1;
      return { kind: "moved_out", before: held, after: order };
    }
    this.orders.set(id, order);
    this.serial += 1;
    this.flashes.set(id, { serial: this.serial, at: now });
    return held === undefined ? { kind: "inserted", after: order } : { kind: "updated", before: held, after: order };
  }

  /** An order of a snapshot page or of an older page: kept unless a higher version is held (or,
   *  for an older page, `checkDeparted`, a change showed it at that version outside the filter).
   *  Not highlighted: it is not a change. */
  upsert(order: Order, filter: StatusFilter, checkDeparted: boolean): boolean {
    if (this.isBuried(order.id)) return false;
    if (filter !== null && order.status !== filter) return false;
    if (checkDeparted) {
      const seen = (this.departed ?? this.state.departed).get(order.id);
      if (seen !== undefined && order.version <= seen) return false;
    }
    const held = this.orders.get(order.id);
    if (held !== undefined && order.version <= held.version) return false;
    this.orders.set(order.id, order);
    this.serial += 1;
    return true;
  }

  /** An id a snapshot page lists in `removed` (unknown: ignored). */
  remove(id: number): void {
    if (!this.orders.delete(id)) return;
    this.flashes.delete(id);
    this.serial += 1;
  }

  commit(next: Partial<LiveState>): LiveState {
    const changed = this.serial !== this.state.serial; // else keep the old maps: nothing re-renders
    return {
      ...this.state,
      orders: changed ? this.orders : this.state.orders,
      flashes: changed ? this.flashes : this.state.flashes,
      tombstones: this.tombstones ?? this.state.tombstones,
      departed: this.departed ?? this.state.departed,
      serial: this.serial,
      ...next,
    };
  }
}
