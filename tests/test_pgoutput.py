"""The pgoutput decoder: on a real PostgreSQL 15 server's bytes (read through a logical
replication slot with ``pg_logical_slot_get_binary_changes``), and on broken payloads."""

from __future__ import annotations

import random
import struct
import time
import uuid

import asyncpg
import pytest

from orders_live.sources.postgres.pgoutput import (
    UNCHANGED,
    Begin,
    Column,
    Commit,
    Delete,
    Insert,
    Other,
    PgOutputError,
    Relation,
    Truncate,
    Update,
    decode,
    row,
)

POSTGRES_EPOCH_US = 946_684_800 * 1_000_000  # 2000-01-01 00:00:00 UTC, in microseconds since 1970
INT8, TEXT, INT4 = 20, 25, 23  # type oids


def now_us() -> int:
    """Now in PostgreSQL's epoch, as commit times are sent."""
    return time.time_ns() // 1000 - POSTGRES_EPOCH_US


@pytest.mark.database
async def test_decodes_what_a_real_server_sends(postgres_url: str) -> None:
    """Insert (NULL, non-ASCII), update and delete with the whole old row (REPLICA IDENTITY
    FULL), a two-row transaction, TRUNCATE, and an update that leaves a TOASTed value out."""
    connection = await asyncpg.connect(postgres_url)
    slot = f"s_{uuid.uuid4().hex[:12]}"
    created = False
    try:
        wal_level = await connection.fetchval("SHOW wal_level")
        if wal_level != "logical":
            pytest.skip(f"the test server runs with wal_level={wal_level}; logical decoding needs wal_level=logical")
        await connection.execute(
            "CREATE TABLE t (id bigint PRIMARY KEY, name text, note text, n int);"
            " ALTER TABLE t REPLICA IDENTITY FULL;"
            " CREATE TABLE big (id int PRIMARY KEY, body text, n int);"
            " CREATE PUBLICATION p FOR TABLE t, big"
        )
        t_oid = await connection.fetchval("SELECT 't'::regclass::oid")
        big_oid = await connection.fetchval("SELECT 'big'::regclass::oid")
        await connection.execute("SELECT pg_create_logical_replication_slot($1, 'pgoutput')", slot)
        created = True

        before = now_us()
        await connection.execute("INSERT INTO t VALUES (1, 'Zoë ✓', NULL, 7)")
        await connection.execute("UPDATE t SET note = 'gift', n = 8 WHERE id = 1")
        await connection.execute("DELETE FROM t WHERE id = 1")
        async with connection.transaction():
            xid = await connection.fetchval("SELECT txid_current()") % 2**32
            await connection.execute("INSERT INTO t VALUES (2, 'a', NULL, NULL), (3, 'b', 'x', 3)")
        await connection.execute("TRUNCATE t")
        # 1,000 md5s barely compress: the value is stored out of line, and an update of n leaves it out.
        await connection.execute(
            "INSERT INTO big SELECT 1, string_agg(md5(i::text), ''), 1 FROM generate_series(1, 1000) AS i"
        )
        body = await connection.fetchval("SELECT body FROM big")
        await connection.execute("UPDATE big SET n = 2")
        after = now_us()

        rows = await connection.fetch(
            "SELECT lsn, data FROM pg_logical_slot_get_binary_changes($1, NULL, NULL,"
            " 'proto_version', '1', 'publication_names', 'p')",
            slot,
        )
    finally:
        if created:
            await connection.execute("SELECT pg_drop_replication_slot($1)", slot)
        await connection.close()

    messages = [decode(bytes(r["data"])) for r in rows]
    assert [type(m).__name__ for m in messages] == [
        *("Begin", "Relation", "Insert", "Commit"),
        *("Begin", "Update", "Commit"),
        *("Begin", "Delete", "Commit"),
        *("Begin", "Insert", "Insert", "Commit"),
        *("Begin", "Relation", "Truncate", "Commit"),
        *("Begin", "Relation", "Insert", "Commit"),
        *("Begin", "Update", "Commit"),
    ]
    t = Relation(
        t_oid,
        "public",
        "t",
        "f",
        (Column(1, "id", INT8, -1), Column(1, "name", TEXT, -1), Column(1, "note", TEXT, -1), Column(1, "n", INT4, -1)),
    )
    big = Relation(
        big_oid,
        "public",
        "big",
        "d",
        (Column(1, "id", INT4, -1), Column(0, "body", TEXT, -1), Column(0, "n", INT4, -1)),
    )
    first = ("1", "Zoë ✓", None, "7")
    second = ("1", "Zoë ✓", "gift", "8")
    changes = [m for m in messages if not isinstance(m, Begin | Commit)]
    assert changes == [
        t,
        Insert(t_oid, first),
        Update(t_oid, first, second, "O"),
        Delete(t_oid, second, "O"),
        Insert(t_oid, ("2", "a", None, None)),
        Insert(t_oid, ("3", "b", "x", "3")),
        t,  # sent again: TRUNCATE gives the table a new file, which invalidates what was sent of it
        Truncate(0, (t_oid,)),
        big,
        Insert(big_oid, ("1", body, "1")),
        Update(big_oid, None, ("1", UNCHANGED, "2"), None),
    ]
    assert row(t, first) == {"id": "1", "name": "Zoë ✓", "note": None, "n": "7"}
    assert row(big, ("1", UNCHANGED, "2")) == {"id": "1", "n": "2"}

    begins = [m for m in messages if isinstance(m, Begin)]
    commits = [m for m in messages if isinstance(m, Commit)]
    for begin, commit in zip(begins, commits, strict=True):
        assert begin.final_lsn == commit.commit_lsn < commit.end_lsn
        assert begin.commit_time_us == commit.commit_time_us
        assert before <= commit.commit_time_us <= after
        assert commit.flags == 0
    # In the slot function's result, a Commit's row carries its transaction's end LSN.
    assert [r["lsn"] for r, m in zip(rows, messages, strict=True) if isinstance(m, Commit)] == [
        c.end_lsn for c in commits
    ]
    assert [c.end_lsn for c in commits] == sorted({c.end_lsn for c in commits})
    assert begins[3].xid == xid
    assert len({b.xid for b in begins}) == len(begins)


