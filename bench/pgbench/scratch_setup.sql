-- Scratch copies for the write references (order_guard.sql, log_interaction.sql): the
-- tables' shapes (keys, checks, indexes; no foreign keys), the cycle's supply rows
-- with room for any run, no consumption, orders or interactions yet. Dropped again by
-- `distnet bench load --pgbench` when pgbench is done.
DROP SCHEMA IF EXISTS pgbench_scratch CASCADE;
CREATE SCHEMA pgbench_scratch;
CREATE TABLE pgbench_scratch.supplies (LIKE allocation.supplies INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING INDEXES);
INSERT INTO pgbench_scratch.supplies SELECT * FROM allocation.supplies;
UPDATE pgbench_scratch.supplies SET quantity = 1000000000000, holdback = 0, confirmed = 0;
CREATE TABLE pgbench_scratch.consumption (LIKE allocation.consumption INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING INDEXES);
CREATE TABLE pgbench_scratch.orders (LIKE allocation.orders INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING INDEXES);
CREATE TABLE pgbench_scratch.interactions (LIKE customers.interactions INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING INDEXES);
ANALYZE pgbench_scratch.supplies;
