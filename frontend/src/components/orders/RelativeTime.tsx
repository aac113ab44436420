import { useSyncExternalStore } from "react";
import { relativeTime } from "../../format";
import { type Ticker, relativeTimes } from "../../ticker";

/** "42 s ago", from the page's one shared ticker: a tick re-renders this cell only when its text
 *  changes, and only while it is mounted (a virtualised row off screen reads nothing). */
export function RelativeTime({ iso, ticker = relativeTimes }: { iso: string; ticker?: Ticker }) {
  const text = useSyncExternalStore(ticker.subscribe, () => relativeTime(iso, ticker.now()));
  return (
    <time dateTime={iso} title={iso}>
      {text}
    </time>
  );
}
