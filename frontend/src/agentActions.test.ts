import { describe, expect, it } from "vitest";
import {
  AGENT_CAP,
  type AgentAction,
  type AgentRecord,
  type AgentState,
  describeRecord,
  initialAgentState,
  insertRecord,
  kindLabel,
  orderLabel,
  parseRecord,
  phaseLabel,
  recordText,
  reduceAgent,
  triggerLabel,
} from "./agentActions";

function record(seq: number, overrides: Partial<AgentRecord> = {}): AgentRecord {
  return {
    seq,
    kind: "action",
    trigger: "shipped",
    order_id: 12,
    order_version: 3,
    tool: "notify_customer",
    arguments: { order_id: 12, message: "Your order #12 has shipped." },
    message: "Your order #12 has shipped.",
    reason: null,
    model: "offline-planner",
    recorded_at: "2026-12-01T12:00:00.123Z",
    ...overrides,
  };
}

const run = (state: AgentState, ...actions: AgentAction[]) => actions.reduce(reduceAgent, state);
const seqs = (state: AgentState) => state.records.map((r) => r.seq);
const got = (...list: AgentRecord[]): AgentAction[] => list.map((r) => ({ type: "record", data: r }));

/** A stream opened, sent these records, then caught_up. */
function loaded(...list: AgentRecord[]): AgentState {
  const last = list.length === 0 ? 0 : Math.max(...list.map((r) => r.seq));
  return run(initialAgentState(), { type: "opened" }, ...got(...list), { type: "caught_up", data: { seq: last } });
}

describe("the order of the records", () => {
  it("shows the newest first, whatever order they come in", () => {
    const state = loaded(record(1), record(2), record(3));
    expect(seqs(state)).toEqual([3, 2, 1]);
    const later = run(state, ...got(record(5), record(4)));
    expect(seqs(later)).toEqual([5, 4, 3, 2, 1]);
  });

  it("keeps the seq order after a reconnect that sends older and newer records again", () => {
    let state = loaded(record(10), record(11), record(12));
    state = run(state, { type: "lost" }, { type: "opened" });
    // The service resends from its own idea of the position: a record already held, then new ones.
    state = run(state, ...got(record(12), record(13), record(14)), { type: "caught_up", data: { seq: 14 } });
    state = run(state, ...got(record(15)));
    expect(seqs(state)).toEqual([15, 14, 13, 12, 11, 10]);
    expect(state.lastSeq).toBe(15);
  });

  it("places a late record with a lower seq in its place", () => {
    const state = run(loaded(record(1), record(3)), ...got(record(2)));
    expect(seqs(state)).toEqual([3, 2, 1]);
  });
});

describe("dedupe by seq", () => {
  it("keeps a record sent twice once (the first copy)", () => {
    const first = loaded(record(1), record(2));
    const again = run(first, ...got(record(2, { message: "a second copy" })));
    expect(again.records).toBe(first.records);
    expect(seqs(again)).toEqual([2, 1]);
    expect(again.records[0].message).toBe("Your order #12 has shipped.");
  });

  it("says nothing for a duplicate", () => {
    const state = loaded(record(1));
    const after = run(state, ...got(record(1)));
    expect(after.announcement).toBe(state.announcement);
    expect(after).toBe(state);
  });

  it("answers the same array when nothing is added", () => {
    const records = [record(2), record(1)];
    expect(insertRecord(records, record(1))).toBe(records);
  });
});

describe("the cap", () => {
  it(`keeps at most ${AGENT_CAP} records, dropping the oldest`, () => {
    const many = Array.from({ length: AGENT_CAP + 50 }, (_, i) => record(i + 1));
    const state = loaded(...many);
    expect(state.records).toHaveLength(AGENT_CAP);
    expect(state.records[0].seq).toBe(AGENT_CAP + 50);
    expect(state.records.at(-1)?.seq).toBe(51);
    // One more: the oldest held goes.
    const more = run(state, ...got(record(AGENT_CAP + 51)));
    expect(more.records).toHaveLength(AGENT_CAP);
    expect(more.records[0].seq).toBe(AGENT_CAP + 51);
    expect(more.records.at(-1)?.seq).toBe(52);
  });

  it("ignores a record older than every record kept once full", () => {
    const full = loaded(...Array.from({ length: AGENT_CAP }, (_, i) => record(i + 101)));
    const after = run(full, ...got(record(5)));
    expect(after.records).toBe(full.records);
  });

  it("takes a smaller cap in insertRecord", () => {
    let records: AgentRecord[] = [];
    for (const seq of [4, 1, 3, 2, 5]) records = insertRecord(records, record(seq), 3);
    expect(records.map((r) => r.seq)).toEqual([5, 4, 3]);
  });
});

