import { useCallback, useEffect, useMemo, useState, useSyncExternalStore } from "react";
import type { AgentFeed } from "./agentFeed";
import { AgentPanel } from "./components/AgentPanel";
import { ConflictPanel } from "./components/ConflictPanel";
import { ConnectionStatus } from "./components/ConnectionStatus";
import { FilterBar } from "./components/FilterBar";
import { LoadOlder } from "./components/LoadOlder";
import { Notices, useNotices } from "./components/Notices";
import { OrderForm } from "./components/OrderForm";
import { OrdersTable } from "./components/orders/OrdersTable";
import { RefusalBanner } from "./components/RefusalBanner";
import { StatusTiles } from "./components/StatusTiles";
import { TopBar } from "./components/TopBar";
import { ViewNote } from "./components/ViewNote";
import { type LiveState, mayLoadOlder, searchRows, selectCounts, selectRows } from "./liveState";
import type { LiveStore } from "./liveStore";
import type { StatusFilter } from "./protocol";
import { useNow } from "./useNow";
import { useOrderWrites } from "./useOrderWrites";
import { useRowEditing } from "./useRowEditing";

interface AppProps {
  store: LiveStore;
  /** The agent's action log (the Agent panel); none: no panel. */
  agent?: AgentFeed;
  serverValidationOnly?: boolean;
}

/** Keeps the status filter in the address (`?status=`), so a reload shows the same view. */
function useFilterInAddress(filter: StatusFilter) {
  useEffect(() => {
    const url = new URL(window.location.href);
    if (filter === null) url.searchParams.delete("status");
    else url.searchParams.set("status", filter);
    window.history.replaceState(null, "", url);
  }, [filter]);
}

/** Why the table is empty, or null when it shows rows. */
function emptyMessage(state: LiveState, held: number, found: number, query: string): string | null {
  if (!state.loaded && held === 0) {
    return state.phase === "refused" ? "No orders to show: the server refused the live connection." : "Loading orders…";
  }
  if (held === 0) return state.filter === null ? "No orders yet. Create one with the form." : `No ${state.filter} orders.`;
  if (found === 0) return `No order matches “${query.trim()}”.`;
  return null;
}

export function App({ store, agent, serverValidationOnly = false }: AppProps) {
  const state = useSyncExternalStore(store.listen, store.getState);
  // Every second while a refused connection counts down to its next try.
  const now = useNow(state.phase === "refused" ? 1_000 : 10_000);
  const [query, setQuery] = useState("");
  const { notices, notify, dismiss } = useNotices();
  const editing = useRowEditing();
  const writes = useOrderWrites(store, notify, editing);
  useFilterInAddress(state.filter);

  const rows = useMemo(() => selectRows(state), [state]);
  // From the protocol (ack, resync, every change): the view holds only a window of the orders.
  const counts = useMemo(() => selectCounts(state), [state]);
  const found = useMemo(() => searchRows(rows, query), [rows, query]);
  const { closeEdit, closeConfirm } = editing;
  const setFilter = useCallback(
    (filter: StatusFilter) => {
      closeEdit();
      closeConfirm();
      store.setFilter(filter);
    },
    [store, closeEdit, closeConfirm],
  );

  const filterLabel = state.filter === null ? "all orders" : `${state.filter} orders`;
  const empty = emptyMessage(state, rows.length, found.length, query);
  const stale = state.phase === "reconnecting" || (state.phase === "refused" && state.loaded);

  return (
    <div className="app">
      <TopBar>
        <ConnectionStatus state={state} now={now} />
      </TopBar>

      <main className="layout">
        {state.phase === "refused" && state.refusal !== null && (
          <RefusalBanner refusal={state.refusal} inARow={state.refusedInARow} now={now} onRetry={() => store.retryNow()} />
        )}

        <StatusTiles counts={counts} filter={state.filter} />

        <div className="columns">
          <section className="card orders-card" aria-labelledby="orders-title">
            <div className="orders-head">
              <h2 id="orders-title">Orders</h2>
              <FilterBar filter={state.filter} onFilter={setFilter} query={query} onQuery={setQuery} />
            </div>

            {writes.conflict && (
              <ConflictPanel
                conflict={writes.conflict}
                busy={writes.conflictBusy}
                onReapply={writes.reapply}
                onDiscard={writes.discard}
              />
            )}

            <ViewNote counts={counts} filter={state.filter} query={query} matching={found.length} stale={stale} error={state.error} />

            <div className="table-wrap">
              <OrdersTable
                rows={found}
                editingId={editing.editingId}
                confirmingId={editing.confirmingId}
                onEdit={editing.startEdit}
                onConfirmDelete={editing.confirmDelete}
                onSave={writes.save}
                onDelete={writes.remove}
                serverValidationOnly={serverValidationOnly}
                caption={`Orders, ${filterLabel}, newest change first`}
                registerEditButton={editing.registerEditButton}
              />
              {empty && <p className="empty">{empty}</p>}
            </div>
            <LoadOlder older={state.older} more={mayLoadOlder(state)} onLoad={() => void store.loadOlder()} />
          </section>

          <aside className="side">
            <OrderForm onCreate={writes.create} serverValidationOnly={serverValidationOnly} />
            {serverValidationOnly && (
              <p className="card dev-note">
                Client-side checks are off (<code>?validation=server</code>): the server's own field errors show.
              </p>
            )}
            {agent && <AgentPanel feed={agent} now={now} />}
          </aside>
        </div>
      </main>

      <Notices notices={notices} onDismiss={dismiss} />

      <div className="sr-only" aria-live="polite" aria-atomic="true" data-testid="announcer">
        {state.announcement && <span key={state.announcement.serial}>{state.announcement.text}</span>}
      </div>
    </div>
  );
}
