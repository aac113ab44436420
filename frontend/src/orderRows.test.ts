// The rows to show: sorted as the server sorts, searched client-side.

import { describe, expect, it } from "vitest";
import { ids, live, order } from "./liveFixtures";
import { searchRows, selectRows } from "./orderRows";

describe("selectors", () => {
  it("sorts newest change first, ties by higher id", () => {
    const same = "2026-11-24T00:00:00.000Z";
    const state = live(null, [
      order(1, 1, "pending", { updated_at: same }),
      order(2, 1, "pending", { updated_at: same }),
      order(3, 1, "pending", { updated_at: "2026-11-24T00:00:01.000Z" }),
    ]);
    expect(ids(state)).toEqual([3, 2, 1]);
  });

  it("searches customer, product and id", () => {
    const rows = selectRows(
      live(null, [
        order(1, 1, "pending", { customer_name: "Ada Lovelace", product_name: "Desk lamp" }),
        order(12, 1, "shipped", { customer_name: "Grace Hopper", product_name: "Webcam" }),
      ]),
    );
    expect(searchRows(rows, "ada").map((r) => r.order.id)).toEqual([1]);
    expect(searchRows(rows, "WEBCAM").map((r) => r.order.id)).toEqual([12]);
    expect(searchRows(rows, "#12").map((r) => r.order.id)).toEqual([12]);
    expect(searchRows(rows, "grace cam").map((r) => r.order.id)).toEqual([12]);
    expect(searchRows(rows, "  ").length).toBe(2);
    expect(searchRows(rows, "nobody").length).toBe(0);
  });
});
