import { capitalize } from "../format";
import type { ActiveRefusal } from "../liveState";
import { explainRefusal, retryText } from "../refusal";
import "./RefusalBanner.css";

interface Props {
  refusal: ActiveRefusal;
  /** Refusals in a row, this one included. */
  inARow: number;
  now: number;
  onRetry: () => void;
}

/** The server refused the live connection (or the token ended): what it said, what it means, when
 *  the next try is (none for a final one). Not a live region: the countdown ticks every second; the
 *  announcer says it once. */
export function RefusalBanner({ refusal, inARow, now, onRetry }: Props) {
  const text = explainRefusal(refusal);
  const full = refusal.code === "too_many_connections";
  return (
    <section className={`card refusal${full ? " refusal-full" : ""}`} aria-labelledby="refusal-title" data-testid="refusal">
      <h2 id="refusal-title">{text.title}</h2>
      <p>{text.help}</p>
      <p className="refusal-detail">
        <span>
          The server said “{refusal.message}”{refusal.code !== null && <> (<code>{refusal.code}</code>)</>}
          {inARow > 1 && ` · refused ${inARow} times in a row`}
        </span>
        <span className="refusal-retry" data-testid="refusal-retry">
          {capitalize(retryText(refusal, now))}
        </span>
        <button type="button" className="button small" onClick={onRetry} disabled={refusal.retryAt === null && !refusal.final}>
          Retry now
        </button>
      </p>
    </section>
  );
}
