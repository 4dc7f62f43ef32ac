-- LogInteraction's reference (the `mixed` scenario's logged calls): the one row a
-- logged call cannot do without, the interaction with its two indexes, committed on
-- its own so that its WAL flush is paid as the service pays it. Everything
-- LogInteraction does beyond this (idempotency claim with its audit record, the
-- retailer's read for its scope, the stored response) is the service's overhead.
--
-- Runs on a scratch copy (schema pgbench_scratch, made by scratch_setup.sql and
-- dropped afterwards by `distnet bench load --pgbench`).
--
-- Variables: retailers (ids r-00001 … r-R). Needs -M prepared or extended.
\set n random(1, :retailers)
\set iid random(1, 9000000000000000000)
INSERT INTO pgbench_scratch.interactions (id, customer_id, area_id, channel, actor, actor_role, time, outcome,
       notes, check_in_latitude, check_in_longitude, check_in_distance_m, flagged, tasks, order_id)
VALUES ('pgbench-' || :client_id::text || '-' || :iid::text, 'r-' || lpad(:n::text, greatest(5, length(:n::text)), '0'),
        'area-01', 1, 'pgbench', 'CALL_CENTER_AGENT', now(), 'ORDER_TAKEN', '', NULL, NULL, NULL, false, '{}', '');
