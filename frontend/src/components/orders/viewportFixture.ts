// jsdom lays nothing out: every element's client box is 0 × 0, so the table's virtualiser, which
// reads its scroll box's clientHeight, would put no row in the document. A component test of the
// table gives every element a client box (a desktop window's) for its duration.

import { afterEach, beforeEach, vi } from "vitest";

export function withViewport(height = 800, width = 1280): void {
  beforeEach(() => {
    vi.spyOn(Element.prototype, "clientHeight", "get").mockReturnValue(height);
    vi.spyOn(Element.prototype, "clientWidth", "get").mockReturnValue(width);
  });
  afterEach(() => {
    vi.restoreAllMocks();
  });
}
