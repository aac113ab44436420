import { defaultRangeExtractor, useVirtualizer } from "@tanstack/react-virtual";
import type { ReactNode } from "react";
import type { Row } from "../../liveState";

/** A row's height before it is measured (px). */
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
  const virtualizer = useVirtualizer<HTMLDivElement, HTMLTableRowElement>({
    count: rows.length,
    getScrollElement: () => scrollBox,
    estimateSize: () => ESTIMATED_HEIGHT,
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

function Spacer({ height }: { height: number }) {
  return (
    <tr className="spacer" aria-hidden="true" style={{ height }}>
      <td colSpan={7} />
    </tr>
  );
}
