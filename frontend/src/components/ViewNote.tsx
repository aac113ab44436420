import { type StatusCounts, formatCount } from "../liveState";
import type { StatusFilter } from "../protocol";

/** "Showing 500 of 33,500 orders" (or "Showing 6 orders" when all are held). */
export function showing(held: number, total: number | null): string {
  const noun = (n: number) => (n === 1 ? "order" : "orders");
  if (total === null || total <= held) return `Showing ${formatCount(held)} ${noun(held)}`;
  return `Showing ${formatCount(held)} of ${formatCount(total)} ${noun(total)}`;
}

interface Props {
  counts: StatusCounts;
  filter: StatusFilter;
  query: string;
  matching: number;
  /** The feed is down: the rows are the last known ones. */
  stale: boolean;
  error: string | null;
}

/** What the table shows: how many orders of how many, how many match the search, and whether it is stale. */
export function ViewNote({ counts, filter, query, matching, stale, error }: Props) {
  return (
    <p className="view-note" aria-live="off">
      <span data-testid="showing" data-shown={counts.held} data-total={counts.total ?? undefined}>
        {showing(counts.held, counts.total)}
        {filter ? ` · ${filter}` : ""}
      </span>
      {query.trim() && ` · ${formatCount(matching)} of them match`}
      {stale && <span className="view-stale"> · offline: showing the last known orders until the feed is back</span>}
      {error && <span className="view-error"> · {error}</span>}
    </p>
  );
}
