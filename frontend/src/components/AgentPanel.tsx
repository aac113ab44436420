import { useId, useSyncExternalStore } from "react";
import {
  type AgentRecord,
  isAgentKind,
  kindLabel,
  orderLabel,
  phaseLabel,
  recordText,
  triggerLabel,
} from "../agentActions";
import type { AgentFeed } from "../agentFeed";
import { relativeTime } from "../format";
import "./AgentPanel.css";

function KindBadge({ kind }: { kind: string }) {
  return (
    <span className={`agent-kind agent-kind-${isAgentKind(kind) ? kind : "other"}`} data-testid="agent-kind">
      {kindLabel(kind)}
    </span>
  );
}

function AgentItem({ record, now, fresh }: { record: AgentRecord; now: number; fresh: boolean }) {
  const order = orderLabel(record);
  const said = recordText(record);
  return (
    <li
      className={`agent-record${fresh ? " agent-fresh" : ""}`}
      data-testid="agent-record"
      data-seq={record.seq}
      data-kind={record.kind}
    >
      <div className="agent-line">
        <span className="agent-what">
          <KindBadge kind={record.kind} />
          <span className="agent-trigger">
            <span className="sr-only">Trigger: </span>
            {triggerLabel(record.trigger)}
          </span>
          {order !== null && <span className="agent-order">{order}</span>}
        </span>
        {record.recorded_at && (
          <time className="agent-time" dateTime={record.recorded_at} title={record.recorded_at}>
            {relativeTime(record.recorded_at, now)}
          </time>
        )}
      </div>
      {record.tool !== null && (
        <div className="agent-tool">
          <span className="sr-only">Tool: </span>
          <code>{record.tool}</code>
        </div>
      )}
      {said !== null && said !== "" && (
        <p className="agent-text" data-testid="agent-text">
          {said}
        </p>
      )}
      {record.model !== null && (
        <div className="agent-model">
          <span className="sr-only">Model: </span>
          {record.model}
        </div>
      )}
    </li>
  );
}

/** The agent's action log, live: newest first, with the stream's state and an announcer. */
export function AgentPanel({ feed, now }: { feed: AgentFeed; now: number }) {
  const state = useSyncExternalStore(feed.listen, feed.getState);
  const id = useId();
  const { records, phase, detail, loadedUpTo } = state;
  let none: string | null = null;
  if (records.length === 0) {
    none = state.everLive ? "No agent actions recorded yet." : phase === "unavailable" ? "No agent actions to show." : "Loading the agent's actions…";
  }
  return (
    <section className="card agent-panel" aria-labelledby={`${id}-title`} data-testid="agent-panel">
      <div className="agent-head">
        <h2 id={`${id}-title`}>Agent</h2>
        <p className={`agent-state agent-state-${phase}`} data-testid="agent-state" data-phase={phase}>
          <span className="phase-dot" aria-hidden="true" />
          <span className="agent-state-label">{phaseLabel(state)}</span>
          {detail && <span className="agent-state-detail"> · {detail}</span>}
        </p>
      </div>
      {records.length > 0 && (
        // Focusable: it scrolls, and a keyboard must be able to scroll it.
        <ol className="agent-list" aria-label="Agent actions, newest first" data-testid="agent-list" tabIndex={0}>
          {records.map((record) => (
            <AgentItem
              key={record.seq}
              record={record}
              now={now}
              fresh={loadedUpTo !== null && record.seq > loadedUpTo}
            />
          ))}
        </ol>
      )}
      {none && <p className="agent-none">{none}</p>}
      <div className="sr-only" aria-live="polite" aria-atomic="true" data-testid="agent-announcer">
        {state.announcement && <span key={state.announcement.serial}>{state.announcement.text}</span>}
      </div>
    </section>
  );
}
