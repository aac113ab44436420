-- The WAL feed (ORDERS_LIVE_PG_CHANGES=wal): the writers' transactions carry no orders-live
-- trigger but the one that sets version and updated_at. One instance at a time (the WAL leader,
-- wal_leader.py) reads the write-ahead log through the replication slot and appends each
-- committed transaction's changes to the log, numbered by its commit's log position.
-- Run after schema.sql, in its transaction. Idempotent.

-- Only when they are there: a DROP takes the table's strongest lock even when there is nothing
-- to drop, and the WAL reader appends to the log all the time.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = 'orders_live_after_write' AND tgrelid = 'orders'::regclass) THEN
        DROP TRIGGER orders_live_after_write ON orders;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = 'orders_live_truncated' AND tgrelid = 'orders'::regclass) THEN
        DROP TRIGGER orders_live_truncated ON orders;
    END IF;
    IF EXISTS (
        SELECT 1 FROM pg_trigger WHERE tgname = 'orders_live_number_commit' AND tgrelid = 'orders_live_changes'::regclass
    ) THEN
        DROP TRIGGER orders_live_number_commit ON orders_live_changes;
    END IF;
END
$$;
