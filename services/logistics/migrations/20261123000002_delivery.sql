-- Delivery execution: which published route a shipment rides, who drives each route,
-- and every stop event with its proof of delivery.

-- domain::dispatch::DeliveryModel as JSON: the depot's road estimate and service times.
ALTER TABLE depots ADD COLUMN delivery_model JSONB NOT NULL DEFAULT '{}';

ALTER TABLE shipments
    ADD COLUMN plan_id           TEXT,
    ADD COLUMN attempts          INTEGER NOT NULL DEFAULT 0,
    ADD COLUMN cartons_delivered BIGINT NOT NULL DEFAULT 0 CHECK (cartons_delivered >= 0);
CREATE INDEX shipments_plan ON shipments (plan_id) WHERE plan_id IS NOT NULL;

-- A published plan's routes and their drivers: GetMyRoute looks routes up here.
CREATE TABLE route_drivers (
    plan_id     TEXT NOT NULL REFERENCES plans (plan_id),
    vehicle_id  TEXT NOT NULL,
    driver      TEXT NOT NULL,
    depot_id    TEXT NOT NULL,
    slot_date   DATE NOT NULL,
    slot_half   SMALLINT NOT NULL,
    PRIMARY KEY (plan_id, vehicle_id)
);
CREATE INDEX route_drivers_driver ON route_drivers (driver, slot_date);

-- What drivers recorded at stops, as recorded (proof of delivery is kept here).
CREATE TABLE stop_events (
    event_id           TEXT PRIMARY KEY,
    plan_id            TEXT NOT NULL REFERENCES plans (plan_id),
    shipment_id        TEXT NOT NULL REFERENCES shipments (shipment_id),
    vehicle_id         TEXT NOT NULL,
    kind               SMALLINT NOT NULL,
    failure_reason     SMALLINT NOT NULL DEFAULT 0,
    cartons_delivered  BIGINT NOT NULL DEFAULT 0,
    cash_fen           BIGINT NOT NULL DEFAULT 0 CHECK (cash_fen >= 0),
    recipient_name     TEXT NOT NULL DEFAULT '',
    signature_sha256   TEXT NOT NULL DEFAULT '',
    photo_sha256       TEXT NOT NULL DEFAULT '',
    latitude           DOUBLE PRECISION,
    longitude          DOUBLE PRECISION,
    notes              TEXT NOT NULL DEFAULT '',
    recorded_by        TEXT NOT NULL,
    occurred_at        TIMESTAMPTZ NOT NULL,
    recorded_at        TIMESTAMPTZ NOT NULL
);
CREATE INDEX stop_events_shipment ON stop_events (shipment_id, recorded_at);
