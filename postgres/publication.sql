-- The WAL feed's publication, made before its replication slot (pgoutput looks the publication
-- up as of each change it decodes: a slot older than its publication fails on the changes in
-- between). Run after schema.sql, in its transaction. Idempotent.

-- A delete or an update carries the whole old row: its status and customer route the change
-- (a row leaving a status or a customer's scope).
DO $$
BEGIN
    IF (SELECT relreplident FROM pg_class WHERE oid = 'orders'::regclass) <> 'f' THEN
        ALTER TABLE orders REPLICA IDENTITY FULL;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_publication WHERE pubname = 'orders_live') THEN
        CREATE PUBLICATION orders_live FOR TABLE orders;
    END IF;
END
$$;
