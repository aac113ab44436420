import { useCallback, useEffect, useMemo, useRef, useState, useSyncExternalStore } from "react";
import type { AgentFeed } from "./agentFeed";
import type { OrderDraft } from "./api";
import { AgentPanel } from "./components/AgentPanel";
import { type Conflict, ConflictPanel } from "./components/ConflictPanel";
import { ConnectionStatus } from "./components/ConnectionStatus";
import { OrderForm } from "./components/OrderForm";
import { OrdersTable } from "./components/OrdersTable";
import { RefusalBanner } from "./components/RefusalBanner";
import { capitalize } from "./format";
import { type OrderEdit, formatCount, mayLoadOlder, searchRows, selectCounts, selectRows } from "./liveState";
import type { LiveStore, WriteOutcome } from "./liveStore";
import { type Order, STATUSES, type StatusFilter } from "./protocol";

interface Notice {
  id: number;
  tone: "error" | "info";
  text: string;
}

let noticeIds = 0;

/** The time, renewed every `ms` (for the relative times). */
function useNow(ms: number): number {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    const timer = setInterval(() => setNow(Date.now()), ms);
    return () => clearInterval(timer);
  }, [ms]);
  return now;
}

/** "Showing 500 of 33,500 orders" (or "Showing 6 orders" when all are held). */
function showing(held: number, total: number | null): string {
  const noun = (n: number) => (n === 1 ? "order" : "orders");
  if (total === null || total <= held) return `Showing ${formatCount(held)} ${noun(held)}`;
  return `Showing ${formatCount(held)} of ${formatCount(total)} ${noun(total)}`;
}

interface AppProps {
  store: LiveStore;
  /** The agent's action log (the Agent panel); none: no panel. */
  agent?: AgentFeed;
  serverValidationOnly?: boolean;
}

