// The agent panel's state as a pure reducer: the records of the agent's action log
// (docs/agent.md, "The action log over HTTP"), newest first, deduplicated by `seq`, at most
// AGENT_CAP of them, and the state of the event stream they come from. No I/O and no clock:
// agentFeed.ts binds it to an EventSource.

import type { Announcement } from "./liveView";

export const AGENT_CAP = 200;

export const AGENT_KINDS = ["action", "dry_run", "refusal", "model_error", "no_action"] as const;
export type AgentKind = (typeof AGENT_KINDS)[number];

/** One record of the action log, as the service sends it. */
export interface AgentRecord {
  seq: number;
  /** One of AGENT_KINDS; an unknown kind from a newer service is kept and shown as it is. */
  kind: string;
  trigger: string;
  order_id: number | null;
  order_version: number | null;
  tool: string | null;
  arguments: Record<string, unknown>;
  message: string | null;
  reason: string | null;
  model: string | null;
  recorded_at: string;
}

/**
 * - `connecting`: no stream has caught up yet (the first one is opening or loading).
 * - `live`: the current stream has sent its records and `caught_up`; new ones come as appended.
 * - `reconnecting`: a stream that was live was lost; the browser, or the feed, opens another.
 * - `unavailable`: the stream was refused (401, 403) or is not served (404); the feed still tries
 *   again after `retryAt` (none when the token ended and no new one can be had: `ended`).
 */
export type AgentPhase = "connecting" | "live" | "reconnecting" | "unavailable";

export interface AgentState {
  /** Newest first (highest `seq` first), no two with the same `seq`, at most AGENT_CAP. */
  records: AgentRecord[];
  /** The highest `seq` received (a record, or `caught_up`): where a new stream resumes. */
  lastSeq: number | null;
  phase: AgentPhase;
  /** A stream has caught up at least once (the first load is done). */
  everLive: boolean;
  /** The current stream has sent `caught_up`. */
  caughtUp: boolean;
  /** Records with a higher `seq` arrived after the first load (the panel highlights them). */
  loadedUpTo: number | null;
  /** Records added by the current stream before its `caught_up` (after a reconnect). */
  catchingUp: number;
  /** Why the stream is unavailable, or other details of the phase. */
  detail: string | null;
  /** When the feed tries again (phase `unavailable`), in ms since the epoch. */
  retryAt: number | null;
  /** Records that were not valid records (ignored). */
  malformed: number;
  announcement: Announcement | null;
}

export type AgentAction =
  /** The feed opens its first stream (until then it waits: see main.tsx). */
  | { type: "started" }
  /** The stream's connection opened (first, or again after a loss). */
  | { type: "opened" }
  | { type: "record"; data: unknown }
  | { type: "caught_up"; data: unknown }
  /** The connection was lost; the browser reconnects by itself (with Last-Event-ID). */
  | { type: "lost" }
  /** The stream ended for good (an error answer); the feed opens a new one at `retryAt`. */
  | { type: "closed"; retryAt: number; detail: string | null }
  /** Why the stream was closed, found out later: `refused` when it will not be served as things
   *  stand (no token, a wrong one, no agent log on this service). */
  | { type: "explained"; detail: string; refused: boolean }
  /** The token ended (expired, revoked) and no new one can be had: no new stream by itself. */
  | { type: "ended"; detail: string };

export function initialAgentState(): AgentState {
  return {
    records: [],
    lastSeq: null,
    phase: "connecting",
    everLive: false,
    caughtUp: false,
    loadedUpTo: null,
    catchingUp: 0,
    detail: "waiting for the live connection…",
    retryAt: null,
    malformed: 0,
    announcement: null,
  };
}

const KIND_LABELS: Record<AgentKind, string> = {
  action: "Action",
  dry_run: "Dry run",
  refusal: "Refused",
  model_error: "Model error",
  no_action: "No action",
};

export function isAgentKind(kind: string): kind is AgentKind {
  return (AGENT_KINDS as readonly string[]).includes(kind);
}

/** The badge's text: "Action", "Dry run", "Refused", "Model error", "No action". */
export function kindLabel(kind: string): string {
  return isAgentKind(kind) ? KIND_LABELS[kind] : kind.replace(/_/g, " ");
}

/** "pending too long", "shipped", "question". */
export function triggerLabel(trigger: string): string {
  return trigger.replace(/_/g, " ");
}

/** "order #12 v3", "order #12", or null (a question). */
export function orderLabel(record: AgentRecord): string | null {
  if (record.order_id === null) return null;
  return record.order_version === null ? `order #${record.order_id}` : `order #${record.order_id} v${record.order_version}`;
}

/** What the record says: the message of an action or dry run, the reason of the others. */
export function recordText(record: AgentRecord): string | null {
  if (record.kind === "action" || record.kind === "dry_run") return record.message ?? record.reason;
  return record.reason ?? record.message;
}

/** What the screen reader is told about a record that arrives live. */
export function describeRecord(record: AgentRecord): string {
  const order = orderLabel(record);
  const parts = [
    `Agent ${kindLabel(record.kind).toLowerCase()}`,
    `on ${triggerLabel(record.trigger)}`,
    order === null ? null : `for ${order.replace(/ v(\d+)$/, ", version $1")}`,
    record.tool === null ? null : `with ${record.tool}`,
  ].filter((part) => part !== null);
  const text = recordText(record);
  return `${parts.join(" ")}${text ? `: ${text}` : "."}`;
}

