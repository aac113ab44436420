import type { Older } from "../liveView";

interface Props {
  older: Older;
  /** More orders than the view holds may exist. */
  more: boolean;
  onLoad: () => void;
}

/** The button that loads the next page of older orders, and why the last page failed. */
export function LoadOlder({ older, more, onLoad }: Props) {
  if (!more && !older.error) return null;
  return (
    <div className="load-more">
      {more && (
        <button
          type="button"
          className="button"
          data-testid="load-more"
          disabled={older.loading}
          aria-busy={older.loading || undefined}
          onClick={onLoad}
        >
          {older.loading ? "Loading older orders…" : "Load older orders"}
        </button>
      )}
      {older.error && (
        <span className="view-error" role="alert">
          Older orders were not loaded: {older.error}
        </span>
      )}
    </div>
  );
}
