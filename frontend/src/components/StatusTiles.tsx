import { capitalize } from "../format";
import { type StatusCounts, formatCount } from "../liveState";
import { STATUSES, type StatusFilter } from "../protocol";

interface Props {
  counts: StatusCounts;
  filter: StatusFilter;
}

/** The count of orders in total and per status; a status the filter hides shows as unknown. */
export function StatusTiles({ counts, filter }: Props) {
  return (
    <section className="summary" aria-label="Orders per status" data-testid="counts">
      <div className="tile tile-total">
        <span className="tile-label">{filter === null ? "Orders" : "In view"}</span>
        <span className="tile-value" data-testid="count-total" data-count={counts.total ?? undefined}>
          {counts.total === null ? "–" : formatCount(counts.total)}
        </span>
      </div>
      {STATUSES.map((status) => {
        const known = filter === null || filter === status;
        const n = counts.byStatus[status];
        return (
          <div
            key={status}
            className={`tile tile-${status}${known ? "" : " tile-unknown"}`}
            title={known ? undefined : `Not in this view (filtered to ${filter})`}
          >
            <span className="tile-label">{capitalize(status)}</span>
            <span className="tile-value" data-testid={`count-${status}`} data-count={n ?? undefined}>
              {n === null ? "–" : formatCount(n)}
            </span>
          </div>
        );
      })}
    </section>
  );
}
