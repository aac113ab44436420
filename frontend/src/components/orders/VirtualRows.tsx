import { type Virtualizer, defaultRangeExtractor, useVirtualizer } from "@tanstack/react-virtual";
import { type ReactNode, useRef } from "react";
import type { Row } from "../../liveState";

/** A row's height before any is measured (px). */
const ESTIMATED_HEIGHT = 46;

interface VirtualRowsProps {
  rows: readonly Row[];
  /** The box the table scrolls in (null until it is in the document). */
  scrollBox: HTMLDivElement | null;
  /** A row kept in the document even out of view (the one being edited keeps its form), or -1. */
  keepIndex: number;
  renderRow: (row: Row, index: number, measure: (element: HTMLTableRowElement | null) => void) => ReactNode;
}

/** The rows in view of a long table, between spacer rows standing for the others: a window of
 *  10,000 orders puts as many rows in the document as one of 50. Each row says where it is
 *  (aria-rowindex; the table has aria-rowcount). */
export function VirtualRows({ rows, scrollBox, keepIndex, renderRow }: VirtualRowsProps) {
  // The last height a ResizeObserver reported: what a row that has not been measured yet is taken
  // to be. A row is never measured by reading its layout when it mounts (TanStack's default reads
  // offsetHeight, a forced layout per row that scrolls or moves into view: at 50 changes/s that
  // was a third of the page's layout time); its ResizeObserver, which runs after the frame's own
  // layout, corrects the size if it differs (a row being edited is taller).
  const typical = useRef(ESTIMATED_HEIGHT);
  const virtualizer = useVirtualizer<HTMLDivElement, HTMLTableRowElement>({
    count: rows.length,
    getScrollElement: () => scrollBox,
    estimateSize: () => typical.current,
    measureElement: (element, entry, instance) => observedHeight(element, entry, instance, typical, keepIndex),
    getItemKey: (index) => rows[index].order.id,
    overscan: 6,
    rangeExtractor: (range) => {
      const indexes = defaultRangeExtractor(range);
      if (keepIndex < 0 || indexes.includes(keepIndex)) return indexes;
      return [...indexes, keepIndex].sort((a, b) => a - b);
    },
  });
  const out: ReactNode[] = [];
  let end = 0;
  for (const item of virtualizer.getVirtualItems()) {
    if (item.start > end) out.push(<Spacer key={`gap-${item.index}`} height={item.start - end} />);
    out.push(renderRow(rows[item.index], item.index, virtualizer.measureElement));
    end = item.end;
  }
  const total = virtualizer.getTotalSize();
  if (total > end) out.push(<Spacer key="gap-end" height={total - end} />);
  return out;
}

function observedHeight(
  element: HTMLTableRowElement,
  entry: ResizeObserverEntry | undefined,
  instance: Virtualizer<HTMLDivElement, HTMLTableRowElement>,
  typical: { current: number },
  editedIndex: number,
): number {
  const box = entry?.borderBoxSize?.[0];
  if (box === undefined) return instance.options.estimateSize(instance.indexFromElement(element));
  const height = Math.round(box.blockSize);
  // The row being edited (its form) is no typical row: taken as one, it made the row that replaces
  // it when the edit closes (a new element, measured first by this estimate) keep the form's
  // height in the virtualizer, which could then leave that row out of view for good.
  if (height > 0 && instance.indexFromElement(element) !== editedIndex) typical.current = height;
  return height;
}

function Spacer({ height }: { height: number }) {
  return (
    <tr className="spacer" aria-hidden="true" style={{ height }}>
      <td colSpan={7} />
    </tr>
  );
}
