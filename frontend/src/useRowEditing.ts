import { useCallback, useEffect, useRef, useState } from "react";

/**
 * Which row is being edited and which asks to confirm a delete (one at a time), and where the
 * focus goes back when an edit closes: to that row's Edit button, which the table registers
 * through `registerEditButton` (unless the focus already went somewhere else).
 */
export function useRowEditing() {
  const [editingId, setEditingId] = useState<number | null>(null);
  const [confirmingId, setConfirmingId] = useState<number | null>(null);
  const editButtons = useRef(new Map<number, HTMLButtonElement>());
  const lastEdited = useRef<number | null>(null);

  const registerEditButton = useCallback((id: number, button: HTMLButtonElement | null) => {
    if (button) editButtons.current.set(id, button);
    else editButtons.current.delete(id);
  }, []);

  // Runs after the table's effects, so the row that replaced the edit form has registered its button.
  useEffect(() => {
    const closed = lastEdited.current;
    lastEdited.current = editingId;
    if (editingId !== null || closed === null) return;
    if (document.activeElement !== null && document.activeElement !== document.body) return;
    editButtons.current.get(closed)?.focus();
  }, [editingId]);

  const startEdit = useCallback((id: number | null) => {
    setConfirmingId(null);
    setEditingId(id);
  }, []);
  const confirmDelete = useCallback((id: number | null) => {
    setEditingId(null);
    setConfirmingId(id);
  }, []);
  const closeEdit = useCallback(() => setEditingId(null), []);
  const closeConfirm = useCallback(() => setConfirmingId(null), []);

  return { editingId, confirmingId, startEdit, confirmDelete, closeEdit, closeConfirm, registerEditButton };
}
