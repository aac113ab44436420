// Snapshots as `snapshot` pages: each page applied as it arrives (the first, `reset`, drops the
// view and forgets the position; each upserts by version and removes its `removed` ids), ended by
// the ack or the `resync` event with the position and the counts.

import { type LiveState, NO_OLDER } from "./liveView";
import { type Counts, type SnapshotPage, sameFilter } from "./protocol";
import { takeCounts } from "./statusCounts";
import { Draft } from "./viewDraft";

/** Changes are held back while a snapshot for the current filter is on its way, or its pages are
 *  arriving (it covers them; the changes after it come after its ack or resync event). */
export function awaitingSnapshot(state: LiveState): boolean {
  if (state.snapshotting) return true;
  const pending = state.subscribing;
  return pending !== null && pending.since === null && !pending.resynced;
}

/** One page of a snapshot of the current filter, applied as it arrives. */
export function onPage(state: LiveState, page: SnapshotPage): LiveState {
  if (page === null || typeof page !== "object" || !sameFilter(page.filter, state.filter)) return state;
  const draft = new Draft(state);
  const reset = page.reset === true;
  if (reset) draft.clear();
  for (const order of Array.isArray(page.orders) ? page.orders : []) draft.upsert(order, state.filter, false);
  for (const id of Array.isArray(page.removed) ? page.removed : []) draft.remove(id);
  if (!reset) return draft.commit({ snapshotting: true });
  return draft.commit({
    // Forgotten until the ack: a snapshot cut off by a disconnect must not be resumed.
    position: null,
    loaded: false,
    snapshotting: true,
    epoch: state.epoch + 1,
    older: NO_OLDER,
  });
}

/** The end of a snapshot (its ack or resync event): exact at `position`, with these counts. */
export function snapshotDone(state: LiveState, position: string, counts: Counts): LiveState {
  return {
    ...state,
    position,
    counts: takeCounts(state.filter, counts, {}),
    loaded: true,
    snapshotting: false,
  };
}
