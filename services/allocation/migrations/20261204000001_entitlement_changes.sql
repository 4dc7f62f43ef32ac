-- GetEntitlements caches, per retailer, what its entitlements are made of apart from
-- consumption and supply (those are read on every call): its replica row, the
-- cycle's committed allocations, its snapshot tier, the tier quotas and its
-- adjustments (services/allocation/src/api/orders.rs). A committed change to any of
-- them notifies `allocation_entitlements`, and every replica's cache
-- (shared/platform/src/cache.rs) drops what it no longer may serve: one retailer's
-- entry when its replica row changed ('<customer id>'), everything when allocations
-- did ('*'). Orders write none of these tables, so they notify nobody.
CREATE FUNCTION notify_entitlements_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_LEVEL = 'ROW' THEN
        PERFORM pg_notify('allocation_entitlements', COALESCE(NEW.customer_id, OLD.customer_id));
    ELSE
        PERFORM pg_notify('allocation_entitlements', '*');
    END IF;
    RETURN NULL;
END
$$;

-- What the cache keeps of a replica row; standings (tier, class, versions) do not
-- enter entitlements, which use the snapshot's tier.
CREATE TRIGGER retailers_entitlements_updated
AFTER UPDATE ON retailers
FOR EACH ROW
WHEN ((OLD.area_id, OLD.owner_id, OLD.settlement, OLD.license_status, OLD.credit_limit_fen,
       OLD.blacklisted, OLD.profile_known)
      IS DISTINCT FROM
      (NEW.area_id, NEW.owner_id, NEW.settlement, NEW.license_status, NEW.credit_limit_fen,
       NEW.blacklisted, NEW.profile_known))
EXECUTE FUNCTION notify_entitlements_changed();

CREATE TRIGGER retailers_entitlements_deleted
AFTER DELETE ON retailers
FOR EACH ROW EXECUTE FUNCTION notify_entitlements_changed();

CREATE TRIGGER allocations_entitlements
AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON allocations
FOR EACH STATEMENT EXECUTE FUNCTION notify_entitlements_changed();

CREATE TRIGGER allocation_tiers_entitlements
AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON allocation_tiers
FOR EACH STATEMENT EXECUTE FUNCTION notify_entitlements_changed();

CREATE TRIGGER allocation_adjustments_entitlements
AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON allocation_adjustments
FOR EACH STATEMENT EXECUTE FUNCTION notify_entitlements_changed();

CREATE TRIGGER snapshot_retailers_entitlements
AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON snapshot_retailers
FOR EACH STATEMENT EXECUTE FUNCTION notify_entitlements_changed();
