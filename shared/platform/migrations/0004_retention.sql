-- Retention (platform `retention` sweep): the outbox, the inbox and the remembered
-- requests are swept by age, so each gets a BRIN index on its time column (rows
-- arrive in time order; a BRIN index costs next to nothing per insert, where a
-- b-tree costs an index entry on every mutating request).
CREATE INDEX outbox_created_at ON outbox USING brin (created_at);
CREATE INDEX inbox_processed_at ON inbox USING brin (processed_at);
DROP INDEX idempotency_keys_created_at;
CREATE INDEX idempotency_keys_created_at ON idempotency_keys USING brin (created_at);

-- A pending delivery is inserted in the same statement as its event, and an event is
-- swept only once no delivery is pending at or below it, so the foreign key only
-- cost a key-share lock of the event per subscriber on every mutating request.
ALTER TABLE outbox_pending DROP CONSTRAINT IF EXISTS outbox_pending_outbox_id_fkey;
