-- Licensing and standings. Enum columns hold distnet.accreditation.v1 enum numbers.

-- What accreditation knows of each retailer, kept fresh by CustomerChanged.
CREATE TABLE customer_cache (
    customer_id     TEXT PRIMARY KEY,
    area_id         TEXT NOT NULL,
    owner_id        TEXT NOT NULL,
    display_name    TEXT NOT NULL,
    format          SMALLINT NOT NULL,
    floor_area_sqm  INTEGER NOT NULL,
    latitude        DOUBLE PRECISION NOT NULL,
    longitude       DOUBLE PRECISION NOT NULL,
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- An application is a document that changes only through its state machine; the
-- columns are what queries and locks need, the body the full record.
CREATE TABLE applications (
    id            TEXT PRIMARY KEY,
    customer_id   TEXT NOT NULL,
    state         SMALLINT NOT NULL,
    body          BYTEA NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX applications_customer ON applications (customer_id);

CREATE SEQUENCE license_numbers;

CREATE TABLE licenses (
    number           TEXT PRIMARY KEY,
    customer_id      TEXT NOT NULL,
    status           SMALLINT NOT NULL,
    valid_from       TIMESTAMPTZ NOT NULL,
    valid_to         TIMESTAMPTZ NOT NULL,
    suspended_until  TIMESTAMPTZ,
    status_reason    TEXT NOT NULL DEFAULT '',
    area_id          TEXT NOT NULL,
    latitude         DOUBLE PRECISION NOT NULL,
    longitude        DOUBLE PRECISION NOT NULL,
    updated_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    CHECK (valid_to > valid_from)
);
-- One license in force (ACTIVE = 1, SUSPENDED = 2) per retailer.
CREATE UNIQUE INDEX licenses_one_in_force ON licenses (customer_id) WHERE status IN (1, 2);
CREATE INDEX licenses_expiry ON licenses (valid_to) WHERE status IN (1, 2);
CREATE INDEX licenses_area ON licenses (area_id, number);
CREATE INDEX licenses_active_location ON licenses (latitude, longitude) WHERE status = 1;

CREATE TABLE violations (
    id                 TEXT PRIMARY KEY,
    license_number     TEXT NOT NULL REFERENCES licenses (number),
    customer_id        TEXT NOT NULL,
    type               SMALLINT NOT NULL,
    severity           SMALLINT NOT NULL,
    points             INTEGER NOT NULL,
    evidence_refs      TEXT[] NOT NULL DEFAULT '{}',
    note               TEXT NOT NULL DEFAULT '',
    recorded_by        TEXT NOT NULL,
    recorded_at        TIMESTAMPTZ NOT NULL,
    suspended_license  BOOLEAN NOT NULL DEFAULT false
);
CREATE INDEX violations_license_time ON violations (license_number, recorded_at);

-- The published facts per retailer; version increases with every change.
CREATE TABLE standings (
    customer_id       TEXT PRIMARY KEY,
    area_id           TEXT NOT NULL,
    license_number    TEXT NOT NULL DEFAULT '',
    license_status    SMALLINT NOT NULL DEFAULT 0,
    tier              INTEGER NOT NULL DEFAULT 0,
    grading_version   BIGINT NOT NULL DEFAULT 0,
    -- distnet.accreditation.v1.CustomerClass number; 0 = not classified yet.
    customer_class    SMALLINT NOT NULL DEFAULT 0,
    rebate_bp         INTEGER NOT NULL DEFAULT 0,
    credit_grade      TEXT NOT NULL DEFAULT '',
    credit_limit_fen  BIGINT NOT NULL DEFAULT 0,
    blacklisted       BOOLEAN NOT NULL DEFAULT false,
    blacklist_reason  TEXT NOT NULL DEFAULT '',
    version           BIGINT NOT NULL DEFAULT 0,
    updated_at        TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX standings_area ON standings (area_id, customer_id);
