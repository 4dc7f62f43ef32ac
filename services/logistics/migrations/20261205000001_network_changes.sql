-- Logistics keeps, per area, the zone and depot an order of that area is placed in
-- (services/logistics/src/events.rs, `Placements`): read once, then served from
-- memory for every confirmed order. Any committed change of zones or depots
-- (upserts, cut-off schedules, calendars) notifies `logistics_network`, and every
-- replica's cache (shared/platform/src/cache.rs) empties ('*'): the network is small
-- and changes seldom.
CREATE FUNCTION notify_network_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('logistics_network', '*');
    RETURN NULL;
END
$$;

CREATE TRIGGER zones_network_changed
AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON zones
FOR EACH STATEMENT EXECUTE FUNCTION notify_network_changed();

CREATE TRIGGER depots_network_changed
AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON depots
FOR EACH STATEMENT EXECUTE FUNCTION notify_network_changed();
