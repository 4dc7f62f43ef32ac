-- Allocation: catalog, cycles, supply, policies, runs, entitlements and orders, and
-- the replica of the retailers' standings it decides with.

-- What allocation knows of each retailer: from `CustomerChanged` (area, owner,
-- format, settlement) and `StandingChanged` (license, tier, class, credit, blacklist).
CREATE TABLE retailers (
    customer_id       TEXT PRIMARY KEY,
    area_id           TEXT NOT NULL DEFAULT '',
    owner_id          TEXT NOT NULL DEFAULT '',
    format            SMALLINT NOT NULL DEFAULT 0,
    settlement        SMALLINT NOT NULL DEFAULT 0,
    license_status    SMALLINT NOT NULL DEFAULT 0,
    tier              INTEGER NOT NULL DEFAULT 0,
    grading_version   BIGINT NOT NULL DEFAULT 0,
    customer_class    SMALLINT NOT NULL DEFAULT 0,
    credit_limit_fen  BIGINT NOT NULL DEFAULT 0,
    blacklisted       BOOLEAN NOT NULL DEFAULT false,
    standing_version  BIGINT NOT NULL DEFAULT 0,
    updated_at        TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Bumped by every replica change, so a commit reuses an unchanged snapshot.
CREATE TABLE replica_state (
    id        SMALLINT PRIMARY KEY CHECK (id = 1),
    revision  BIGINT NOT NULL
);
INSERT INTO replica_state VALUES (1, 0);

CREATE TABLE products (
    sku               TEXT PRIMARY KEY,
    display_name      TEXT NOT NULL,
    price_class       SMALLINT NOT NULL CHECK (price_class BETWEEN 1 AND 5),
    wholesale_fen     BIGINT NOT NULL CHECK (wholesale_fen >= 0),
    cartons_per_case  INTEGER NOT NULL CHECK (cartons_per_case > 0),
    scarce            BOOLEAN NOT NULL,
    stock_cartons     BIGINT NOT NULL DEFAULT 0 CHECK (stock_cartons >= 0),
    updated_at        TIMESTAMPTZ NOT NULL
);

-- Only cycles whose window was set explicitly; the others have the default window.
CREATE TABLE cycles (
    cycle_id      TEXT PRIMARY KEY,
    opens_at      TIMESTAMPTZ NOT NULL,
    closes_at     TIMESTAMPTZ NOT NULL,
    release_at    TIMESTAMPTZ NOT NULL,
    CHECK (opens_at < closes_at)
);

CREATE TABLE supplies (
    sku        TEXT NOT NULL REFERENCES products (sku),
    cycle_id   TEXT NOT NULL,
    quantity   BIGINT NOT NULL CHECK (quantity >= 0),
    holdback   BIGINT NOT NULL CHECK (holdback >= 0 AND holdback <= quantity),
    target     BIGINT NOT NULL DEFAULT 0 CHECK (target >= 0),
    -- Cartons on confirmed orders; the guard that nothing is oversold.
    confirmed  BIGINT NOT NULL DEFAULT 0 CHECK (confirmed >= 0 AND confirmed <= quantity - holdback),
    updated_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (sku, cycle_id)
);

CREATE TABLE demand_estimates (
    sku                TEXT NOT NULL REFERENCES products (sku),
    month              TEXT NOT NULL,
    last_year_cartons  BIGINT NOT NULL,
    growth_cartons     BIGINT NOT NULL,
    holiday_factor_bp  INTEGER NOT NULL,
    cartons            BIGINT NOT NULL,
    explanation        TEXT NOT NULL,
    estimated_by       TEXT NOT NULL,
    updated_at         TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (sku, month)
);

CREATE TABLE policies (
    sku         TEXT PRIMARY KEY REFERENCES products (sku),
    body        JSONB NOT NULL,
    version     BIGINT NOT NULL,
    updated_by  TEXT NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL
);

-- The retailers a commit allocated to: license ACTIVE, not blacklisted, graded.
CREATE TABLE snapshots (
    snapshot_id      TEXT PRIMARY KEY,
    revision         BIGINT NOT NULL,
    grading_version  BIGINT NOT NULL,
    retailers        BIGINT NOT NULL,
    taken_at         TIMESTAMPTZ NOT NULL
);

CREATE TABLE snapshot_retailers (
    snapshot_id     TEXT NOT NULL REFERENCES snapshots (snapshot_id),
    customer_id     TEXT NOT NULL,
    tier            INTEGER NOT NULL,
    customer_class  SMALLINT NOT NULL,
    area_id         TEXT NOT NULL,
    format          SMALLINT NOT NULL,
    PRIMARY KEY (snapshot_id, customer_id)
);

CREATE TABLE allocations (
    allocation_id     TEXT PRIMARY KEY,
    sku               TEXT NOT NULL REFERENCES products (sku),
    cycle_id          TEXT NOT NULL,
    state             SMALLINT NOT NULL,
    kind              SMALLINT NOT NULL,
    policy_version    BIGINT NOT NULL,
    snapshot_id       TEXT NOT NULL REFERENCES snapshots (snapshot_id),
    grading_version   BIGINT NOT NULL,
    -- Eligibility, as SQL can test it against a snapshot row; empty = no filter.
    classes           SMALLINT[] NOT NULL,
    area_ids          TEXT[] NOT NULL,
    formats           SMALLINT[] NOT NULL,
    targets           TEXT[] NOT NULL,
    supply_available  BIGINT NOT NULL,
    target            BIGINT NOT NULL,
    total             BIGINT NOT NULL,
    leftover          BIGINT NOT NULL,
    shortfall         BIGINT NOT NULL,
    unmet_floor       BIGINT NOT NULL,
    eligible          BIGINT NOT NULL,
    released          BIGINT NOT NULL DEFAULT 0,
    scaled_down       BIGINT NOT NULL DEFAULT 0,
    balanced_down     BIGINT NOT NULL DEFAULT 0,
    explanation       TEXT NOT NULL,
    committed_by      TEXT NOT NULL,
    committed_at      TIMESTAMPTZ NOT NULL
);
-- One current allocation per product and cycle.
CREATE UNIQUE INDEX allocations_current ON allocations (sku, cycle_id) WHERE state = 2;
CREATE INDEX allocations_cycle ON allocations (cycle_id, sku);

CREATE TABLE allocation_tiers (
    allocation_id    TEXT NOT NULL REFERENCES allocations (allocation_id),
    tier             INTEGER NOT NULL,
    retailers        BIGINT NOT NULL,
    quota            BIGINT NOT NULL,
    extra_retailers  BIGINT NOT NULL,
    total            BIGINT NOT NULL,
    explanation      TEXT NOT NULL,
    -- PROPORTIONAL: the eligible retailers of the tier whose id is at or below this
    -- (COLLATE "C") get one carton more: the first `extra_retailers` by id.
    extra_until      TEXT,
    PRIMARY KEY (allocation_id, tier)
);

-- Dynamic balance: retailers whose quota a commit scaled down, with that quota.
CREATE TABLE allocation_adjustments (
    allocation_id  TEXT NOT NULL REFERENCES allocations (allocation_id),
    customer_id    TEXT NOT NULL,
    quota          BIGINT NOT NULL,
    PRIMARY KEY (allocation_id, customer_id)
);

-- Created the first time a retailer orders the product in the cycle.
CREATE TABLE consumption (
    sku            TEXT NOT NULL,
    cycle_id       TEXT NOT NULL,
    customer_id    TEXT NOT NULL,
    allocation_id  TEXT NOT NULL,
    quota          BIGINT NOT NULL,
    extra          BIGINT NOT NULL DEFAULT 0,
    consumed       BIGINT NOT NULL DEFAULT 0,
    CHECK (consumed >= 0 AND consumed <= quota + extra),
    PRIMARY KEY (sku, cycle_id, customer_id)
);

-- Outstanding value of a retailer's unpaid (cash) orders, against its credit limit.
CREATE TABLE exposures (
    customer_id      TEXT PRIMARY KEY,
    outstanding_fen  BIGINT NOT NULL CHECK (outstanding_fen >= 0)
);

CREATE TABLE orders (
    order_id             TEXT PRIMARY KEY,
    customer_id          TEXT NOT NULL,
    cycle_id             TEXT NOT NULL,
    channel              SMALLINT NOT NULL,
    status               SMALLINT NOT NULL,
    value_fen            BIGINT NOT NULL,
    -- What this order adds to the retailer's exposure (0 on e-settlement).
    exposure_fen         BIGINT NOT NULL,
    settlement           SMALLINT NOT NULL,
    area_id              TEXT NOT NULL,
    placed_by            TEXT NOT NULL,
    created_at           TIMESTAMPTZ NOT NULL,
    picking_cutoff_at    TIMESTAMPTZ NOT NULL,
    cancelled_at         TIMESTAMPTZ,
    cancel_reason        TEXT NOT NULL DEFAULT '',
    cash_collected_fen   BIGINT NOT NULL DEFAULT 0,
    updated_at           TIMESTAMPTZ NOT NULL
);
CREATE INDEX orders_customer ON orders (customer_id, cycle_id, order_id);
CREATE INDEX orders_cycle ON orders (cycle_id, order_id);

CREATE TABLE order_lines (
    order_id    TEXT NOT NULL REFERENCES orders (order_id),
    line_no     INTEGER NOT NULL,
    sku         TEXT NOT NULL,
    cartons     BIGINT NOT NULL CHECK (cartons > 0),
    unit_fen    BIGINT NOT NULL,
    scarce      BOOLEAN NOT NULL,
    PRIMARY KEY (order_id, line_no)
);
