// The counts per status: taken from the protocol (ack, resync, each change), never from the
// orders held, which are only a window.

import type { LiveState } from "./liveView";
import { type Counts, STATUSES, type Status, type StatusFilter } from "./protocol";

/** 33500 -> "33,500". */
export function formatCount(n: number): string {
  return n.toLocaleString("en-US");
}

/** The statuses a filter covers. */
export function coveredStatuses(filter: StatusFilter): readonly Status[] {
  return filter === null ? STATUSES : [filter];
}

/** Counts from the wire, for the statuses the filter covers, laid over `base`. */
export function takeCounts(filter: StatusFilter, wire: Counts | undefined, base: Counts): Counts {
  if (wire === undefined || wire === null || typeof wire !== "object") return base;
  const next: Counts = { ...base };
  for (const status of coveredStatuses(filter)) {
    const n = wire[status];
    if (typeof n === "number" && Number.isFinite(n)) next[status] = n;
  }
  return next;
}

/** How many orders match the filter, from the protocol's counts; null while one is unknown. */
export function totalCount(state: Pick<LiveState, "filter" | "counts">): number | null {
  let total = 0;
  for (const status of coveredStatuses(state.filter)) {
    const n = state.counts[status];
    if (n === undefined) return null;
    total += n;
  }
  return total;
}

export interface StatusCounts {
  /** Per status, for the statuses the filter covers; null: unknown (not covered, or no ack yet). */
  byStatus: Record<Status, number | null>;
  /** Orders matching the filter (null while unknown). */
  total: number | null;
  /** Orders the view holds (the window, plus changed and loaded older orders). */
  held: number;
}

/** The counts to show: from the protocol (ack, resync, changes), not from counting held orders. */
export function selectCounts(state: LiveState): StatusCounts {
  const covered = coveredStatuses(state.filter);
  const byStatus = {} as Record<Status, number | null>;
  for (const status of STATUSES) byStatus[status] = covered.includes(status) ? (state.counts[status] ?? null) : null;
  return { byStatus, total: totalCount(state), held: state.orders.size };
}
