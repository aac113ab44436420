"""The agent's append-only action log (docs/agent.md, "The action log over HTTP"): the record's
rules, the three endpoints, the stream's backlog, caught_up, live records and resumption, and
the same on nx-27017 and PostgreSQL, with a second instance on the same database."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest

from conftest import opened, running_service, settings_for, sse_events, until
from orders_live.domain.agent_action import EVERY_ACTION, ActionFilter, InvalidAgentAction, parse_new_action
from orders_live.domain.source import AlreadyRecorded
from orders_live.identity.minting import mint_token
from orders_live.runtime.supervisor import Supervisor
from orders_live.service import Service
from orders_live.sources.memory_actions import MemoryActionLog
from orders_live.transports.http.action_tail import TASK, ActionTail

READ, WRITE = "read-token-1", "write-token-1"


def action(order_id: int = 12, version: int = 3, **overrides: Any) -> dict[str, Any]:
    body = {
        "kind": "action",
        "trigger": "shipped",
        "order_id": order_id,
        "order_version": version,
        "tool": "notify_customer",
        "arguments": {"order_id": order_id, "message": f"Your order #{order_id} has shipped."},
        "message": f"Your order #{order_id} has shipped.",
        "model": "offline-planner",
    }
    return body | overrides


def refusal(order_id: int = 12, version: int = 3, reason: str = "wrong_order: not this order") -> dict[str, Any]:
    return {
        "kind": "refusal",
        "trigger": "shipped",
        "order_id": order_id,
        "order_version": version,
        "tool": "notify_customer",
        "arguments": {"arguments": {"order_id": 99}},
        "reason": reason,
        "model": "offline-planner",
    }


class Api:
    def __init__(self, session: aiohttp.ClientSession, url: str, token: str | None = None) -> None:
        self.session, self.url = session, url
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}

    async def post(self, body: Any) -> tuple[int, Any]:
        async with self.session.post(f"{self.url}/api/agent/actions", json=body, headers=self.headers) as response:
            return response.status, await response.json()

    async def get(self, query: str = "") -> tuple[int, Any]:
        async with self.session.get(f"{self.url}/api/agent/actions{query}", headers=self.headers) as response:
            return response.status, await response.json()

    async def log(self, query: str = "?limit=500") -> list[dict[str, Any]]:
        status, body = await self.get(query)
        assert status == 200, body
        return list(body["actions"])


class Stream:
    """An EventSource-like reader of /api/agent/actions/stream: keeps the last id it saw."""

    def __init__(self, session: aiohttp.ClientSession, url: str, last_id: str | None = None) -> None:
        self.session, self.url, self.last_id = session, url, last_id
        self.events: list[tuple[str, str | None, Any]] = []
        self.ended = False
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        headers = {"Last-Event-ID": self.last_id} if self.last_id else {}
        async with self.session.get(self.url, headers=headers) as response:
            assert response.status == 200, await response.text()
            assert response.content_type == "text/event-stream"
            async for event, event_id, data in sse_events(response):
                if event == "comment":
                    continue  # a keep-alive
                self.events.append((event, event_id, data))
                if event_id is not None:
                    self.last_id = event_id
        self.ended = True

    def seqs(self) -> list[int]:
        return [data["seq"] for event, _, data in self.events if event == "action"]

    def caught_up(self) -> bool:
        return any(event == "caught_up" for event, _, _ in self.events)

    async def close(self) -> None:
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)


# -- fast: the rules and the endpoints over the in-memory database ---------------------------


@pytest.mark.fast
def test_a_record_is_checked_field_by_field() -> None:
    with pytest.raises(InvalidAgentAction) as refused:
        parse_new_action({"kind": "action", "trigger": "shipped"})
    assert refused.value.fields == dict.fromkeys(
        ("tool", "message", "order_id", "order_version"), "required for kind action"
    )
    with pytest.raises(InvalidAgentAction) as refused:
        parse_new_action(
            {
                "kind": "acted",
                "trigger": "later",
                "order_id": 0,
                "order_version": True,  # strict: a boolean is not a version
                "tool": "Drop Table",
                "arguments": {"text": "x" * 4_000},
                "message": "m" * 2_001,
                "reason": "r" * 1_001,
                "model": "n" * 201,
                "seq": 5,
            }
        )
    assert set(refused.value.fields) == {
        "kind",
        "trigger",
        "order_id",
        "order_version",
        "tool",
        "arguments",
        "message",
        "reason",
        "model",
        "seq",
    }
    assert refused.value.fields["seq"] == "unknown field"
    for arguments in ([1], {"n": float("nan")}, {"s": "a\x00b"}, {"deep": json.loads("[" * 40 + "]" * 40)}):
        with pytest.raises(InvalidAgentAction) as refused:
            parse_new_action(refusal() | {"arguments": arguments})
        assert "arguments" in refused.value.fields
    with pytest.raises(InvalidAgentAction) as refused:
        parse_new_action(action(message="   "))
    assert refused.value.fields == {"message": "required for kind action"}
    question = parse_new_action({"kind": "no_action", "trigger": "question", "reason": "nothing to do"})
    assert (question.order_id, question.arguments, question.unique_key) == (None, {}, None)
    assert parse_new_action(action()).unique_key == ("shipped", 12, 3)
    assert parse_new_action(action(kind="dry_run")).unique_key is None  # dry runs may repeat


@pytest.mark.fast
async def test_append_list_after_and_filters() -> None:
    async with running_service(settings_for("memory://")) as service, aiohttp.ClientSession() as session:
        api = Api(session, service.url)
        status, first = await api.post(action())
        assert status == 201
        assert first["seq"] == 1 and first["kind"] == "action" and first["arguments"] == action()["arguments"]
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", first["recorded_at"])
        bodies = [
            refusal(),
            refusal(),  # refusals with the same key are all kept
            action(kind="dry_run"),
            action(order_id=13, version=1, trigger="pending_too_long", tool="nudge_warehouse"),
            {"kind": "no_action", "trigger": "question", "reason": "nothing to do", "model": "m"},
            {"kind": "model_error", "trigger": "shipped", "order_id": 14, "order_version": 2, "reason": "timeout"},
        ]
        for body in bodies:
            status, stored = await api.post(body)
            assert status == 201, stored
        every = await api.log()
        assert [r["seq"] for r in every] == list(range(1, 8))
        assert [r["kind"] for r in every] == [
            "action",
            "refusal",
            "refusal",
            "dry_run",
            "action",
            "no_action",
            "model_error",
        ]
        assert every[5]["order_id"] is None and every[5]["tool"] is None and every[5]["arguments"] == {}
        assert [r["seq"] for r in await api.log("?limit=2")] == [6, 7]  # the newest, oldest first
        assert [r["seq"] for r in await api.log("")] == list(range(1, 8))  # the default limit is 50
        assert [r["seq"] for r in await api.log("?after=3&limit=2")] == [4, 5]
        assert [r["seq"] for r in await api.log("?after=0")] == list(range(1, 8))
        assert [r["seq"] for r in await api.log("?kind=refusal")] == [2, 3]
        assert [r["seq"] for r in await api.log("?order_id=12&order_version=3&kind=action")] == [1]
        assert [r["seq"] for r in await api.log("?trigger=pending_too_long")] == [5]
        assert [r["seq"] for r in await api.log("?order_id=12&after=2")] == [3, 4]
        assert await api.log("?order_id=999") == []

        status, duplicate = await api.post(action(message="Shipped again!"))
        assert status == 409
        assert duplicate["error"]["code"] == "already_recorded"
        assert duplicate["record"] == first
        assert await api.log() == every  # unchanged

        async with session.get(f"{service.url}/metrics") as response:
            metrics = await response.text()
        assert 'orders_live_agent_actions_total{kind="action"} 2.0' in metrics
        assert 'orders_live_agent_actions_total{kind="refusal"} 2.0' in metrics


@pytest.mark.fast
async def test_bad_input_is_refused_with_fields_and_stores_nothing() -> None:
    async with running_service(settings_for("memory://")) as service, aiohttp.ClientSession() as session:
        api = Api(session, service.url)
        for body, field in [
            (action(kind="maybe"), "kind"),
            (action(trigger="whenever"), "trigger"),
            (action(order_id=-1), "order_id"),
            (action(order_version="3"), "order_version"),
            (action(tool="rm -rf"), "tool"),
            (action(arguments="{}"), "arguments"),
            (action(arguments={"text": "x" * 4_000}), "arguments"),
            (action(message=None), "message"),
            (action(seq=1), "seq"),
            (action(recorded_at="2026-01-01T00:00:00.000Z"), "recorded_at"),
            ([action()], "body"),
        ]:
            status, refused = await api.post(body)
            assert status == 422, (body, refused)
            assert refused["error"]["code"] == "validation_failed"
            assert field in refused["error"]["fields"], refused
        for query, field in [
            ("?limit=0", "limit"),
            ("?limit=501", "limit"),
            ("?limit=ten", "limit"),
            ("?after=-1", "after"),
            ("?kind=all", "kind"),
            ("?kind={'$ne':1}", "kind"),
            ("?trigger=x", "trigger"),
            ("?order_id=1%20OR%201=1", "order_id"),
            ("?order_version=0", "order_version"),
            ("?status=pending", "status"),
            ("?kind=action&kind=refusal", "kind"),
        ]:
            status, refused = await api.get(query)
            assert status == 422, query
            assert field in refused["error"]["fields"], (query, refused)
        async with session.get(f"{service.url}/api/agent/actions/stream?since=1") as response:
            assert response.status == 422
            assert "since" in (await response.json())["error"]["fields"]
        async with session.get(
            f"{service.url}/api/agent/actions/stream", headers={"Last-Event-ID": "nx:12"}
        ) as response:
            assert response.status == 422
        async with session.post(f"{service.url}/api/agent/actions", data=b"{not json") as response:
            assert response.status == 400
        async with session.post(
            f"{service.url}/api/agent/actions",
            data=b'{"kind": "action"',
            headers={"Content-Type": "application/json"},
        ) as response:
            assert response.status == 400
            assert (await response.json())["error"]["code"] == "malformed_json"
        deep = b"[" * 100_000 + b"]" * 100_000
        async with session.post(
            f"{service.url}/api/agent/actions", data=deep, headers={"Content-Type": "application/json"}
        ) as response:
            assert response.status in (400, 413)
        assert await api.log() == []


@pytest.mark.fast
async def test_writes_need_the_write_token_and_reads_the_read_token() -> None:
    settings = settings_for("memory://", read_token=READ, write_token=WRITE)
    async with running_service(settings) as service, aiohttp.ClientSession() as session:
        assert (await Api(session, service.url).post(action()))[0] == 401
        assert (await Api(session, service.url, READ).post(action()))[0] == 403
        assert (await Api(session, service.url).get())[0] == 401
        assert (await Api(session, service.url, WRITE).post(action()))[0] == 201
        assert [r["seq"] for r in await Api(session, service.url, READ).log()] == [1]
        async with session.get(f"{service.url}/api/agent/actions/stream") as response:
            assert response.status == 401
        stream = Stream(session, f"{service.url}/api/agent/actions/stream?token={READ}")
        try:
            await until(stream.caught_up, what="the stream with the read token")
            assert stream.seqs() == [1]
        finally:
            await stream.close()


@pytest.mark.fast
async def test_the_stream_gives_the_backlog_caught_up_live_records_and_resumes() -> None:
    settings = settings_for("memory://", agent_actions_rate=1_000)  # 55 appends at once
    async with running_service(settings) as service, aiohttp.ClientSession() as session:
        api = Api(session, service.url)
        for n in range(1, 56):
            assert (await api.post(refusal(order_id=n)))[0] == 201
        url = f"{service.url}/api/agent/actions/stream"
        stream = Stream(session, url)
        await until(stream.caught_up, what="caught_up")
        assert stream.seqs() == list(range(6, 56))  # the newest 50
        assert stream.events[-1] == ("caught_up", "55", {"seq": 55})
        assert all(event_id == str(data["seq"]) for event, event_id, data in stream.events if event == "action")
        assert (await api.post(action(order_id=7)))[0] == 201
        await until(lambda: stream.seqs()[-1:] == [56], within=0.9, what="the live record, before any poll")
        live = stream.events[-1][2]
        assert live["kind"] == "action" and live["order_id"] == 7
        await stream.close()

        assert (await api.post(refusal(order_id=60)))[0] == 201
        assert (await api.post(refusal(order_id=61)))[0] == 201
        resumed = Stream(session, url, last_id=stream.last_id)  # an EventSource's reconnect
        try:
            await until(resumed.caught_up, what="the resumed stream")
            assert resumed.seqs() == [57, 58]
            assert resumed.events[-1][2] == {"seq": 58}
        finally:
            await resumed.close()
        filtered = Stream(session, f"{url}?after=0&kind=action")
        try:
            await until(filtered.caught_up, what="the filtered stream")
            assert filtered.seqs() == [56]
            assert (await api.post(refusal(order_id=62)))[0] == 201
            assert (await api.post(action(order_id=62, version=1)))[0] == 201
            await until(lambda: filtered.seqs() == [56, 60], what="the next matching record")
        finally:
            await filtered.close()
        await until(lambda: _open_streams(service) == 0, what="the closed streams to be gone")


@pytest.mark.fast
async def test_the_stream_keeps_alive_every_keepalive_seconds_as_the_orders_stream_does() -> None:
    """One pump for both event streams: a quiet action stream gets its keep-alive comment every
    ``sse_keepalive`` seconds, not at the next whole second of a once-a-second look."""
    settings = settings_for("memory://", sse_keepalive=0.2)
    async with running_service(settings) as service, aiohttp.ClientSession() as session:
        async with session.get(f"{service.url}/api/agent/actions/stream") as response:
            events = sse_events(response)
            async for event, _, _ in events:
                if event == "caught_up":
                    break
            loop = asyncio.get_running_loop()
            started = loop.time()
            gaps = []
            async for event, _, text in events:
                assert (event, text) == ("comment", "keep-alive")
                gaps.append(loop.time() - started)
                started = loop.time()
                if len(gaps) == 3:
                    break
        assert all(gap < 0.7 for gap in gaps), gaps  # 0.2 s each, with room for a loaded machine


@pytest.mark.fast
async def test_a_stream_more_than_capacity_records_behind_ends_and_its_reconnect_reads_them() -> None:
    settings = settings_for("memory://")
    async with running_service(settings) as service, aiohttp.ClientSession() as session:
        assert service.action_tail is not None and service.source is not None
        service.action_tail.capacity = 3  # the streams that join from now on
        url = f"{service.url}/api/agent/actions/stream"
        stream = Stream(session, url)
        try:
            await until(stream.caught_up, what="caught_up")
            for n in range(1, 6):  # appended past this instance's API: the tail reads all five at once
                await service.source.actions.append(parse_new_action(refusal(order_id=n)), None)
            service.action_tail.appended()
            await until(lambda: stream.ended, what="the stream that fell behind to end")
            assert stream.events == [("caught_up", "0", {"seq": 0})]  # nothing past what it could hold
        finally:
            await stream.close()
        resumed = Stream(session, url, last_id=stream.last_id)
        try:
            await until(resumed.caught_up, what="the reconnect")
            assert resumed.seqs() == [1, 2, 3, 4, 5]
        finally:
            await resumed.close()


@pytest.mark.fast
async def test_a_revoked_token_ends_its_action_stream_with_token_revoked_last(tmp_path: Path) -> None:
    secret = "a-test-secret-of-at-least-32-characters"
    revoked = tmp_path / "revoked.txt"
    revoked.write_text("# nobody yet\n")
    settings = settings_for("memory://", jwt_secret=secret, revoked=revoked)
    ada = mint_token("customer", sub="customer:Ada", customer="Ada", ttl=600, secret=secret)
    async with running_service(settings) as service, aiohttp.ClientSession() as session:
        headers = {"Authorization": f"Bearer {ada}"}
        async with session.post(f"{service.url}/api/stream-tickets", headers=headers) as response:
            assert response.status == 201, await response.text()
            ticket = (await response.json())["ticket"]
        names: list[str] = []
        async with session.get(f"{service.url}/api/agent/actions/stream?ticket={ticket}") as response:
            async for name, _, _ in sse_events(response):
                names.append(name)
                if name == "caught_up":
                    await asyncio.to_thread(revoked.write_text, "customer:Ada\n")
        assert names == ["caught_up", "token_revoked"]


def _open_streams(service: Service) -> int:
    assert service.agent_actions is not None
    return service.agent_actions.streams


@pytest.mark.fast
async def test_a_stream_that_falls_too_far_behind_is_ended_and_the_tail_stops_cleanly() -> None:
    log = MemoryActionLog()
    tail = ActionTail(log, poll_interval=0.05, capacity=3)
    tasks = Supervisor()
    tasks.start(TASK, tail.run)
    try:
        stream = await tail.join(EVERY_ACTION)
        for n in range(1, 5):
            await log.append(parse_new_action(refusal(order_id=n)))
        tail.appended()
        await until(lambda: stream.overflowed, what="the overflow")
        assert stream.take() == []  # it ends: its client reads the rest from the log
        other = await tail.join(ActionFilter(kind="action"))
        await log.append(parse_new_action(action()))
        await until(lambda: bool(other.pending), what="the poll to find the record")
        assert [r["seq"] for r in other.take()] == [5]
        tail.leave(stream)
        tail.leave(other)
    finally:
        await tasks.stop()
    assert tasks.problems == [] and tasks.deaths == {}
    with pytest.raises(AlreadyRecorded) as again:
        await log.append(parse_new_action(action(message="again")))
    assert again.value.existing["seq"] == 5


@pytest.mark.fast
async def test_appends_past_the_rate_limit_get_429_with_the_error_envelope_and_store_nothing() -> None:
    settings = settings_for("memory://", agent_actions_rate=1)  # bursts of 20
    async with running_service(settings) as service, aiohttp.ClientSession() as session:
        api = Api(session, service.url)
        answers = []
        for n in range(1, 26):
            async with session.post(f"{service.url}/api/agent/actions", json=refusal(order_id=n)) as response:
                answers.append((response.status, await response.json(), response.headers.get("Retry-After")))
        assert [status for status, _, _ in answers] == [201] * 20 + [429] * 5
        _, body, retry_after = answers[-1]
        assert body["error"]["code"] == "rate_limited" and body["error"]["message"] and body["error"]["fields"] == {}
        assert retry_after == "1"
        assert [r["order_id"] for r in await api.log()] == list(range(1, 21))


@pytest.mark.fast
async def test_the_memory_log_trims_by_count_and_by_age_and_frees_a_trimmed_actions_key() -> None:
    log = MemoryActionLog()
    for n in range(1, 11):
        await log.append(parse_new_action(action(order_id=n) if n == 1 else refusal(order_id=n)))
    assert await log.trim(keep=4, keep_seconds=3600) == 6
    assert [r["seq"] for r in await log.recent(100)] == [7, 8, 9, 10]
    assert [r["seq"] for r in await log.after(0, 100)] == [7, 8, 9, 10]
    assert [r["seq"] for r in await log.after(8, 100)] == [9, 10]
    again = await log.append(parse_new_action(action(order_id=1)))  # its first action was trimmed
    assert again["seq"] == 11
    assert await log.trim(keep=100, keep_seconds=0) == 5  # all older than now
    assert await log.recent(100) == []


# -- database: nx-27017 and PostgreSQL -------------------------------------------------------


@pytest.mark.database
async def test_the_log_on_a_real_database(database_url: str) -> None:
    async with running_service(settings_for(database_url)) as service, aiohttp.ClientSession() as session:
        api = Api(session, service.url)
        status, first = await api.post(action(arguments={"$where": "1", "a.b": [1, 2**70, None], "ü": "ß"}))
        assert status == 201, first
        assert first["arguments"] == {"$where": "1", "a.b": [1, 2**70, None], "ü": "ß"}
        for body in (refusal(), refusal(), action(kind="dry_run"), action(order_id=13)):
            assert (await api.post(body))[0] == 201
        status, duplicate = await api.post(action(message="twice"))
        assert (status, duplicate["error"]["code"], duplicate["record"]) == (409, "already_recorded", first)
        status, refused = await api.post(action(order_id=0))
        assert status == 422 and "order_id" in refused["error"]["fields"]
        every = await api.log()
        assert [r["kind"] for r in every] == ["action", "refusal", "refusal", "dry_run", "action"]
        seqs = [r["seq"] for r in every]
        assert seqs == sorted(seqs) and len(set(seqs)) == 5
        assert every[0] == first
        assert await api.log("?kind=refusal&order_id=12&order_version=3") == every[1:3]
        assert await api.log(f"?after={seqs[2]}") == every[3:]
        assert await api.log("?limit=1") == every[-1:]
        assert (await api.get("?kind[$ne]=x"))[0] == 422  # no operator reaches a query
        assert (await api.get("?kind=%7B%22%24gt%22%3A%22%22%7D"))[0] == 422

    async with opened(database_url) as source:  # concurrent appends of one action: one wins
        racing = [source.actions.append(parse_new_action(action(order_id=40))) for _ in range(8)]
        results = await asyncio.gather(*racing, return_exceptions=True)
        stored = [r for r in results if isinstance(r, dict)]
        assert len(stored) == 1
        assert all(isinstance(r, AlreadyRecorded) and r.existing == stored[0] for r in results if r is not stored[0])
        assert await source.actions.recent(1) == stored

    if database_url.startswith("postgresql://"):  # append-only, in the database itself
        connection = await asyncpg.connect(database_url)
        try:
            for statement in (
                "UPDATE agent_actions SET reason = 'x'",
                "DELETE FROM agent_actions",
                "TRUNCATE agent_actions",
            ):
                with pytest.raises(asyncpg.InsufficientPrivilegeError):
                    await connection.execute(statement)
            assert await connection.fetchval("SELECT count(*) FROM agent_actions") == 6
        finally:
            await connection.close()


@pytest.mark.database
async def test_a_record_appended_through_another_instance_reaches_the_stream(database_url: str) -> None:
    async with (
        running_service(settings_for(database_url, instance="one")) as one,
        running_service(settings_for(database_url, instance="two")) as two,
        aiohttp.ClientSession() as session,
    ):
        first, second = Api(session, one.url), Api(session, two.url)
        status, old = await second.post(refusal())
        assert status == 201
        stream = Stream(session, f"{one.url}/api/agent/actions/stream")
        try:
            await until(stream.caught_up, what="caught_up")
            assert stream.seqs() == [old["seq"]]
            status, remote = await second.post(action())
            assert status == 201
            await until(lambda: remote["seq"] in stream.seqs(), within=3, what="the other instance's record")
            status, local = await first.post(action(order_id=13))
            assert status == 201
            await until(lambda: local["seq"] in stream.seqs(), what="this instance's record")
            assert stream.seqs() == [old["seq"], remote["seq"], local["seq"]]
            received = [data for event, _, data in stream.events if event == "action"]
            assert received == await first.log()
        finally:
            await stream.close()
        resumed = Stream(session, f"{two.url}/api/agent/actions/stream", last_id=str(old["seq"]))
        try:
            await until(resumed.caught_up, what="the resumed stream on the other instance")
            assert resumed.seqs() == [remote["seq"], local["seq"]]
        finally:
            await resumed.close()


@pytest.mark.database
async def test_retention_and_the_rate_limit_on_a_real_database(database_url: str) -> None:
    settings = settings_for(
        database_url, agent_actions_rate=1, agent_actions_keep=3, agent_actions_retention_interval=0.2
    )
    async with running_service(settings) as service, aiohttp.ClientSession() as session:
        api = Api(session, service.url)
        statuses = [(await api.post(refusal(order_id=n)))[0] for n in range(1, 24)]
        assert statuses == [201] * 20 + [429] * 3
        status, body = await api.post(refusal(order_id=99))
        assert (status, body["error"]["code"]) == (429, "rate_limited")
        kept: list[dict[str, Any]] = []

        async def trimmed() -> bool:
            kept[:] = await api.log()
            return len(kept) == 3

        for _ in range(200):  # the retention task runs every 0.2 s
            if await trimmed():
                break
            await asyncio.sleep(0.05)
        assert [r["order_id"] for r in kept] == [18, 19, 20]
        trimmed = service.registry.get_sample_value("orders_live_agent_actions_trimmed_total")
        assert trimmed is not None and trimmed >= 17

    async with opened(database_url) as source:  # by age; a trimmed action's key is free again
        first = await source.actions.append(parse_new_action(action(order_id=50)))
        assert await source.actions.trim(keep=1_000, keep_seconds=0) == 4
        assert await source.actions.recent(10) == []
        again = await source.actions.append(parse_new_action(action(order_id=50)))
        assert again["seq"] > first["seq"]
        assert await source.actions.trim(keep=1, keep_seconds=3600) == 0
        assert await source.actions.recent(10) == [again]

    if database_url.startswith("postgresql://"):  # outside retention, deletes are still refused
        connection = await asyncpg.connect(database_url)
        try:
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await connection.execute("DELETE FROM agent_actions")
            assert await connection.fetchval("SELECT count(*) FROM agent_actions") == 1
        finally:
            await connection.close()
