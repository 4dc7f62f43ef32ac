-- Every committed change of a profile notifies its id on `customers_changed`: each
-- replica's read-through cache evicts it (shared/platform/src/cache.rs). NOTIFY is
-- delivered at commit and only then; a rolled-back change notifies nobody.
CREATE FUNCTION notify_customer_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('customers_changed', COALESCE(NEW.id, OLD.id));
    RETURN NULL;
END
$$;

CREATE TRIGGER customers_changed
AFTER UPDATE OR DELETE ON customers
FOR EACH ROW EXECUTE FUNCTION notify_customer_changed();
