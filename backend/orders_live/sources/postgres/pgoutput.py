"""Decoding of the messages of PostgreSQL's built-in ``pgoutput`` logical decoding plugin.

The WAL change feed reads the write-ahead log through logical replication: psycopg2's
``LogicalReplicationConnection`` speaks the replication protocol for us (START_REPLICATION,
CopyBoth, standby feedback) and hands over each message's payload as raw bytes. It does not
decode pgoutput's payloads, and the one decoder on PyPI (``pypgoutput`` 0.0.3) is
unmaintained; so this small decoder of a documented, versioned format is ours, and its tests
decode the bytes of a real server.

The format is "Logical Replication Message Formats" of PostgreSQL 15, protocol version 1
(https://www.postgresql.org/docs/15/protocol-logicalrep-message-formats.html): integers in
network byte order, strings NUL-terminated, column values in text format (we never ask for
binary), no streaming of in-progress transactions. ``decode`` turns one payload into one
message; messages the feed has no use for (Origin, Type, logical decoding Message, ...) come
back as ``Other`` so that a caller can skip them. A malformed payload raises ``PgOutputError``.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Final, TypeAlias


class PgOutputError(ValueError):
    """A payload that is not a well-formed pgoutput (protocol version 1) message."""


class Unchanged:
    """The value of a TOASTed column that an update left unchanged (the server does not send it)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "UNCHANGED"


UNCHANGED: Final = Unchanged()

Tuple: TypeAlias = tuple[str | Unchanged | None, ...]


@dataclass(frozen=True, slots=True)
class Begin:
    final_lsn: int
    commit_time_us: int  # microseconds since 2000-01-01 00:00:00 UTC (PostgreSQL's epoch)
    xid: int


@dataclass(frozen=True, slots=True)
class Commit:
    flags: int
    commit_lsn: int
    end_lsn: int
    commit_time_us: int


@dataclass(frozen=True, slots=True)
class Column:
    flags: int  # 1: part of the replica identity
    name: str
    type_oid: int
    type_modifier: int


@dataclass(frozen=True, slots=True)
class Relation:
    oid: int
    namespace: str  # empty for pg_catalog
    name: str
    replica_identity: str  # 'd' default, 'n' nothing, 'f' full, 'i' index
    columns: tuple[Column, ...]


@dataclass(frozen=True, slots=True)
class Insert:
    relation_oid: int
    new: Tuple


@dataclass(frozen=True, slots=True)
class Update:
    relation_oid: int
    old: Tuple | None
    new: Tuple
    old_kind: str | None = None  # 'K': the key's columns (others None), 'O': the whole old row


@dataclass(frozen=True, slots=True)
class Delete:
    relation_oid: int
    old: Tuple
    old_kind: str  # 'K' or 'O', as for Update


@dataclass(frozen=True, slots=True)
class Truncate:
    options: int  # 1: CASCADE, 2: RESTART IDENTITY
    relation_oids: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Other:
    """A message the change feed does not use: Origin 'O', Type 'Y', Message 'M', or another."""

    kind: str


Message: TypeAlias = Begin | Commit | Relation | Insert | Update | Delete | Truncate | Other

_KNOWN: Final = frozenset("BCRIUDT")
_LAYOUTS: dict[str, struct.Struct] = {}  # struct formats, compiled once


