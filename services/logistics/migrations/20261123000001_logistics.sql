-- Logistics: the delivery network (depots, zones, vehicles), the customer facts a
-- delivery needs, and shipments.

CREATE TABLE depots (
    depot_id                TEXT PRIMARY KEY,
    display_name            TEXT NOT NULL,
    latitude                DOUBLE PRECISION NOT NULL,
    longitude               DOUBLE PRECISION NOT NULL,
    time_zone               TEXT NOT NULL,
    non_working_days        DATE[] NOT NULL,
    picking_capacity_cases  INTEGER NOT NULL CHECK (picking_capacity_cases >= 0),
    -- domain::slot::CutoffSchedule as JSON.
    cutoffs                 JSONB NOT NULL,
    updated_at              TIMESTAMPTZ NOT NULL
);

CREATE TABLE zones (
    zone_id       TEXT PRIMARY KEY,
    display_name  TEXT NOT NULL,
    depot_id      TEXT NOT NULL REFERENCES depots (depot_id),
    area_ids      TEXT[] NOT NULL,
    cycle_days    INTEGER NOT NULL CHECK (cycle_days BETWEEN 1 AND 14),
    cycle_day     INTEGER NOT NULL CHECK (cycle_day >= 0 AND cycle_day < cycle_days),
    cycle_anchor  DATE NOT NULL,
    frequency     SMALLINT NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL
);
CREATE INDEX zones_areas ON zones USING GIN (area_ids);

CREATE TABLE vehicles (
    vehicle_id        TEXT PRIMARY KEY,
    display_name      TEXT NOT NULL,
    depot_id          TEXT NOT NULL REFERENCES depots (depot_id),
    capacity_cases    INTEGER NOT NULL CHECK (capacity_cases > 0),
    crew_size         INTEGER NOT NULL CHECK (crew_size > 0),
    shift_start_min   INTEGER NOT NULL,
    shift_end_min     INTEGER NOT NULL,
    unavailable_days  DATE[] NOT NULL,
    updated_at        TIMESTAMPTZ NOT NULL,
    CHECK (0 <= shift_start_min AND shift_start_min < shift_end_min AND shift_end_min <= 1440)
);
CREATE INDEX vehicles_depot ON vehicles (depot_id, vehicle_id);

-- What a delivery needs to know of a retailer: from BatchGetCustomers, kept fresh by
-- CustomerChanged.
CREATE TABLE customer_cache (
    customer_id       TEXT PRIMARY KEY,
    display_name      TEXT NOT NULL,
    area_id           TEXT NOT NULL,
    owner_id          TEXT NOT NULL,
    latitude          DOUBLE PRECISION NOT NULL,
    longitude         DOUBLE PRECISION NOT NULL,
    -- distnet.common.v1.PostalAddress and LocalTimeWindow, encoded.
    address           BYTEA NOT NULL,
    receiving_window  BYTEA NOT NULL,
    updated_at        TIMESTAMPTZ NOT NULL
);

CREATE TABLE shipments (
    shipment_id    TEXT PRIMARY KEY,
    order_id       TEXT NOT NULL UNIQUE,
    customer_id    TEXT NOT NULL,
    area_id        TEXT NOT NULL,
    zone_id        TEXT,
    depot_id       TEXT,
    cartons        BIGINT NOT NULL CHECK (cartons >= 0),
    value_fen      BIGINT NOT NULL,
    slot_date      DATE,
    slot_half      SMALLINT NOT NULL DEFAULT 0,
    status         SMALLINT NOT NULL,
    confirmed_at   TIMESTAMPTZ NOT NULL,
    updated_at     TIMESTAMPTZ NOT NULL
);
CREATE INDEX shipments_slot ON shipments (depot_id, slot_date, slot_half, shipment_id);

-- Route plans, stored as their encoded `distnet.logistics.v1.Plan` with the keys the
-- service looks them up by; a plan changes only by publication or being superseded.
CREATE TABLE plans (
    plan_id       TEXT PRIMARY KEY,
    depot_id      TEXT NOT NULL REFERENCES depots (depot_id),
    slot_date     DATE NOT NULL,
    slot_half     SMALLINT NOT NULL,
    status        SMALLINT NOT NULL,
    body          BYTEA NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL,
    published_at  TIMESTAMPTZ
);
CREATE INDEX plans_slot ON plans (depot_id, slot_date, slot_half, status);
-- One published plan per slot.
CREATE UNIQUE INDEX plans_published ON plans (depot_id, slot_date, slot_half) WHERE status = 2;
