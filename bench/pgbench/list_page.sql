-- ListCustomers, first page in one area, as a call-center agent of every area sees it
-- (services/customers/src/store.rs `list` with `Visibility::InAreas`): the agent's
-- areas, the requested area, id order, page_size + 1 rows (the look-ahead row).
--
-- Variables (distnet bench load passes them with -D):
--   scope  = the agent's areas as a Postgres array literal, e.g. {area-01,area-02}
--   nareas = how many areas `scope` holds; a uniformly random one is listed
--   limit  = page_size + 1
-- Needs -M prepared or extended.
\set a random(1, :nareas)
SELECT id, display_name, legal_name, format, area_id, owner_id, province, city,
       district, street, postal_code, latitude, longitude, contact_name, contact_phone,
       receiving_start, receiving_end, receiving_time_zone, settlement, status, floor_area_sqm,
       visit_weekday, version, created_at, updated_at
  FROM customers.customers
 WHERE true AND (area_id = ANY(:scope::text[])) AND area_id = (:scope::text[])[:a]
 ORDER BY id LIMIT :limit;