def tuple_data(*values: bytes | None) -> bytes:
    """TupleData of text values (None: 'n')."""
    out = struct.pack("!h", len(values))
    for value in values:
        out += b"n" if value is None else b"t" + struct.pack("!i", len(value)) + value
    return out


RELATION = (
    b"R"
    + struct.pack("!I", 16384)
    + b"public\0orders\0d"
    + struct.pack("!h", 2)
    + b"\x01id\0"
    + struct.pack("!Ii", 20, -1)
    + b"\x00status\0"
    + struct.pack("!Ii", 25, -1)
)


@pytest.mark.fast
def test_an_unchanged_value_is_unchanged_and_left_out_of_the_row() -> None:
    relation = decode(RELATION)
    assert isinstance(relation, Relation)
    update = decode(b"U" + struct.pack("!I", 16384) + b"N" + struct.pack("!h", 2) + b"t\0\0\0\x015u")
    assert update == Update(16384, None, ("5", UNCHANGED), None)
    assert row(relation, update.new) == {"id": "5"}
    with pytest.raises(PgOutputError, match="1 values for 2 columns"):
        row(relation, ("5",))


@pytest.mark.fast
def test_other_messages_are_skippable() -> None:
    assert decode(b"O" + struct.pack("!Q", 1) + b"origin\0") == Other("O")
    assert decode(b"Y" + struct.pack("!I", 1) + b"public\0t\0") == Other("Y")
    assert decode(b"M\x01whatever") == Other("M")


