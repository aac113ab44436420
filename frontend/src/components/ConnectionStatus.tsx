import { formatLatency, relativeTime } from "../format";
import type { LiveState } from "../liveState";
import { explainRefusal, retryText } from "../refusal";

const LABELS: Record<LiveState["phase"], string> = {
  connecting: "Connecting",
  live: "Live",
  reconnecting: "Reconnecting",
  catching_up: "Catching up",
  resynced: "Resynced",
  refused: "Refused",
};

function detail(state: LiveState, now: number): string {
  switch (state.phase) {
    case "connecting":
      return "opening the live feed…";
    case "reconnecting":
      return "connection lost, retrying…";
    case "catching_up":
      return `${state.replayedSoFar} ${state.replayedSoFar === 1 ? "change" : "changes"} replayed so far`;
    case "refused":
      return state.refusal === null ? "" : explainRefusal(state.refusal).detail;
    case "resynced":
      return state.recovery?.kind === "resynced" ? `fresh snapshot (${state.recovery.reason.replace(/_/g, " ")})` : "";
    case "live": {
      const recovery = state.recovery;
      if (recovery?.kind === "caught_up" && now - recovery.at < 60_000) {
        return `caught up: ${recovery.replayed} ${recovery.replayed === 1 ? "change" : "changes"} replayed`;
      }
      if (recovery?.kind === "resynced" && now - recovery.at < 60_000) {
        return `resynced ${relativeTime(new Date(recovery.at).toISOString(), now)}`;
      }
      return "receiving changes as they commit";
    }
  }
}

export function ConnectionStatus({ state, now }: { state: LiveState; now: number }) {
  const text = detail(state, now);
  return (
    <div className="connection" data-testid="connection">
      <div className={`phase phase-${state.phase}`} data-phase={state.phase} role="status" aria-live="polite">
        <span className="phase-dot" aria-hidden="true" />
        <span className="phase-label">
          {state.phase === "refused" && state.refusal !== null ? explainRefusal(state.refusal).label : LABELS[state.phase]}
        </span>
        {text && <span className="phase-detail">· {text}</span>}
        {state.phase === "refused" && state.refusal !== null && (
          // Ticks every second: kept out of the live region (the announcer says it retries).
          <span className="phase-detail" aria-hidden="true">
            · {retryText(state.refusal, now)}
          </span>
        )}
      </div>
      <div
        className="latency"
        data-testid="latency"
        title="Time from the change's commit (committed_at) to its display in this tab"
      >
        <span className="latency-label">Last change</span>{" "}
        <span className="latency-value">{formatLatency(state.latencyMs)}</span>
      </div>
    </div>
  );
}
