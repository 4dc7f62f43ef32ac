-- Order facts and the four degrees (domain::insights).

-- One row per allocation order (from OrderConfirmed / OrderCancelled; id = order
-- id), or per customer and cycle imported from the previous system
-- (id = 'import:{customer_id}:{cycle}').
CREATE TABLE order_facts (
    id              TEXT PRIMARY KEY,
    customer_id     TEXT NOT NULL,
    -- '2026-W48' and the Monday it starts on.
    cycle           TEXT NOT NULL,
    week_start      DATE NOT NULL,
    orders          INTEGER NOT NULL CHECK (orders >= 0),
    value_fen       BIGINT NOT NULL CHECK (value_fen >= 0),
    cartons         BIGINT NOT NULL CHECK (cartons >= 0),
    scarce_cartons  BIGINT NOT NULL CHECK (scarce_cartons BETWEEN 0 AND cartons),
    -- 'ORDER' or 'IMPORT'.
    source          TEXT NOT NULL,
    -- A cancelled order stays, so that a late confirmation does not revive it.
    cancelled       BOOLEAN NOT NULL DEFAULT false,
    recorded_at     TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX order_facts_customer ON order_facts (customer_id, week_start);
CREATE INDEX order_facts_week ON order_facts (week_start);

-- Bumped whenever an input of the insights changes (nextval is not transactional); the
-- refresh runs when it moved since the last run.
CREATE SEQUENCE insight_input_changes;

-- The last computed insights of each customer.
CREATE TABLE customer_insights (
    customer_id   TEXT PRIMARY KEY,
    -- distnet.customers.v1.Segment.
    segment       SMALLINT NOT NULL,
    -- Bit (1 << CustomerFlag) for each flag.
    flags         SMALLINT NOT NULL,
    -- distnet.customers.v1.CustomerInsights (protobuf), without compute_time.
    body          BYTEA NOT NULL,
    -- When this row last changed.
    changed_at    TIMESTAMPTZ NOT NULL
);

CREATE INDEX customer_insights_segment ON customer_insights (segment, customer_id);

-- The refresh's own state (one row).
CREATE TABLE insight_runs (
    singleton     BOOLEAN PRIMARY KEY DEFAULT true CHECK (singleton),
    -- insight_input_changes as read when the last run started.
    change_seen   BIGINT NOT NULL,
    -- False after a run that a change triggered: one more run follows, to pick up
    -- changes that were committing while it read.
    settled       BOOLEAN NOT NULL,
    -- Monday of the window's current cycle at the last run.
    window_end    DATE NOT NULL,
    computed_at   TIMESTAMPTZ NOT NULL
);
