// The texts for the aria-live region: what a change did to the view, and how many orders it shows.

import type { Announcement, LiveState } from "./liveView";
import type { StatusFilter } from "./protocol";
import { formatCount, totalCount } from "./statusCounts";
import type { Effect } from "./viewDraft";

/** What a change did, in words (null: it did nothing to the view). */
export function describeEffect(effect: Effect, filter: StatusFilter): string | null {
  switch (effect.kind) {
    case "ignored":
      return null;
    case "inserted": {
      const o = effect.after;
      return `Order ${o.id} added: ${o.customer_name}, ${o.product_name}, ${o.status}.`;
    }
    case "updated": {
      const { before, after } = effect;
      if (before.status !== after.status) return `Order ${after.id} is now ${after.status}.`;
      return `Order ${after.id} updated: ${after.customer_name}, ${after.product_name}.`;
    }
    case "moved_out":
      return `Order ${effect.after.id} is now ${effect.after.status} and left the ${filter ?? "current"} view.`;
    case "deleted":
      return `Order ${effect.before.id} deleted.`;
  }
}

/** The next announcement (a new serial), or the current one when there is nothing to say. */
export function announce(state: LiveState, text: string | null): Announcement | null {
  if (text === null) return state.announcement;
  return { text, serial: (state.announcement?.serial ?? 0) + 1 };
}

export function plural(n: number, one: string, many = `${one}s`): string {
  return `${formatCount(n)} ${n === 1 ? one : many}`;
}

export function lower(text: string): string {
  return text.charAt(0).toLowerCase() + text.slice(1);
}

/** "Showing 2 orders" or "Showing 500 of 33,500 orders". */
export function showingText(state: LiveState): string {
  const held = state.orders.size;
  const total = totalCount(state);
  const of = total !== null && total > held ? ` of ${formatCount(total)}` : "";
  return `Showing ${formatCount(held)}${of} ${held === 1 && of === "" ? "order" : "orders"}${
    state.filter === null ? "" : ` with status ${state.filter}`
  }`;
}
