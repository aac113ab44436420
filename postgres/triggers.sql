-- The trigger feed (ORDERS_LIVE_PG_CHANGES=triggers): every write to orders appends its change
-- to orders_live_changes in the writer's own transaction and NOTIFYs a wake-up; at commit, the
-- constraint trigger numbers the transaction (orders_live_commits) under an advisory lock.
-- Run after schema.sql, in its transaction. Idempotent.

CREATE OR REPLACE TRIGGER orders_live_after_write
    AFTER INSERT OR UPDATE OR DELETE ON orders
    FOR EACH ROW EXECUTE FUNCTION orders_live_after_write();

CREATE OR REPLACE TRIGGER orders_live_truncated
    AFTER TRUNCATE ON orders
    FOR EACH STATEMENT EXECUTE FUNCTION orders_live_truncated();

DO $$
BEGIN
    IF NOT EXISTS (
        SELECT 1 FROM pg_trigger
        WHERE tgname = 'orders_live_number_commit' AND tgrelid = 'orders_live_changes'::regclass
    ) THEN
        -- A constraint trigger cannot be CREATE OR REPLACEd.
        CREATE CONSTRAINT TRIGGER orders_live_number_commit
            AFTER INSERT ON orders_live_changes
            DEFERRABLE INITIALLY DEFERRED
            FOR EACH ROW EXECUTE FUNCTION orders_live_number_commit();
    END IF;
END
$$;

-- Updates and deletes log only the key in the WAL again (the WAL feed had them log the old row).
DO $$
BEGIN
    IF (SELECT relreplident FROM pg_class WHERE oid = 'orders'::regclass) = 'f' THEN
        ALTER TABLE orders REPLICA IDENTITY DEFAULT;
    END IF;
END
$$;

-- Commit numbers go on from the highest the log holds (the WAL feed numbers commits by their
-- log position, which is far higher than a count).
SELECT setval(
    pg_get_serial_sequence('orders_live_commits', 'commit_seq'),
    GREATEST((SELECT max(commit_seq) FROM orders_live_commits), 1)
) WHERE (SELECT max(commit_seq) FROM orders_live_commits) IS NOT NULL;
