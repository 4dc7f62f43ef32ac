-- PlaceOrder of 1 carton of the hot product: the statements of allocation's one
-- order transaction (services/allocation/src/api/orders.rs `place_order`, with the
-- platform's idempotency claim and outbox), one statement per round trip the handler
-- makes, in its order (6 with the BEGIN and the end):
--   the request id claimed with its audit record, and the retailer's replica row, the
--   cycle window and the catalog rows read in the same statement
--   (shared/platform/src/idempotency.rs `claim_statement`, store/orders.rs
--   `ORDER_CONTEXT`); the quota guard and the credit guard (cash retailers only) in
--   one statement (store/runs.rs `take_quota_and_credit`); the order with its line,
--   the OrderConfirmed outbox row with one pending delivery per subscriber
--   (customers, logistics) and the stored response in one statement
--   (`IdempotencyKey::publishing_statement` with store/orders.rs `INSERT_ORDER`); and
--   last the guarded supply update (store/orders.rs `take_supply_and_stock`, a
--   one-line order: the row every order of the product shares).
-- Keep it in step with those functions when they change.
--
-- ROLLED BACK, not committed: the demo's quota and supply are not consumed, so runs
-- can be repeated and the guards always take their "accepted" path. The row locks
-- (the hot supply row above all) are held to the end as a commit would hold them,
-- but a rollback does not wait for the WAL flush a commit does: this measures the
-- statements and the contention, not the commit's fsync.
-- Values the handler binds from rows it read earlier (area, settlement, price) are
-- taken from the same rows by primary key here.
--
-- Variables: retailers (ids r-00001 … r-R, as in point_select.sql), cycle (e.g.
-- 2026-W49), sku (the hot product). Needs -M prepared or extended.
\set n random(1, :retailers)
\set oid random(1, 9000000000000000000)
BEGIN;
WITH claimed AS (
  INSERT INTO allocation.idempotency_keys (caller, request_id, method, request_hash)
  VALUES (concat_ws(':', 'call_center_agent', 'pgbench-' || :client_id::text), 'pgbench-' || :oid::text,
          'PlaceOrder', sha256(('PlaceOrder' || :oid::text)::bytea))
  ON CONFLICT (caller, request_id) DO NOTHING
  RETURNING 1
), audited AS (
  INSERT INTO allocation.audit_log (actor, role, method, request_id, trace_id, request_hash)
  SELECT 'pgbench-' || :client_id::text, 'call_center_agent', 'PlaceOrder', 'pgbench-' || :oid::text, '',
         sha256(('PlaceOrder' || :oid::text)::bytea)
    FROM claimed
)
SELECT (SELECT count(*) FROM claimed) AS fresh, r.customer_id, r.area_id, r.owner_id, r.settlement,
       r.license_status, r.credit_limit_fen, r.blacklisted, c.opens_at, c.closes_at, p.*
  FROM allocation.retailers r
  LEFT JOIN allocation.cycles c ON c.cycle_id = :cycle::text
  LEFT JOIN allocation.products p ON p.sku = ANY(ARRAY[:sku::text])
 WHERE r.customer_id = 'r-' || lpad(:n::text, greatest(5, length(:n::text)), '0');
WITH ent AS (
  SELECT a.allocation_id,
         CASE WHEN sr.customer_id IS NOT NULL
               AND (cardinality(a.classes) = 0 OR sr.customer_class = ANY(a.classes))
               AND (cardinality(a.area_ids) = 0 OR sr.area_id = ANY(a.area_ids))
               AND (cardinality(a.formats) = 0 OR sr.format = ANY(a.formats))
               AND (cardinality(a.targets) = 0 OR sr.customer_id = ANY(a.targets))
              THEN coalesce(adj.quota, coalesce(t.quota, 0)
                   + CASE WHEN t.extra_until IS NOT NULL
                           AND sr.customer_id COLLATE "C" <= t.extra_until COLLATE "C"
                          THEN 1 ELSE 0 END)
              ELSE 0 END AS quota
    FROM allocation.allocations a
    LEFT JOIN allocation.snapshot_retailers sr ON sr.snapshot_id = a.snapshot_id
          AND sr.customer_id = 'r-' || lpad(:n::text, greatest(5, length(:n::text)), '0')
    LEFT JOIN allocation.allocation_tiers t ON t.allocation_id = a.allocation_id AND t.tier = sr.tier
    LEFT JOIN allocation.allocation_adjustments adj ON adj.allocation_id = a.allocation_id
          AND adj.customer_id = 'r-' || lpad(:n::text, greatest(5, length(:n::text)), '0')
   WHERE a.sku = :sku::text AND a.cycle_id = :cycle::text AND a.state = 2), taken AS (
  INSERT INTO allocation.consumption (sku, cycle_id, customer_id, allocation_id, quota, extra, consumed)
  SELECT :sku::text, :cycle::text, 'r-' || lpad(:n::text, greatest(5, length(:n::text)), '0'),
         ent.allocation_id, ent.quota, 0, 1
    FROM ent WHERE ent.quota >= 1
  ON CONFLICT (sku, cycle_id, customer_id) DO UPDATE SET consumed = consumption.consumed + EXCLUDED.consumed
   WHERE consumption.consumed + EXCLUDED.consumed <= consumption.quota + consumption.extra
  RETURNING sku
), charged AS (
  INSERT INTO allocation.exposures (customer_id, outstanding_fen)
  SELECT r.customer_id, p.wholesale_fen
    FROM allocation.retailers r JOIN allocation.products p ON p.sku = :sku::text
   WHERE r.customer_id = 'r-' || lpad(:n::text, greatest(5, length(:n::text)), '0')
     AND r.settlement <> 1 AND p.wholesale_fen <= r.credit_limit_fen
     AND (SELECT count(*) FROM taken) >= 0
  ON CONFLICT (customer_id) DO UPDATE SET outstanding_fen = exposures.outstanding_fen + EXCLUDED.outstanding_fen
   WHERE exposures.outstanding_fen + EXCLUDED.outstanding_fen
         <= (SELECT credit_limit_fen FROM allocation.retailers WHERE customer_id = exposures.customer_id)
  RETURNING outstanding_fen
)
SELECT (SELECT count(*) FROM taken) AS taken, (SELECT count(*) FROM charged) AS charged;
WITH placed AS (
  INSERT INTO allocation.orders (order_id, customer_id, cycle_id, channel, status, value_fen, exposure_fen,
         settlement, area_id, placed_by, created_at, picking_cutoff_at, cancelled_at, cancel_reason,
         cash_collected_fen, updated_at)
  SELECT 'pgbench-' || :oid::text, r.customer_id, :cycle::text, 1, 1, p.wholesale_fen,
         CASE WHEN r.settlement = 1 THEN 0 ELSE p.wholesale_fen END, r.settlement, r.area_id,
         'pgbench-' || :client_id::text, now(), now() + interval '1 day', NULL, '', 0, now()
    FROM allocation.retailers r JOIN allocation.products p ON p.sku = :sku::text
   WHERE r.customer_id = 'r-' || lpad(:n::text, greatest(5, length(:n::text)), '0')
  RETURNING order_id, value_fen
), lined AS (
  INSERT INTO allocation.order_lines (order_id, line_no, sku, cartons, unit_fen, scarce)
  SELECT placed.order_id, 1, :sku::text, 1, placed.value_fen, true FROM placed
), added AS (
  INSERT INTO allocation.outbox (event_id, event_type, aggregate, envelope)
  VALUES (gen_random_uuid(), 'OrderConfirmed', 'orders/pgbench-' || :oid::text, decode(repeat('0a', 420), 'hex'))
  RETURNING id
), pending AS (
  INSERT INTO allocation.outbox_pending (subscriber, outbox_id)
  SELECT s, added.id FROM unnest(ARRAY['customers', 'logistics']) AS s CROSS JOIN added
)
UPDATE allocation.idempotency_keys SET response = decode(repeat('0a', 300), 'hex')
 WHERE caller = concat_ws(':', 'call_center_agent', 'pgbench-' || :client_id::text)
   AND request_id = 'pgbench-' || :oid::text;
UPDATE allocation.supplies SET confirmed = confirmed + 1
 WHERE sku = :sku::text AND cycle_id = :cycle::text AND confirmed + 1 <= quantity - holdback
RETURNING sku;
ROLLBACK;
