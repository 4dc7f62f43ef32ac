-- GetEntitlements caches, per retailer, what its entitlements are made of apart from
-- consumption and supply (those are read on every call): whose the retailer is (its
-- replica row's area and owner), the cycle's committed allocations, its snapshot
-- tier, the tier quotas and its adjustments (services/allocation/src/api/
-- entitlements.rs). A committed change to any of them notifies
-- `allocation_entitlements`, and every replica's cache (shared/platform/src/cache.rs)
-- drops what it no longer may serve: one retailer's entry when its replica row
-- changed ('<customer id>'), everything when allocations did ('*'). Orders write
-- none of these tables, so they notify nobody.
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

-- What the cache keeps of a replica row: whose the retailer is (area, account
-- manager) and whether its profile is here. Standings (license, tier, credit, …)
-- do not enter entitlements, which use the snapshot's tier, so a grading that
-- republishes every standing notifies nobody.
CREATE TRIGGER retailers_entitlements_updated
AFTER UPDATE ON retailers
FOR EACH ROW
WHEN ((OLD.area_id, OLD.owner_id, OLD.profile_known) IS DISTINCT FROM (NEW.area_id, NEW.owner_id, NEW.profile_known))
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
