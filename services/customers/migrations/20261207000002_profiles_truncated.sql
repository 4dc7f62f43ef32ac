-- A TRUNCATE fires neither the row trigger nor the insert trigger: it notifies `*`
-- on `customers_changed`, so every replica's profile and page caches empty.
CREATE FUNCTION notify_customers_truncated() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('customers_changed', '*');
    RETURN NULL;
END
$$;

CREATE TRIGGER customers_truncated
AFTER TRUNCATE ON customers
FOR EACH STATEMENT EXECUTE FUNCTION notify_customers_truncated();
