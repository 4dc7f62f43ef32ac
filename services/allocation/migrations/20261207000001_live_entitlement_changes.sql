-- GetEntitlements keeps each retailer's consumption and each product's supply left in
-- memory (services/allocation/src/api/entitlements.rs). Orders and cancellations,
-- which change `consumption.consumed` and `supplies.confirmed` (and create
-- consumption rows) many times a second, announce what they changed on
-- `allocation_live` after their commit: a NOTIFY inside their transactions would make
-- every order commit after the one before it. Every other change to what is cached
-- notifies from here, inside its transaction, to every replica: a supply set or
-- extra quota granted (columns orders never set), rows deleted or truncated. The
-- statement-level triggers fire once per statement, whatever it touched, so they
-- empty every replica's cache ('*'); they are rare.
--
-- Changing `consumed` or `confirmed` by hand leaves other replicas serving the old
-- figures for up to `allocation.entitlements_live_max_age_seconds`; after such a
-- change, run `NOTIFY allocation_live, '*'`.
CREATE FUNCTION notify_live_entitlements_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('allocation_live', '*');
    RETURN NULL;
END
$$;

CREATE TRIGGER supplies_live_set
AFTER INSERT OR DELETE OR TRUNCATE ON supplies
FOR EACH STATEMENT EXECUTE FUNCTION notify_live_entitlements_changed();

CREATE TRIGGER supplies_live_updated
AFTER UPDATE OF sku, cycle_id, quantity, holdback ON supplies
FOR EACH STATEMENT EXECUTE FUNCTION notify_live_entitlements_changed();

CREATE TRIGGER consumption_live_deleted
AFTER DELETE OR TRUNCATE ON consumption
FOR EACH STATEMENT EXECUTE FUNCTION notify_live_entitlements_changed();

CREATE TRIGGER consumption_live_updated
AFTER UPDATE OF sku, cycle_id, customer_id, quota, extra ON consumption
FOR EACH STATEMENT EXECUTE FUNCTION notify_live_entitlements_changed();
