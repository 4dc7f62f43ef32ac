-- GetEntitlements when the retailer's entitlements' make-up is cached (the usual
-- case; services/allocation/src/api/entitlements.rs): only the part orders change is
-- read — the supply left of the cycle's allocated products and the retailer's
-- consumption rows, by primary key (store/runs.rs `live_entitlements`). The handler has the
-- skus in memory; here a subquery lists them (5 rows of an index in the demo).
-- entitlements.sql is what a cache miss runs.
--
-- Variables: retailers (ids r-00001 … r-R, as in point_select.sql), cycle (e.g.
-- 2026-W49). Needs -M prepared or extended.
\set n random(1, :retailers)
SELECT s.sku, c.quota AS consumption_quota, coalesce(c.extra, 0) AS extra,
       coalesce(c.consumed, 0) AS consumed, s.quantity - s.holdback - s.confirmed AS supply_remaining
  FROM allocation.supplies s
  LEFT JOIN allocation.consumption c ON c.sku = s.sku AND c.cycle_id = s.cycle_id
        AND c.customer_id = 'r-' || lpad(:n::text, greatest(5, length(:n::text)), '0')
 WHERE s.cycle_id = :cycle
   AND s.sku = ANY(ARRAY(SELECT sku FROM allocation.allocations WHERE cycle_id = :cycle AND state = 2));
