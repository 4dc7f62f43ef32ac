-- Every statement that adds profiles notifies `+` once on `customers_changed`
-- (shared/platform/src/cache.rs `ADDED`): a new profile may belong on a cached page
-- of ListCustomers, so every replica empties those; caches by id keep what they hold.
-- Once per statement, not per row: a bulk load sends one notification.
CREATE FUNCTION notify_customers_added() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('customers_changed', '+');
    RETURN NULL;
END
$$;

CREATE TRIGGER customers_added
AFTER INSERT ON customers
FOR EACH STATEMENT EXECUTE FUNCTION notify_customers_added();
