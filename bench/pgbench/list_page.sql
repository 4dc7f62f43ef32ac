-- ListCustomers, first page in one area, as a call-center agent of every area sees it
-- (services/customers/src/store.rs `list` with `Visibility::InAreas`): the agent's
-- areas, the requested area, id order, page_size + 1 rows (the look-ahead row).
-- The page's ids and versions only: the service takes the profiles from its cache
-- when it holds them at those versions, and reads the others by id.
--
-- Variables (distnet bench load passes them with -D):
--   scope  = the agent's areas as a Postgres array literal, e.g. {area-01,area-02}
--   nareas = how many areas `scope` holds; a uniformly random one is listed
--   limit  = page_size + 1
-- Needs -M prepared or extended.
\set a random(1, :nareas)
SELECT id, version
  FROM customers.customers
 WHERE true AND (area_id = ANY(:scope::text[])) AND area_id = (:scope::text[])[:a]
 ORDER BY id LIMIT :limit;
