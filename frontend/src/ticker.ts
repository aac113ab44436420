// One clock for every relative time on the page ("42 s ago"): a single interval, running only
// while something on screen reads it. Each reader selects its own text from it
// (`useSyncExternalStore(ticker.subscribe, () => relativeTime(iso, ticker.now()))`), so that a tick
// re-renders only the mounted cells whose text changed, not every row of the table.

export interface Interval {
  set(fn: () => void, ms: number): unknown;
  clear(handle: unknown): void;
}

const BROWSER_INTERVAL: Interval = {
  set: (fn, ms) => setInterval(fn, ms),
  clear: (handle) => clearInterval(handle as ReturnType<typeof setInterval>),
};

export class Ticker {
  private readonly listeners = new Set<() => void>();
  private handle: unknown = null;
  private current: number;

  constructor(
    readonly everyMs: number,
    private readonly clock: () => number = Date.now,
    private readonly interval: Interval = BROWSER_INTERVAL,
  ) {
    this.current = clock();
  }

  /** The time of the last tick (read during render: stable between ticks). */
  now = (): number => this.current;

  subscribe = (listener: () => void): (() => void) => {
    if (this.listeners.size === 0) {
      this.current = this.clock(); // it slept while nobody read it
      this.handle = this.interval.set(() => this.tick(), this.everyMs);
    }
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
      if (this.listeners.size > 0 || this.handle === null) return;
      this.interval.clear(this.handle);
      this.handle = null;
    };
  };

  /** Whether the interval runs (someone reads the time). */
  get running(): boolean {
    return this.handle !== null;
  }

  private tick(): void {
    this.current = this.clock();
    for (const listener of this.listeners) listener();
  }
}

/** The page's ticker for the table's "Updated" cells. */
export const relativeTimes = new Ticker(10_000);
