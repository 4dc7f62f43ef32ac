-- Customer profiles: one record per retailer shared by every channel.
-- Enum columns hold the proto enum numbers of distnet.customers.v1.

CREATE TABLE customers (
    id                TEXT PRIMARY KEY,
    display_name      TEXT NOT NULL,
    legal_name        TEXT NOT NULL DEFAULT '',
    format            SMALLINT NOT NULL,
    area_id           TEXT NOT NULL,
    owner_id          TEXT NOT NULL,
    province          TEXT NOT NULL DEFAULT '',
    city              TEXT NOT NULL DEFAULT '',
    district          TEXT NOT NULL DEFAULT '',
    street            TEXT NOT NULL DEFAULT '',
    postal_code       TEXT NOT NULL DEFAULT '',
    latitude          DOUBLE PRECISION NOT NULL CHECK (latitude BETWEEN -90 AND 90),
    longitude         DOUBLE PRECISION NOT NULL CHECK (longitude BETWEEN -180 AND 180),
    contact_name      TEXT NOT NULL DEFAULT '',
    contact_phone     TEXT NOT NULL DEFAULT '',
    -- Receiving window in minutes after local midnight, in receiving_time_zone.
    receiving_start   SMALLINT CHECK (receiving_start BETWEEN 0 AND 1439),
    receiving_end     SMALLINT CHECK (receiving_end BETWEEN 1 AND 1440),
    receiving_time_zone TEXT NOT NULL DEFAULT '',
    settlement        SMALLINT NOT NULL,
    status            SMALLINT NOT NULL,
    floor_area_sqm    INTEGER NOT NULL DEFAULT 0 CHECK (floor_area_sqm >= 0),
    version           BIGINT NOT NULL DEFAULT 1,
    created_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    CHECK (receiving_start IS NULL OR receiving_end > receiving_start)
);

CREATE INDEX customers_area ON customers (area_id, id);
CREATE INDEX customers_owner ON customers (owner_id, id);
CREATE INDEX customers_name_prefix ON customers (lower(display_name) text_pattern_ops);

-- Who owned each relationship, when. Exactly one current owner per customer.
CREATE TABLE customer_ownerships (
    customer_id   TEXT NOT NULL REFERENCES customers (id),
    owner_id      TEXT NOT NULL,
    start_time    TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    end_time      TIMESTAMPTZ,
    assigned_by   TEXT NOT NULL,
    reason        TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (customer_id, start_time)
);

CREATE UNIQUE INDEX customer_ownerships_current
    ON customer_ownerships (customer_id) WHERE end_time IS NULL;