class _Reader:
    """Reads a payload from the front; every shortfall is a ``PgOutputError``."""

    __slots__ = ("data", "kind", "offset")

    def __init__(self, data: bytes, kind: str) -> None:
        self.data, self.offset, self.kind = data, 1, kind

    def _take(self, size: int, what: str) -> bytes:
        end = self.offset + size
        if size < 0 or end > len(self.data):
            raise PgOutputError(
                f"{self.kind!r} message truncated: {what} needs {size} bytes at offset {self.offset},"
                f" the payload has {len(self.data)}"
            )
        chunk, self.offset = self.data[self.offset : end], end
        return chunk

    def fields(self, fmt: str, what: str) -> tuple[int, ...]:
        """Integers in network byte order (counts are read unsigned: a wrong one runs out of bytes)."""
        layout = _LAYOUTS.get(fmt)
        if layout is None:
            layout = _LAYOUTS[fmt] = struct.Struct("!" + fmt)
        end = self.offset + layout.size
        if end > len(self.data):
            self._take(layout.size, what)  # raises, saying what is short
        values = layout.unpack_from(self.data, self.offset)
        self.offset = end
        return values

    def char(self, what: str) -> str:
        return chr(self.fields("B", what)[0])

    def text(self, raw: bytes, what: str) -> str:
        try:
            return raw.decode()
        except UnicodeDecodeError as exc:
            raise PgOutputError(f"{self.kind!r} message: {what} is not UTF-8 ({exc})") from None

    def string(self, what: str) -> str:
        end = self.data.find(b"\0", self.offset)
        if end < 0:
            raise PgOutputError(f"{self.kind!r} message truncated: {what} at offset {self.offset} has no NUL")
        raw = self._take(end - self.offset, what)
        self.offset += 1
        return self.text(raw, what)

    def tuple(self, what: str) -> Tuple:
        """A row's values. The hot path of the WAL feed (every change has one or two): indexes into
        the payload directly; the slower checked reads only build the error's message."""
        (count,) = self.fields("H", f"{what}'s column count")
        data, size, offset = self.data, len(self.data), self.offset
        values: list[str | Unchanged | None] = []
        for index in range(count):
            if offset >= size:
                self.offset = offset
                self.char(f"{what}'s column {index}")  # raises: truncated
            marker = data[offset]
            offset += 1
            if marker == 0x74:  # 't': a value in text format
                start = offset + 4
                length = int.from_bytes(data[offset:start], "big", signed=True) if start <= size else -1
                end = start + length
                if length < 0 or end > size:
                    self.offset = offset
                    column = f"{what}'s column {index}"
                    self._take(self.fields("i", f"{column}'s length")[0], column)  # raises: truncated
                try:
                    values.append(data[start:end].decode())
                except UnicodeDecodeError as exc:
                    raise PgOutputError(
                        f"{self.kind!r} message: {what}'s column {index} is not UTF-8 ({exc})"
                    ) from None
                offset = end
            elif marker == 0x6E:  # 'n': null
                values.append(None)
            elif marker == 0x75:  # 'u': unchanged TOASTed value
                values.append(UNCHANGED)
            elif marker == 0x62:  # 'b'
                raise PgOutputError(
                    f"{self.kind!r} message: {what}'s column {index} is in binary format (we ask for text)"
                )
            else:
                raise PgOutputError(
                    f"{self.kind!r} message: {what}'s column {index} has an unknown kind {chr(marker)!r}"
                )
        self.offset = offset
        return tuple(values)

    def end(self) -> None:
        if self.offset != len(self.data):
            raise PgOutputError(
                f"{self.kind!r} message has {len(self.data) - self.offset} bytes left over after offset {self.offset}"
            )


def decode(payload: bytes) -> Message:
    """The message of one pgoutput payload (``msg.payload`` of psycopg2, ``decode=False``)."""
    if not payload:
        raise PgOutputError("empty pgoutput payload")
    kind = chr(payload[0])
    if kind not in _KNOWN:
        return Other(kind)
    reader = _Reader(bytes(payload), kind)
    message = _decode(reader, kind)
    reader.end()
    return message


def _decode(reader: _Reader, kind: str) -> Message:
    if kind == "B":
        return Begin(*reader.fields("QqI", "final LSN, commit time and xid"))
    if kind == "C":
        return Commit(*reader.fields("BQQq", "flags, commit LSN, end LSN and commit time"))
    if kind == "R":
        (oid,) = reader.fields("I", "relation oid")
        namespace, name, identity = reader.string("namespace"), reader.string("name"), reader.char("replica identity")
        columns = tuple(_column(reader) for _ in range(reader.fields("H", "column count")[0]))
        return Relation(oid, namespace, name, identity, columns)
    if kind == "T":
        count, options = reader.fields("IB", "relation count and options")
        return Truncate(options, tuple(reader.fields("I", "relation oid")[0] for _ in range(count)))
    (oid,) = reader.fields("I", "relation oid")
    marker = reader.char("tuple marker")
    if kind == "I":
        _expect(marker, "N", kind)
        return Insert(oid, reader.tuple("new row"))
    if kind == "D":
        _expect(marker, "KO", kind)
        return Delete(oid, reader.tuple("old row"), marker)
    old_kind, old = None, None  # an Update
    if marker in ("K", "O"):
        old_kind, old = marker, reader.tuple("old row")
        marker = reader.char("tuple marker")
    _expect(marker, "N", kind)
    return Update(oid, old, reader.tuple("new row"), old_kind)


def _column(reader: _Reader) -> Column:
    (flags,), name = reader.fields("B", "column flags"), reader.string("column name")
    return Column(flags, name, *reader.fields("Ii", "column type oid and modifier"))


def _expect(marker: str, allowed: str, kind: str) -> None:
    if marker not in allowed:
        raise PgOutputError(f"{kind!r} message: tuple marker {marker!r}, expected one of {', '.join(allowed)}")


def row(relation: Relation, values: Tuple) -> dict[str, str | None]:
    """Column name → value of a row of ``relation``, leaving out the unchanged (TOASTed) ones."""
    if len(values) != len(relation.columns):
        raise PgOutputError(
            f"a row of {relation.namespace}.{relation.name} has {len(values)} values"
            f" for {len(relation.columns)} columns"
        )
    pairs = zip(relation.columns, values, strict=True)
    return {column.name: value for column, value in pairs if not isinstance(value, Unchanged)}
