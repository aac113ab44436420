// @vitest-environment jsdom
import { act, renderHook } from "@testing-library/react";
import { describe, expect, it, vi } from "vitest";
import { order } from "./liveFixtures";
import type { WriteOutcome } from "./liveStore";
import { type OrderWriter, useOrderWrites } from "./useOrderWrites";

const refused = (status: number, extra: Partial<WriteOutcome & { ok: false }> = {}): WriteOutcome => ({
  ok: false,
  status,
  message: "Refused.",
  fields: {},
  ...extra,
});

function setup(answers: WriteOutcome[]) {
  const next = async () => answers.shift() ?? { ok: true, order: null };
  const store = { create: vi.fn(next), update: vi.fn(next), remove: vi.fn(next) } satisfies OrderWriter;
  const notify = vi.fn();
  const rows = { closeEdit: vi.fn(), closeConfirm: vi.fn() };
  const { result } = renderHook(() => useOrderWrites(store, notify, rows));
  return { store, notify, rows, result };
}

describe("useOrderWrites", () => {
  it("saves an edit against the version it started from, and closes it", async () => {
    const { store, rows, result } = setup([{ ok: true, order: null }]);
    await act(() => result.current.save(order(5, 2), { status: "shipped" }));
    expect(store.update).toHaveBeenCalledExactlyOnceWith(5, { status: "shipped" }, 2);
    expect(rows.closeEdit).toHaveBeenCalledOnce();
  });

  it("opens a conflict on a 409, and re-applies the change to the server's version", async () => {
    const current = order(5, 3, "delivered");
    const { store, notify, rows, result } = setup([refused(409, { current }), { ok: true, order: null }]);
    await act(() => result.current.save(order(5, 2), { status: "shipped" }));
    expect(result.current.conflict).toEqual({
      id: 5,
      attempted: { kind: "update", changes: { status: "shipped" } },
      baseVersion: 2,
      current,
    });
    expect(notify).toHaveBeenLastCalledWith("error", "Order #5 was not saved: it changed in the meantime.");
    expect(rows.closeEdit).toHaveBeenCalledOnce();

    await act(() => result.current.reapply());
    expect(store.update).toHaveBeenLastCalledWith(5, { status: "shipped" }, 3);
    expect(result.current.conflict).toBeNull();
    expect(notify).toHaveBeenLastCalledWith("info", "Order #5 saved.");
  });

  it("keeps the edit open when a save is refused for another reason, saying the change was undone", async () => {
    const { notify, rows, result } = setup([refused(503, { message: "The database is down." })]);
    await act(() => result.current.save(order(5, 2), { status: "shipped" }));
    expect(rows.closeEdit).not.toHaveBeenCalled();
    expect(result.current.conflict).toBeNull();
    expect(notify).toHaveBeenCalledExactlyOnceWith(
      "error",
      "Order #5 was not saved: The database is down. Your change was undone.",
    );
  });

  it("deletes after the confirmation closes, and tells a gone order apart", async () => {
    const { store, notify, rows, result } = setup([{ ok: true, order: null }, refused(404)]);
    await act(() => result.current.remove(order(5, 2)));
    expect(rows.closeConfirm).toHaveBeenCalledOnce();
    expect(store.remove).toHaveBeenCalledExactlyOnceWith(5, 2);
    expect(notify).toHaveBeenLastCalledWith("info", "Order #5 deleted.");
    await act(() => result.current.remove(order(6, 1)));
    expect(notify).toHaveBeenLastCalledWith("error", "Order #6 was not deleted: it no longer exists.");
  });

  it("says so when a new order is not created", async () => {
    const { notify, result } = setup([refused(503, { message: "The database is down." })]);
    await act(() => result.current.create({ customer_name: "Ada", product_name: "Lamp", status: "pending" }));
    expect(notify).toHaveBeenCalledExactlyOnceWith("error", "The new order was not created: The database is down.");
  });
});
