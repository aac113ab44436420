-- The WAL feed (ORDERS_LIVE_PG_CHANGES=wal): the writers' transactions carry no orders-live
-- trigger but the one that sets version and updated_at. One instance at a time (the WAL leader,
-- wal_leader.py) reads the write-ahead log through the replication slot and appends each
-- committed transaction's changes to the log, numbered by its commit's log position.
-- Run after schema.sql, in its transaction. Idempotent.

DROP TRIGGER IF EXISTS orders_live_after_write ON orders;
DROP TRIGGER IF EXISTS orders_live_truncated ON orders;
DROP TRIGGER IF EXISTS orders_live_number_commit ON orders_live_changes;
