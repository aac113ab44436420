"""The seam between the service and its database: five small contracts.

A database gives the service its orders (``OrderStore``), their changes in commit order
(``ChangeFeed``), a place to keep each instance's resume position (``Checkpoints``), the
agent's append-only action log (``ActionLog``) and a connection to open, check and close
(``Connection``). ``Source`` bundles one of each; one
object may play several parts. Implementations live in ``orders_live.sources``, one module
(or package) each, chosen by URL; nothing above them sees a driver's types.

The rules every source keeps (``tests/contract/`` holds each source to them; a new source is
one more parameter there):

- **Errors.** Besides the refusals a method names (``OrderNotFound``, ``VersionConflict``,
  ``AlreadyRecorded``, ``PositionAhead``, ``TooManyChanges``, ``StreamInvalidated``), only
  ``DatabaseUnavailable`` and ``HistoryLost`` leave a source. A driver's error never crosses
  the seam: each source runs every driver call inside its connection's ``answering()``, which
  turns them into ``DatabaseUnavailable``.
- **Positions** are opaque strings, made by one source's feed and compared only by it
  (``ChangeFeed.position_key``). A position of another source, or no position at all, is
  ``HistoryLost``, as is one whose following changes the log no longer holds (retention, a
  truncated log).
- **Marks.** ``CaughtUp(p)`` says every change committed up to ``p`` has been yielded. After
  its first mark a feed yields another promptly, without waiting for a write or a poll: a
  reader that seeds its state from the store when the stream opens (the follower) takes only
  a mark read after its seed as proof that the seed is at that mark, and ignores the first.
- **Order.** ``watch`` and ``changes_between`` yield changes in commit order; ``ActionLog.after``
  returns records in ``seq`` order with none skipped: a record becomes visible only after
  every record with a lower ``seq`` (concurrent appends included), so a reader that asks for
  what follows the last ``seq`` it saw never misses one.
- **Life cycle.** ``Connection.open()`` is idempotent and starts nothing in the background:
  long-running work a source needs (listening, retention) is one of its ``Source.jobs``, which
  the service runs under its supervisor (as it does its own: action tails, checkpoints).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from orders_live.domain.agent_action import EVERY_ACTION, ActionFilter, AgentActionJson, NewAgentAction
from orders_live.domain.change import CaughtUp, Change
from orders_live.domain.order import Order, OrderCreate, OrderJson, OrderPatch, Status
from orders_live.domain.page import Cursor, IndexRow
from orders_live.domain.subscription import SubscriptionFilter

Job = Callable[[], Awaitable[None]]  # long-running work: runs until cancelled


class PositionKey(Protocol):
    """What a feed's ``position_key`` makes of a position: ordered among the keys of that same
    feed, and nothing more is known of it (each source picks its own shape: PostgreSQL's
    (commit, seq), nx-27017's row, a MongoDB token's text). Keys of two feeds never meet."""

    def __lt__(self, other: Any, /) -> bool: ...

    def __le__(self, other: Any, /) -> bool: ...

    def __gt__(self, other: Any, /) -> bool: ...

    def __ge__(self, other: Any, /) -> bool: ...


class OrderNotFound(Exception):
    def __init__(self, order_id: int) -> None:
        super().__init__(f"order {order_id} not found")
        self.order_id = order_id


class VersionConflict(Exception):
    def __init__(self, current: Order) -> None:
        super().__init__(f"order {current.id} is at version {current.version}")
        self.current = current


class DatabaseUnavailable(Exception):
    """The database did not answer (down, unreachable, or refusing): nothing was read, and
    a write may or may not have been applied. Sources raise it instead of driver errors."""


class PositionAhead(Exception):
    """The position is past the newest change the database's log holds: no instance handed it
    out, and waiting will not make it come."""


class TooManyChanges(Exception):
    """More changes lie between two positions than a read may take."""


class AlreadyRecorded(Exception):
    """An ``action`` for this (trigger, order_id, order_version) is already in the log."""

    def __init__(self, existing: AgentActionJson) -> None:
        super().__init__(
            f"an action for {existing['trigger']} of order {existing['order_id']} at version"
            f" {existing['order_version']} is already recorded (seq {existing['seq']})"
        )
        self.existing = existing


class OrderStore(Protocol):
    """Reads and writes of orders. Writes raise OrderNotFound, VersionConflict or
    DatabaseUnavailable."""

    def index_rows(self) -> AsyncIterator[list[IndexRow]]:
        """(id, status, version, customer_name) of every order, in chunks: all that routing
        keeps in memory."""
        ...

    async def fetch(self, ids: Sequence[int]) -> list[OrderJson]:
        """The orders among ``ids`` that exist now, in any order."""
        ...

    async def newest(
        self, status: Status | None, before: Cursor | None, limit: int, customer: str | None = None
    ) -> list[OrderJson]:
        """Up to ``limit`` orders (of ``status`` and of ``customer``, if given) older than
        ``before``, newest first (``updated_at``, then id). ``customer`` is compared as a value,
        never read as query syntax."""
        ...

    async def get(self, order_id: int) -> Order | None: ...

    async def create(self, data: OrderCreate) -> Order: ...

    async def update(
        self, order_id: int, patch: OrderPatch, expected_version: int | None, owner: str | None = None
    ) -> Order:
        """``owner``: only if the order is this customer's; otherwise OrderNotFound, as if it
        did not exist (checked in the same statement as the write)."""
        ...

    async def delete(self, order_id: int, expected_version: int | None) -> None: ...


class ChangeFeed(Protocol):
    """Committed changes in commit order, resumable from a position."""

    def watch(self, resume_after: str | None) -> AsyncGenerator[Change | CaughtUp, None]:
        """Changes after ``resume_after`` (or from now), then a CaughtUp mark each time the
        feed has delivered all that is committed. Raises HistoryLost when it cannot prove
        continuity from ``resume_after``, StreamInvalidated when the collection goes."""
        ...

    def position_key(self, position: str) -> PositionKey | None:
        """A sort key for a position of this database, or None if it is not one. Keys are
        compared only with keys of the same feed."""
        ...

    async def check_position(self, position: str) -> None:
        """Checks a position of this database against its log's bounds, without reading the
        changes: PositionAhead past the newest change, HistoryLost when the log no longer holds
        what follows it (retention passed it)."""
        ...

    async def changes_between(self, after: str, upto: str, wanted: SubscriptionFilter, budget: int) -> list[Change]:
        """The changes after ``after`` up to and including ``upto``, in commit order, that may
        concern ``wanted``: its filter is applied in the database's query, and what comes back
        may hold more (the caller routes each change), never less. For an update or a delete
        whose earlier status or customer the log did not record, the change is kept.

        Bounded before the changes are read: TooManyChanges when more than ``budget`` changes
        (of any order) lie in the range, PositionAhead and HistoryLost as ``check_position``;
        StreamInvalidated when the collection went in the range. A read the database cannot
        bound in advance counts the changes it reads and stops past ``budget``."""
        ...


class Checkpoints(Protocol):
    """Where each instance keeps the position it has applied up to."""

    async def load_checkpoint(self, instance: str) -> str | None: ...

    async def save_checkpoint(self, instance: str, position: str) -> None: ...


class ActionLog(Protocol):
    """The agent's append-only action log. Each record gets a ``seq``, increasing in the order
    records were appended; nothing is ever changed, and records are removed only by ``trim``
    (retention), oldest first. Raises DatabaseUnavailable."""

    async def append(self, new: NewAgentAction, customer_name: str | None = None) -> AgentActionJson:
        """The record as stored, with ``customer_name`` (the order's customer, set by the
        service, never by the agent); AlreadyRecorded for a second ``action`` with the same
        (trigger, order_id, order_version), and then nothing is stored."""
        ...

    async def recent(self, limit: int, filters: ActionFilter = EVERY_ACTION) -> list[AgentActionJson]:
        """The newest ``limit`` records that match, oldest first."""
        ...

    async def after(self, seq: int, limit: int, filters: ActionFilter = EVERY_ACTION) -> list[AgentActionJson]:
        """Up to ``limit`` records that match with a seq above ``seq``, oldest first. Gap-free:
        no record with a seq between two returned ones (or below the first, above ``seq``)
        becomes visible later."""
        ...

    async def trim(self, keep: int, keep_seconds: float) -> int:
        """Delete every record that is not among the newest ``keep``, or was recorded more than
        ``keep_seconds`` ago (by the database's clock where it has one), in small batches;
        the number deleted. (A trimmed ``action`` no longer blocks a second one for its key.)"""
        ...


class Connection(Protocol):
    """The database connection's life cycle."""

    @property
    def description(self) -> str:
        """What the log calls this database."""
        ...

    async def open(self) -> None:
        """Connect and prepare (indexes, collection options). Idempotent: once it has
        succeeded, a second call does nothing; after a failure, the next call tries again.
        Starts no background work. Raises DatabaseUnavailable."""
        ...

    async def close(self) -> None: ...

    async def ping(self) -> None:
        """Raises DatabaseUnavailable unless the database answers now."""
        ...


def _no_problems() -> list[str]:
    return []


@dataclass(frozen=True, slots=True)
class SourceHealth:
    """What a source says of itself beyond answering a ping: ``problems`` for ``/readyz`` (empty
    when there is none) and ``gauges`` for ``/metrics`` (metric name → (help text, reader))."""

    problems: Callable[[], list[str]] = _no_problems
    gauges: Mapping[str, tuple[str, Callable[[], float]]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Source:
    """One database, as the service uses it. ``jobs``: the long-running work it needs
    (listening, retention), by task name; the service runs each under its supervisor, which
    restarts one that dies. ``Connection.open()`` starts none of it."""

    connection: Connection
    store: OrderStore
    feed: ChangeFeed
    checkpoints: Checkpoints
    actions: ActionLog
    jobs: Mapping[str, Job] = field(default_factory=dict)
    health: SourceHealth = field(default_factory=SourceHealth)

    @property
    def description(self) -> str:
        return self.connection.description