@pytest.mark.fast
@pytest.mark.parametrize(
    ("payload", "complaint"),
    [
        (b"", "empty"),
        (b"B" + struct.pack("!Qq", 1, 2), "truncated"),
        (b"B" + struct.pack("!QqIB", 1, 2, 3, 0), "left over"),
        (b"C\x00" + struct.pack("!QQ", 1, 2), "truncated"),
        (RELATION[:10], "no NUL"),
        (RELATION[:-3], "truncated"),
        (RELATION[:-8], "truncated"),
        (b"R" + struct.pack("!I", 1) + b"public\0t\0d" + struct.pack("!h", -1), "truncated"),
        (b"R" + struct.pack("!I", 1) + b"p\xff\0t\0d" + struct.pack("!h", 0), "not UTF-8"),
        (b"I" + struct.pack("!I", 1) + b"N" + tuple_data(b"1")[:-1], "truncated"),
        (b"I" + struct.pack("!I", 1) + b"N" + struct.pack("!h", 1) + b"t" + struct.pack("!i", -1), "truncated"),
        (b"I" + struct.pack("!I", 1) + b"N" + struct.pack("!h", 1) + b"b" + struct.pack("!i", 1) + b"x", "binary"),
        (b"I" + struct.pack("!I", 1) + b"N" + struct.pack("!h", 1) + b"x", "unknown kind"),
        (b"I" + struct.pack("!I", 1) + b"N" + struct.pack("!h", -2), "truncated"),
        (b"I" + struct.pack("!I", 1) + b"K" + tuple_data(b"1"), "tuple marker 'K'"),
        (b"I" + struct.pack("!I", 1) + b"N" + tuple_data(b"1") + b"N", "left over"),
        (b"U" + struct.pack("!I", 1) + b"O" + tuple_data(b"1"), "truncated"),
        (b"U" + struct.pack("!I", 1) + b"O" + tuple_data(b"1") + b"O" + tuple_data(b"1"), "tuple marker 'O'"),
        (b"D" + struct.pack("!I", 1) + b"N" + tuple_data(b"1"), "tuple marker 'N'"),
        (b"D" + struct.pack("!I", 1), "truncated"),
        (b"T" + struct.pack("!iB", 2, 0) + struct.pack("!I", 1), "truncated"),
        (b"T" + struct.pack("!iB", -1, 0), "truncated"),
        (b"I\xff\xfe", "truncated"),
    ],
)
def test_a_broken_payload_raises_pgoutput_error(payload: bytes, complaint: str) -> None:
    with pytest.raises(PgOutputError, match=complaint):
        decode(payload)


@pytest.mark.fast
def test_a_well_formed_insert_truncate_and_delete_decode() -> None:
    """The same layouts as above, whole: so each broken case is broken by what it names only."""
    assert decode(b"I" + struct.pack("!I", 1) + b"N" + tuple_data(b"1", None)) == Insert(1, ("1", None))
    assert decode(b"D" + struct.pack("!I", 1) + b"K" + tuple_data(b"1", None)) == Delete(1, ("1", None), "K")
    assert decode(b"T" + struct.pack("!iB", 2, 3) + struct.pack("!II", 7, 8)) == Truncate(3, (7, 8))
    assert decode(b"C\x00" + struct.pack("!QQq", 1, 2, 3)) == Commit(0, 1, 2, 3)
    assert decode(b"B" + struct.pack("!QqI", 1, 2, 3)) == Begin(1, 2, 3)


WELL_FORMED = [
    b"B" + struct.pack("!QqI", 1, 2, 3),
    b"C\x00" + struct.pack("!QQq", 1, 2, 3),
    RELATION,
    b"I" + struct.pack("!I", 1) + b"N" + tuple_data(b"1", None, "Zoë".encode()),
    b"U" + struct.pack("!I", 1) + b"O" + tuple_data(b"1", b"a") + b"N" + tuple_data(b"1", b"b"),
    b"D" + struct.pack("!I", 1) + b"K" + tuple_data(b"1", None),
    b"T" + struct.pack("!iB", 2, 0) + struct.pack("!II", 7, 8),
]


@pytest.mark.fast
@pytest.mark.parametrize("payload", WELL_FORMED, ids=lambda payload: chr(payload[0]))
def test_every_truncation_of_a_message_raises_pgoutput_error(payload: bytes) -> None:
    decode(payload)
    for end in range(len(payload)):
        with pytest.raises(PgOutputError):
            decode(payload[:end])


@pytest.mark.fast
def test_garbage_raises_pgoutput_error_and_nothing_else() -> None:
    """Random bytes after each kind of message the decoder reads: almost always a PgOutputError,
    and never another exception (an IndexError or struct.error would fail the test)."""
    generator = random.Random(23)
    rejected = 0
    for _ in range(5000):
        payload = generator.choice(b"BCRIUDT").to_bytes(1, "big") + generator.randbytes(generator.randint(0, 40))
        try:
            decode(payload)
        except PgOutputError:
            rejected += 1
    assert rejected > 4900
