import { capitalize } from "../format";
import { STATUSES, type StatusFilter } from "../protocol";

interface Props {
  filter: StatusFilter;
  onFilter: (filter: StatusFilter) => void;
  query: string;
  onQuery: (query: string) => void;
}

const CHOICES: readonly StatusFilter[] = [null, ...STATUSES];

/** The status the view subscribes to (one of a radio group) and the search within the rows held. */
export function FilterBar({ filter, onFilter, query, onQuery }: Props) {
  return (
    <div className="toolbar">
      <fieldset className="segmented">
        <legend className="sr-only">Show status</legend>
        {CHOICES.map((status) => {
          const value = status ?? "all";
          return (
            <label key={value} className={filter === status ? "selected" : undefined}>
              <input
                type="radio"
                name="status-filter"
                value={value}
                checked={filter === status}
                onChange={() => onFilter(status)}
              />
              <span>{status === null ? "All" : capitalize(status)}</span>
            </label>
          );
        })}
      </fieldset>
      <div className="search">
        <label htmlFor="search" className="sr-only">
          Search orders
        </label>
        <svg className="search-icon" viewBox="0 0 24 24" width="16" height="16" aria-hidden="true">
          <circle cx="11" cy="11" r="7" fill="none" stroke="currentColor" strokeWidth="2" />
          <path d="M20 20l-3.5-3.5" stroke="currentColor" strokeWidth="2" strokeLinecap="round" />
        </svg>
        <input
          id="search"
          type="search"
          placeholder="Search customer, product or #id"
          value={query}
          onChange={(e) => onQuery(e.target.value)}
        />
      </div>
    </div>
  );
}
