// The highlight of a row a change was applied to. It fades the opacity of the row's ::after (a
// layer of the --flash colour) with the Web Animations API: compositor-only, no layout and no
// repaint of the row, and no forced layout to restart it. In a burst only the rows of the latest
// changes light up (HIGHLIGHT_LIMIT), and nothing does when the user prefers reduced motion.

import type { Flash } from "./liveView";

/** In a burst, only the rows of this many latest changes are highlighted. */
export const HIGHLIGHT_LIMIT = 8;
/** How long the highlight fades. */
export const HIGHLIGHT_MS = 1_600;
/** A change older than this when its row renders (a row scrolled into view, a filter switched
 *  back) is not highlighted. */
export const FRESH_MS = 2_000;

export const HIGHLIGHT_KEYFRAMES: Keyframe[] = [{ opacity: 1 }, { opacity: 0 }];
export const HIGHLIGHT_TIMING: KeyframeAnimationOptions = {
  duration: HIGHLIGHT_MS,
  easing: "ease-out",
  pseudoElement: "::after",
};

/** The flashes of the `limit` latest changes (highest serials), by id. */
export function latestFlashes(flashes: ReadonlyMap<number, Flash>, limit = HIGHLIGHT_LIMIT): Map<number, Flash> {
  if (flashes.size <= limit) return new Map(flashes);
  const latest: [number, Flash][] = []; // kept sorted by serial, highest first, at most `limit`
  for (const entry of flashes) {
    if (latest.length === limit && entry[1].serial <= latest[limit - 1][1].serial) continue;
    let at = latest.length;
    while (at > 0 && latest[at - 1][1].serial < entry[1].serial) at -= 1;
    latest.splice(at, 0, entry);
    if (latest.length > limit) latest.pop();
  }
  return new Map(latest);
}

/** Whether a row shows its highlight for `flash` now. */
export function highlightDue(flash: Flash | undefined, now: number, reducedMotion: boolean): boolean {
  return flash !== undefined && !reducedMotion && now - flash.at <= FRESH_MS;
}

/** The user's `prefers-reduced-motion: reduce` (false where it cannot be asked). */
export function prefersReducedMotion(media: ((query: string) => { matches: boolean }) | undefined = globalThis.matchMedia): boolean {
  return media?.call(globalThis, "(prefers-reduced-motion: reduce)").matches ?? false;
}
