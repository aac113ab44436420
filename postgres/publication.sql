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
    ELSIF NOT EXISTS (
        SELECT 1 FROM pg_publication_rel r JOIN pg_publication p ON p.oid = r.prpubid
        WHERE p.pubname = 'orders_live' AND r.prrelid = 'orders'::regclass
    ) THEN
        -- a dropped table leaves its publications: a recreated orders table is added again
        ALTER PUBLICATION orders_live ADD TABLE orders;
    END IF;
END
$$;
