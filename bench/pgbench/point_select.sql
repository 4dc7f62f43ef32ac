-- GetCustomer (and the `mixed` scenario): the one primary-key SELECT the customers
-- handler runs (services/customers/src/store.rs `get`), every profile column.
--
-- `distnet bench load <scenario> --pgbench` runs this with
--   pgbench -n -M prepared -c N -j min(N,4) -T S -D retailers=R ...
-- retailers = the highest id number: the demo's ids are r-00001 … r-R
-- (`distnet up --demo`, `distnet seed`); a uniformly random one per transaction, as the
-- gRPC scenario picks a uniformly random listed retailer. Needs -M prepared or
-- extended (the ids are built from parameters).
\set n random(1, :retailers)
SELECT id, display_name, legal_name, format, area_id, owner_id, province, city,
       district, street, postal_code, latitude, longitude, contact_name, contact_phone,
       receiving_start, receiving_end, receiving_time_zone, settlement, status, floor_area_sqm,
       visit_weekday, version, created_at, updated_at
  FROM customers.customers
 WHERE id = 'r-' || lpad(:n::text, greatest(5, length(:n::text)), '0');
