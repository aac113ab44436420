import { useCallback, useEffect, useRef } from "react";
import type { Flash } from "../../liveView";
import { HIGHLIGHT_KEYFRAMES, HIGHLIGHT_TIMING, highlightDue, prefersReducedMotion } from "../../rowHighlight";

/** Highlights the row a change was applied to (not one that merely re-renders or moves): a Web
 *  Animations API fade of the opacity of its first cell's ::after, a layer that covers the row
 *  (OrdersTable.css), which needs no layout and restarts by itself. The row holds the class
 *  `flash` (which gives the cell the ::after) while the fade runs. Returns the row's ref callback,
 *  which also hands the row to `measure` (the virtualised table's ResizeObserver), if given. */
export function useRowHighlight<E extends Element>(flash: Flash | undefined, measure?: (element: E | null) => void) {
  const ref = useRef<E | null>(null);
  useEffect(() => {
    const element = ref.current;
    const layer = element?.firstElementChild;
    if (element === null || !layer || typeof layer.animate !== "function") return;
    if (!highlightDue(flash, Date.now(), prefersReducedMotion())) return;
    element.classList.add("flash");
    const fade = layer.animate(HIGHLIGHT_KEYFRAMES, HIGHLIGHT_TIMING);
    const done = () => {
      // A later change of the same row started a new fade: that one takes the class off.
      if (!element.getAnimations({ subtree: true }).some((other) => other !== fade && other.playState === "running")) {
        element.classList.remove("flash");
      }
    };
    fade.addEventListener("finish", done);
    fade.addEventListener("cancel", done);
  }, [flash]);
  return useCallback(
    (element: E | null) => {
      ref.current = element;
      measure?.(element);
    },
    [measure],
  );
}
