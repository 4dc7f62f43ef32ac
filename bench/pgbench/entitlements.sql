-- GetEntitlements on a cache miss (entitlements_live.sql is the usual, cached case):
-- what the allocation handler runs (services/allocation/src/api/entitlements.rs
-- `get_entitlements`): the retailer's replica row by primary key (`retailer_in_scope`),
-- then its entitlements of the cycle (store/runs.rs `entitlements`: committed
-- allocations, the snapshot tier, tier quota, dynamic-balance adjustment, consumption
-- and remaining supply).
--
-- Variables: retailers (ids r-00001 … r-R, as in point_select.sql), cycle (e.g.
-- 2026-W49). Needs -M prepared or extended.
\set n random(1, :retailers)
SELECT customer_id, area_id, owner_id, settlement, license_status, credit_limit_fen, blacklisted
  FROM allocation.retailers
 WHERE customer_id = 'r-' || lpad(:n::text, greatest(5, length(:n::text)), '0');
SELECT a.allocation_id, a.sku, coalesce(sr.tier, 0) AS tier,
       coalesce(c.quota,
                CASE WHEN sr.customer_id IS NOT NULL
                      AND (cardinality(a.classes) = 0 OR sr.customer_class = ANY(a.classes))
                      AND (cardinality(a.area_ids) = 0 OR sr.area_id = ANY(a.area_ids))
                      AND (cardinality(a.formats) = 0 OR sr.format = ANY(a.formats))
                      AND (cardinality(a.targets) = 0 OR sr.customer_id = ANY(a.targets))
                     THEN coalesce(adj.quota, coalesce(t.quota, 0)
                          + CASE WHEN t.extra_until IS NOT NULL
                                  AND sr.customer_id COLLATE "C" <= t.extra_until COLLATE "C"
                                 THEN 1 ELSE 0 END)
                     ELSE 0 END) AS quota,
       coalesce(c.extra, 0) AS extra, coalesce(c.consumed, 0) AS consumed,
       s.quantity - s.holdback - s.confirmed AS supply_remaining
  FROM allocation.allocations a
  LEFT JOIN allocation.snapshot_retailers sr ON sr.snapshot_id = a.snapshot_id
        AND sr.customer_id = 'r-' || lpad(:n::text, greatest(5, length(:n::text)), '0')
  LEFT JOIN allocation.allocation_tiers t ON t.allocation_id = a.allocation_id AND t.tier = sr.tier
  LEFT JOIN allocation.allocation_adjustments adj ON adj.allocation_id = a.allocation_id
        AND adj.customer_id = 'r-' || lpad(:n::text, greatest(5, length(:n::text)), '0')
  LEFT JOIN allocation.consumption c ON c.sku = a.sku AND c.cycle_id = a.cycle_id
        AND c.customer_id = 'r-' || lpad(:n::text, greatest(5, length(:n::text)), '0')
  JOIN allocation.supplies s ON s.sku = a.sku AND s.cycle_id = a.cycle_id
 WHERE a.cycle_id = :cycle AND a.state = 2
 ORDER BY a.sku;