describe("the kinds", () => {
  it("labels each kind for its badge", () => {
    expect(["action", "dry_run", "refusal", "model_error", "no_action"].map(kindLabel)).toEqual([
      "Action",
      "Dry run",
      "Refused",
      "Model error",
      "No action",
    ]);
    expect(kindLabel("something_new")).toBe("something new");
  });

  it("shows the message of an action or a dry run, the reason of the others", () => {
    expect(recordText(record(1))).toBe("Your order #12 has shipped.");
    expect(recordText(record(2, { kind: "dry_run", message: "Would say hello" }))).toBe("Would say hello");
    const refused = record(3, { kind: "refusal", message: null, reason: "message_too_long" });
    expect(recordText(refused)).toBe("message_too_long");
    expect(recordText(record(4, { kind: "model_error", tool: null, message: null, reason: "timeout after 3 tries" }))).toBe(
      "timeout after 3 tries",
    );
    expect(recordText(record(5, { kind: "no_action", tool: null, message: null, reason: "nothing to say" }))).toBe(
      "nothing to say",
    );
  });

  it("names the trigger and the order", () => {
    expect(triggerLabel("pending_too_long")).toBe("pending too long");
    expect(orderLabel(record(1))).toBe("order #12 v3");
    expect(orderLabel(record(1, { order_version: null }))).toBe("order #12");
    expect(orderLabel(record(1, { trigger: "question", order_id: null, order_version: null }))).toBeNull();
  });

  it("keeps a record of an unknown kind", () => {
    const state = loaded(record(1, { kind: "escalation" }));
    expect(state.records[0].kind).toBe("escalation");
  });
});

describe("reading the wire", () => {
  it("takes a record as the service sends it", () => {
    const wire = JSON.parse(JSON.stringify(record(17)));
    expect(parseRecord(wire)).toEqual(record(17));
  });

  it("refuses what is not a record, and counts it", () => {
    for (const bad of [null, 3, "x", [], {}, { seq: "1", kind: "action", trigger: "shipped" }, { seq: -1, kind: "action", trigger: "t" }, { seq: 1.5, kind: "action", trigger: "t" }, { seq: 1, trigger: "t" }]) {
      expect(parseRecord(bad)).toBeNull();
    }
    const state = run(loaded(record(1)), { type: "record", data: { seq: "x" } }, { type: "record", data: undefined });
    expect(state.malformed).toBe(2);
    expect(seqs(state)).toEqual([1]);
  });

  it("fills in what a record lacks or has of the wrong type", () => {
    const parsed = parseRecord({ seq: 3, kind: "no_action", trigger: "shipped", order_id: "12", arguments: [1], tool: 5 });
    expect(parsed).toEqual({
      seq: 3,
      kind: "no_action",
      trigger: "shipped",
      order_id: null,
      order_version: null,
      tool: null,
      arguments: {},
      message: null,
      reason: null,
      model: null,
      recorded_at: "",
    });
  });
});

