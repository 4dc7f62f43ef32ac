-- The replica revision (`replica_state`, which lets a commit reuse an unchanged
-- snapshot) was bumped by the event handlers right after each retailer row they
-- changed. Two deliveries side by side (StandingChanged from accreditation,
-- CustomerChanged from customers) then took a retailer row and the revision row in
-- different orders and could deadlock. The revision is now bumped at commit, by a
-- deferred trigger, after every retailer row the transaction touched: the revision
-- row is always the last lock an event's transaction takes, and every change to the
-- replica bumps it, whoever writes it.
CREATE FUNCTION bump_replica_revision() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE replica_state SET revision = revision + 1 WHERE id = 1;
    RETURN NULL;
END
$$;

CREATE CONSTRAINT TRIGGER retailers_replica_revision
AFTER INSERT OR UPDATE OR DELETE ON retailers
DEFERRABLE INITIALLY DEFERRED
FOR EACH ROW EXECUTE FUNCTION bump_replica_revision();
