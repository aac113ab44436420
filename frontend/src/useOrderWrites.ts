import { useCallback, useState } from "react";
import type { OrderDraft } from "./api";
import type { Conflict } from "./components/ConflictPanel";
import type { Notify } from "./components/Notices";
import type { OrderEdit } from "./liveState";
import type { LiveStore, WriteOutcome } from "./liveStore";
import type { Order } from "./protocol";

export interface RowClosers {
  closeEdit: () => void;
  closeConfirm: () => void;
}

/**
 * This tab's writes (create, save an edit, delete) and the conflict a refused one leaves: each
 * outcome is told through `notify`; a 409 with the current order opens the conflict, which can be
 * re-applied to that version or discarded. `rows` closes a row's edit, or its delete confirmation.
 */
/** What the writes need of the store. */
export type OrderWriter = Pick<LiveStore, "create" | "update" | "remove">;

export function useOrderWrites(store: OrderWriter, notify: Notify, rows: RowClosers) {
  const { closeEdit, closeConfirm } = rows;
  const [conflict, setConflict] = useState<Conflict | null>(null);
  const [conflictBusy, setConflictBusy] = useState(false);

  const create = useCallback(
    async (draft: OrderDraft): Promise<WriteOutcome> => {
      const outcome = await store.create(draft);
      if (!outcome.ok) notify("error", `The new order was not created: ${outcome.message}`);
      return outcome;
    },
    [store, notify],
  );

  /** Handles a refused update or delete; answers whether the edit may close. */
  const refused = useCallback(
    (order: Order, attempted: Conflict["attempted"], outcome: WriteOutcome & { ok: false }, baseVersion: number) => {
      const what = attempted.kind === "delete" ? "deleted" : "saved";
      if (outcome.status === 409 && outcome.current) {
        setConflict({ id: order.id, attempted, baseVersion, current: outcome.current });
        notify("error", `Order #${order.id} was not ${what}: it changed in the meantime.`);
        return true;
      }
      if (outcome.status === 404) {
        notify("error", `Order #${order.id} was not ${what}: it no longer exists.`);
        return true;
      }
      const undone = attempted.kind === "delete" ? "It is back in the list." : "Your change was undone.";
      notify("error", `Order #${order.id} was not ${what}: ${outcome.message} ${undone}`);
      return false;
    },
    [notify],
  );

  const save = useCallback(
    async (order: Order, changes: OrderEdit): Promise<WriteOutcome | null> => {
      const outcome = await store.update(order.id, changes, order.version);
      if (outcome.ok || refused(order, { kind: "update", changes }, outcome, order.version)) closeEdit();
      return outcome;
    },
    [store, refused, closeEdit],
  );

  const remove = useCallback(
    async (order: Order) => {
      closeConfirm();
      const outcome = await store.remove(order.id, order.version);
      if (outcome.ok) notify("info", `Order #${order.id} deleted.`);
      else refused(order, { kind: "delete" }, outcome, order.version);
    },
    [store, notify, refused, closeConfirm],
  );

  const reapply = useCallback(async () => {
    if (conflict === null) return;
    const { current, attempted } = conflict;
    setConflictBusy(true);
    const outcome =
      attempted.kind === "delete"
        ? await store.remove(current.id, current.version)
        : await store.update(current.id, attempted.changes, current.version);
    setConflictBusy(false);
    if (outcome.ok) {
      setConflict(null);
      notify("info", `Order #${current.id} ${attempted.kind === "delete" ? "deleted" : "saved"}.`);
    } else if (outcome.status === 409 && outcome.current) {
      setConflict({ ...conflict, baseVersion: current.version, current: outcome.current });
    } else {
      setConflict(null);
      refused(current, attempted, outcome, current.version);
    }
  }, [conflict, store, notify, refused]);

  const discard = useCallback(() => setConflict(null), []);

  return { create, save, remove, conflict, conflictBusy, reapply, discard };
}