export function App({ store, agent, serverValidationOnly = false }: AppProps) {
  const state = useSyncExternalStore(store.listen, store.getState);
  // Every second while a refused connection counts down to its next try.
  const now = useNow(state.phase === "refused" ? 1_000 : 10_000);
  const [query, setQuery] = useState("");
  const [editingId, setEditingId] = useState<number | null>(null);
  const [confirmingId, setConfirmingId] = useState<number | null>(null);
  const [conflict, setConflict] = useState<Conflict | null>(null);
  const [conflictBusy, setConflictBusy] = useState(false);
  const [notices, setNotices] = useState<Notice[]>([]);

  const rows = useMemo(() => selectRows(state), [state]);
  // From the protocol (ack, resync, every change): the view holds only a window of the orders.
  const counts = useMemo(() => selectCounts(state), [state]);
  const found = useMemo(() => searchRows(rows, query), [rows, query]);
  const moreOlder = mayLoadOlder(state);

  const notify = useCallback((tone: Notice["tone"], text: string) => {
    const id = ++noticeIds;
    setNotices((list) => [...list.slice(-3), { id, tone, text }]);
    setTimeout(() => setNotices((list) => list.filter((n) => n.id !== id)), tone === "error" ? 12_000 : 6_000);
  }, []);

  // When an edit closes, give the focus back to its row's Edit button (unless it went elsewhere).
  const lastEdited = useRef<number | null>(null);
  useEffect(() => {
    const closed = lastEdited.current;
    lastEdited.current = editingId;
    if (editingId !== null || closed === null) return;
    if (document.activeElement !== null && document.activeElement !== document.body) return;
    document.querySelector<HTMLButtonElement>(`button[aria-label="Edit order ${closed}"]`)?.focus();
  }, [editingId]);

  const startEdit = useCallback((id: number | null) => {
    setConfirmingId(null);
    setEditingId(id);
  }, []);
  const confirmDelete = useCallback((id: number | null) => {
    setEditingId(null);
    setConfirmingId(id);
  }, []);

  useEffect(() => {
    const url = new URL(window.location.href);
    if (state.filter === null) url.searchParams.delete("status");
    else url.searchParams.set("status", state.filter);
    window.history.replaceState(null, "", url);
  }, [state.filter]);

  // -- writes -----------------------------------------------------------------------------------
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
      if (outcome.ok) {
        setEditingId(null);
        return outcome;
      }
      if (refused(order, { kind: "update", changes }, outcome, order.version)) setEditingId(null);
      return outcome;
    },
    [store, refused],
  );

  const remove = useCallback(
    async (order: Order) => {
      setConfirmingId(null);
      const outcome = await store.remove(order.id, order.version);
      if (outcome.ok) notify("info", `Order #${order.id} deleted.`);
      else refused(order, { kind: "delete" }, outcome, order.version);
    },
    [store, notify, refused],
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

  // -- view ---------------------------------------------------------------------------------------
  const filterLabel = state.filter === null ? "all orders" : `${state.filter} orders`;
  const caption = `Orders, ${filterLabel}, newest change first`;
  let empty: string | null = null;
  if (!state.loaded && rows.length === 0) {
    empty = state.phase === "refused" ? "No orders to show: the server refused the live connection." : "Loading orders…";
  } else if (rows.length === 0) empty = state.filter === null ? "No orders yet. Create one with the form." : `No ${state.filter} orders.`;
  else if (found.length === 0) empty = `No order matches “${query.trim()}”.`;

  return (
    <div className="app">
      <header className="topbar">
        <div className="brand">
          <span className="logo" aria-hidden="true">
            <svg viewBox="0 0 24 24" width="22" height="22">
              <path d="M3 12h4l3-8 4 16 3-8h4" fill="none" stroke="currentColor" strokeWidth="2.2" strokeLinecap="round" strokeLinejoin="round" />
            </svg>
          </span>
          <div>
            <h1>orders-live</h1>
            <p className="subtitle">Every order change, the moment it commits</p>
          </div>
        </div>
        <ConnectionStatus state={state} now={now} />
      </header>

      <main className="layout">
        {state.phase === "refused" && state.refusal !== null && (
          <RefusalBanner refusal={state.refusal} inARow={state.refusedInARow} now={now} onRetry={() => store.retryNow()} />
        )}

        <section className="summary" aria-label="Orders per status" data-testid="counts">
          <div className="tile tile-total">
            <span className="tile-label">{state.filter === null ? "Orders" : "In view"}</span>
            <span className="tile-value" data-testid="count-total" data-count={counts.total ?? undefined}>
              {counts.total === null ? "–" : formatCount(counts.total)}
            </span>
          </div>
          {STATUSES.map((status) => {
            const known = state.filter === null || state.filter === status;
            const n = counts.byStatus[status];
            return (
              <div
                key={status}
                className={`tile tile-${status}${known ? "" : " tile-unknown"}`}
                title={known ? undefined : `Not in this view (filtered to ${state.filter})`}
              >
                <span className="tile-label">{capitalize(status)}</span>
                <span className="tile-value" data-testid={`count-${status}`} data-count={n ?? undefined}>
                  {n === null ? "–" : formatCount(n)}
                </span>
              </div>
            );
          })}
        </section>

        <div className="columns">
          <section className="card orders-card" aria-labelledby="orders-title">
            <div className="orders-head">
              <h2 id="orders-title">Orders</h2>
              <div className="toolbar">
                <fieldset className="segmented">
                  <legend className="sr-only">Show status</legend>
                  {([null, ...STATUSES] as StatusFilter[]).map((status) => {
                    const value = status ?? "all";
                    return (
                      <label key={value} className={state.filter === status ? "selected" : undefined}>
                        <input
                          type="radio"
                          name="status-filter"
                          value={value}
                          checked={state.filter === status}
                          onChange={() => {
                            setEditingId(null);
                            setConfirmingId(null);
                            store.setFilter(status);
                          }}
                        />
                        <span>{status === null ? "All" : capitalize(status)}</span>
                      </label>
                    );
                  })}
                </fieldset>
                <div className="search">
                  <label htmlFor="search" className="sr-only">
                    Search orders
                  </label>
                  <svg className="search-icon" viewBox="0 0 24 24" width="16" height="16" aria-hidden="true">
                    <circle cx="11" cy="11" r="7" fill="none" stroke="currentColor" strokeWidth="2" />
                    <path d="M20 20l-3.5-3.5" stroke="currentColor" strokeWidth="2" strokeLinecap="round" />
                  </svg>
                  <input
                    id="search"
                    type="search"
                    placeholder="Search customer, product or #id"
                    value={query}
                    onChange={(e) => setQuery(e.target.value)}
                  />
                </div>
              </div>
            </div>

            {conflict && (
              <ConflictPanel
                conflict={conflict}
                busy={conflictBusy}
                onReapply={reapply}
                onDiscard={() => setConflict(null)}
              />
            )}

            <p className="view-note" aria-live="off">
              <span data-testid="showing" data-shown={counts.held} data-total={counts.total ?? undefined}>
                {showing(counts.held, counts.total)}
                {state.filter ? ` · ${state.filter}` : ""}
              </span>
              {query.trim() && ` · ${formatCount(found.length)} of them match`}
              {(state.phase === "reconnecting" || (state.phase === "refused" && state.loaded)) && (
                <span className="view-stale"> · offline: showing the last known orders until the feed is back</span>
              )}
              {state.error && <span className="view-error"> · {state.error}</span>}
            </p>

            <div className="table-wrap">
              <OrdersTable
                rows={found}
                now={now}
                editingId={editingId}
                confirmingId={confirmingId}
                onEdit={startEdit}
                onConfirmDelete={confirmDelete}
                onSave={save}
                onDelete={remove}
                serverValidationOnly={serverValidationOnly}
                caption={caption}
              />
              {empty && <p className="empty">{empty}</p>}
            </div>
            {(moreOlder || state.older.error) && (
              <div className="load-more">
                {moreOlder && (
                  <button
                    type="button"
                    className="button"
                    data-testid="load-more"
                    disabled={state.older.loading}
                    aria-busy={state.older.loading || undefined}
                    onClick={() => void store.loadOlder()}
                  >
                    {state.older.loading ? "Loading older orders…" : "Load older orders"}
                  </button>
                )}
                {state.older.error && (
                  <span className="view-error" role="alert">
                    Older orders were not loaded: {state.older.error}
                  </span>
                )}
              </div>
            )}
          </section>

          <aside className="side">
            <OrderForm onCreate={create} serverValidationOnly={serverValidationOnly} />
            {serverValidationOnly && (
              <p className="card dev-note">
                Client-side checks are off (<code>?validation=server</code>): the server's own field errors show.
              </p>
            )}
            {agent && <AgentPanel feed={agent} now={now} />}
          </aside>
        </div>
      </main>

      <div className="notices" aria-live="polite">
        {notices.map((notice) => (
          <div key={notice.id} className={`notice notice-${notice.tone}`} role={notice.tone === "error" ? "alert" : "status"}>
            <span>{notice.text}</span>
            <button
              type="button"
              className="notice-close"
              aria-label="Dismiss"
              onClick={() => setNotices((list) => list.filter((n) => n.id !== notice.id))}
            >
              ×
            </button>
          </div>
        ))}
      </div>

      <div className="sr-only" aria-live="polite" aria-atomic="true" data-testid="announcer">
        {state.announcement && <span key={state.announcement.serial}>{state.announcement.text}</span>}
      </div>
    </div>
  );
}