// -- reading the wire ---------------------------------------------------------------------------

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value);
const isSeq = (value: unknown): value is number => typeof value === "number" && Number.isSafeInteger(value) && value >= 0;
const text = (value: unknown): string | null => (typeof value === "string" ? value : null);
const count = (value: unknown): number | null => (typeof value === "number" && Number.isSafeInteger(value) ? value : null);

/** A record from an `action` event's data (parsed JSON), or null when it is not one. */
export function parseRecord(data: unknown): AgentRecord | null {
  if (!isObject(data) || !isSeq(data.seq) || typeof data.kind !== "string" || typeof data.trigger !== "string") {
    return null;
  }
  return {
    seq: data.seq,
    kind: data.kind,
    trigger: data.trigger,
    order_id: count(data.order_id),
    order_version: count(data.order_version),
    tool: text(data.tool),
    arguments: isObject(data.arguments) ? data.arguments : {},
    message: text(data.message),
    reason: text(data.reason),
    model: text(data.model),
    recorded_at: text(data.recorded_at) ?? "",
  };
}

/** Adds a record in its place by `seq` (newest first); the same `seq` twice is kept once; beyond
 *  `cap` the oldest go. Answers the same array when nothing changed. */
export function insertRecord(records: AgentRecord[], record: AgentRecord, cap = AGENT_CAP): AgentRecord[] {
  // Usually the newest: it goes first. After a reconnect the order still holds: by seq.
  let at = 0;
  while (at < records.length && records[at].seq > record.seq) at += 1;
  if (at < records.length && records[at].seq === record.seq) return records;
  if (at >= cap) return records; // older than every record kept
  const next = [...records.slice(0, at), record, ...records.slice(at)];
  return next.length > cap ? next.slice(0, cap) : next;
}

function announce(state: AgentState, text: string): Announcement {
  return { text, serial: (state.announcement?.serial ?? 0) + 1 };
}

const maxSeq = (a: number | null, b: number): number => (a === null || b > a ? b : a);

export function reduceAgent(state: AgentState, action: AgentAction): AgentState {
  switch (action.type) {
    case "started":
      return state.phase === "connecting" && !state.everLive ? { ...state, detail: "opening the stream…" } : state;
    case "opened":
      return {
        ...state,
        phase: state.everLive ? "reconnecting" : "connecting",
        caughtUp: false,
        catchingUp: 0,
        detail: state.everLive ? "catching up…" : "loading the agent's actions…",
        retryAt: null,
      };
    case "record": {
      const record = parseRecord(action.data);
      if (record === null) return { ...state, malformed: state.malformed + 1 };
      const records = insertRecord(state.records, record);
      const lastSeq = maxSeq(state.lastSeq, record.seq);
      if (records === state.records) return lastSeq === state.lastSeq ? state : { ...state, lastSeq };
      if (!state.caughtUp) return { ...state, records, lastSeq, catchingUp: state.catchingUp + 1 };
      return { ...state, records, lastSeq, announcement: announce(state, describeRecord(record)) };
    }
    case "caught_up": {
      const seq = isObject(action.data) && isSeq(action.data.seq) ? action.data.seq : null;
      const lastSeq = seq === null ? state.lastSeq : maxSeq(state.lastSeq, seq);
      const back = state.everLive;
      const missed = state.catchingUp;
      return {
        ...state,
        lastSeq,
        phase: "live",
        everLive: true,
        caughtUp: true,
        loadedUpTo: back ? state.loadedUpTo : (lastSeq ?? 0),
        catchingUp: 0,
        detail: null,
        retryAt: null,
        announcement: back
          ? announce(state, `Agent log back: ${missed === 0 ? "no new records" : `${missed} new ${missed === 1 ? "record" : "records"}`}.`)
          : state.announcement,
      };
    }
    case "lost":
      return {
        ...state,
        phase: state.everLive ? "reconnecting" : "connecting",
        caughtUp: false,
        detail: "connection lost, retrying…",
        announcement: state.caughtUp ? announce(state, "Agent log: connection lost, reconnecting.") : state.announcement,
      };
    case "closed":
      return {
        ...state,
        phase: state.everLive ? "reconnecting" : "connecting",
        caughtUp: false,
        detail: action.detail,
        retryAt: action.retryAt,
        announcement: state.caughtUp ? announce(state, "Agent log: connection lost, reconnecting.") : state.announcement,
      };
    case "explained":
      // Only while no stream is open (a later one may be loading already).
      if (state.retryAt === null) return state;
      return { ...state, detail: action.detail, phase: action.refused ? "unavailable" : state.phase };
    case "ended":
      return {
        ...state,
        phase: "unavailable",
        caughtUp: false,
        detail: action.detail,
        retryAt: null,
        announcement: announce(state, `Agent log: ${action.detail}.`),
      };
  }
}

/** The state line's label. */
export function phaseLabel(state: AgentState): string {
  switch (state.phase) {
    case "connecting":
      return "Connecting";
    case "live":
      return "Live";
    case "reconnecting":
      return "Reconnecting";
    case "unavailable":
      return "Unavailable";
  }
}
