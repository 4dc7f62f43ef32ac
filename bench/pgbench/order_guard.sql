-- PlaceOrder's reference (issue 8): the database work an order cannot do without —
-- the retailer's quota guard (consumption upsert that refuses past quota), the hot
-- product's supply guard (the one row every order of the product updates), and the
-- order row — in one COMMITTED transaction, so the commit's WAL flush is paid as the
-- service pays it. Everything PlaceOrder does beyond this (idempotency claim and
-- stored response, audit record, replica/cycle/catalog reads, order lines, outbox
-- event) is the service's overhead that the ratio exposes.
--
-- Runs on scratch copies (schema pgbench_scratch, made by scratch_setup.sql and
-- dropped afterwards by `distnet bench load place-order --pgbench`), so the demo's
-- quota and supply are not consumed; their guards always take the accepting path,
-- as the gRPC run's accepted orders do.
--
-- Variables: retailers (ids r-00001 … r-R), cycle (e.g. 2026-W49), sku (the hot
-- product). Needs -M prepared or extended.
\set n random(1, :retailers)
\set oid random(1, 9000000000000000000)
BEGIN;
INSERT INTO pgbench_scratch.consumption (sku, cycle_id, customer_id, allocation_id, quota, extra, consumed)
VALUES (:sku, :cycle, 'r-' || lpad(:n::text, greatest(5, length(:n::text)), '0'), 'pgbench', 1000000000, 0, 1)
ON CONFLICT (sku, cycle_id, customer_id) DO UPDATE SET consumed = consumption.consumed + 1
 WHERE consumption.consumed + 1 <= consumption.quota + consumption.extra
RETURNING quota + extra - consumed;
INSERT INTO pgbench_scratch.orders (order_id, customer_id, cycle_id, channel, status, value_fen, exposure_fen,
       settlement, area_id, placed_by, created_at, picking_cutoff_at, cancel_reason, cash_collected_fen, updated_at)
VALUES ('pgbench-' || :client_id::text || '-' || :oid::text, 'r-' || lpad(:n::text, greatest(5, length(:n::text)), '0'),
        :cycle, 1, 1, 25000, 0, 1, 'area-01', 'pgbench', now(), now() + interval '1 day', '', 0, now());
UPDATE pgbench_scratch.supplies SET confirmed = confirmed + 1
 WHERE sku = :sku AND cycle_id = :cycle AND confirmed + 1 <= quantity - holdback
RETURNING quantity - holdback - confirmed;
COMMIT;