describe("the stream's state", () => {
  it("waits, connects, loads, then is live at caught_up", () => {
    let state = initialAgentState();
    expect(phaseLabel(state)).toBe("Connecting");
    expect(state.detail).toBe("waiting for the live connection…");
    state = run(state, { type: "started" });
    expect(state.detail).toBe("opening the stream…");
    state = run(state, { type: "opened" }, ...got(record(1), record(2)));
    expect(state.phase).toBe("connecting");
    expect(state.caughtUp).toBe(false);
    state = run(state, { type: "caught_up", data: { seq: 2 } });
    expect(state.phase).toBe("live");
    expect(phaseLabel(state)).toBe("Live");
    expect(state.loadedUpTo).toBe(2);
    // The first load is not announced, record by record or at all.
    expect(state.announcement).toBeNull();
  });

  it("takes caught_up with an empty log, or without a seq", () => {
    const empty = run(initialAgentState(), { type: "opened" }, { type: "caught_up", data: { seq: 0 } });
    expect(empty.phase).toBe("live");
    expect(empty.lastSeq).toBe(0);
    const none = run(initialAgentState(), { type: "opened" }, { type: "caught_up", data: {} });
    expect(none.phase).toBe("live");
    expect(none.lastSeq).toBeNull();
    expect(none.loadedUpTo).toBe(0);
  });

  it("moves lastSeq to caught_up's seq, never back", () => {
    const state = run(loaded(record(5)), { type: "caught_up", data: { seq: 9 } });
    expect(state.lastSeq).toBe(9);
    expect(run(state, { type: "caught_up", data: { seq: 3 } }).lastSeq).toBe(9);
  });

  it("announces each record that arrives live", () => {
    let state = loaded(record(1));
    state = run(state, ...got(record(2, { order_id: 7, order_version: 2, message: "Your order #7 has shipped." })));
    expect(state.announcement).toEqual({
      serial: 1,
      text: "Agent action on shipped for order #7, version 2 with notify_customer: Your order #7 has shipped.",
    });
    state = run(state, ...got(record(3, { kind: "refusal", message: null, reason: "order_not_shipped" })));
    expect(state.announcement?.serial).toBe(2);
    expect(state.announcement?.text).toBe(
      "Agent refused on shipped for order #12, version 3 with notify_customer: order_not_shipped",
    );
  });

  it("shows reconnecting after a loss, and says once how many came back", () => {
    let state = loaded(record(1));
    state = run(state, { type: "lost" });
    expect(state.phase).toBe("reconnecting");
    expect(phaseLabel(state)).toBe("Reconnecting");
    expect(state.announcement?.text).toBe("Agent log: connection lost, reconnecting.");
    state = run(state, { type: "opened" }, ...got(record(2), record(3)));
    expect(state.phase).toBe("reconnecting");
    const quiet = state.announcement;
    expect(quiet?.text).toBe("Agent log: connection lost, reconnecting."); // not one per replayed record
    state = run(state, { type: "caught_up", data: { seq: 3 } });
    expect(state.phase).toBe("live");
    expect(state.announcement?.text).toBe("Agent log back: 2 new records.");
    expect(state.loadedUpTo).toBe(1); // the records that came back are new to this page
    expect(run(state, { type: "lost" }, { type: "opened" }, { type: "caught_up", data: { seq: 3 } }).announcement?.text).toBe(
      "Agent log back: no new records.",
    );
  });

  it("a lost first load stays connecting", () => {
    const state = run(initialAgentState(), { type: "opened" }, ...got(record(1)), { type: "lost" });
    expect(state.phase).toBe("connecting");
    expect(state.announcement).toBeNull();
  });

  it("a closed stream waits for the retry; a refusal shows unavailable", () => {
    let state = run(loaded(record(1)), { type: "closed", retryAt: 5_000, detail: "next try in 1 s" });
    expect(state.phase).toBe("reconnecting");
    expect(state.detail).toBe("next try in 1 s");
    state = run(state, { type: "explained", detail: "the token was not accepted (forbidden)", refused: true });
    expect(state.phase).toBe("unavailable");
    expect(phaseLabel(state)).toBe("Unavailable");
    expect(state.detail).toBe("the token was not accepted (forbidden)");
    expect(seqs(state)).toEqual([1]); // the records stay
    state = run(state, { type: "opened" });
    expect(state.phase).toBe("reconnecting");
    expect(state.retryAt).toBeNull();
    // An explanation that comes after the next stream opened is out of date.
    expect(run(state, { type: "explained", detail: "late", refused: true })).toBe(state);
  });

  it("an explanation that is not a refusal keeps the phase", () => {
    const state = run(
      initialAgentState(),
      { type: "closed", retryAt: 1_000, detail: "next try in 1 s" },
      { type: "explained", detail: "the server answered 503 unavailable", refused: false },
    );
    expect(state.phase).toBe("connecting");
    expect(state.detail).toBe("the server answered 503 unavailable");
  });
});

describe("describeRecord", () => {
  it("says what a question's record did", () => {
    expect(
      describeRecord(record(1, { trigger: "question", order_id: null, order_version: null, kind: "no_action", tool: null, message: null, reason: null })),
    ).toBe("Agent no action on question.");
  });
});
