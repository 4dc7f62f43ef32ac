-- Scoring ledger and rulebook, purchase history, tier gradings, credit profiles.

-- Every version of the rulebook is kept; the highest is in force.
CREATE TABLE rulebooks (
    version     BIGINT PRIMARY KEY,
    body        JSONB NOT NULL,
    updated_by  TEXT NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Append-only: points given to a retailer by a serving role under a rule.
CREATE TABLE score_events (
    id                TEXT PRIMARY KEY,
    customer_id       TEXT NOT NULL,
    rule_code         TEXT NOT NULL,
    dimension         SMALLINT NOT NULL,
    points            INTEGER NOT NULL,
    period            TEXT NOT NULL,
    recorded_by       TEXT NOT NULL,
    recorder_role     TEXT NOT NULL,
    rulebook_version  BIGINT NOT NULL,
    note              TEXT NOT NULL DEFAULT '',
    recorded_at       TIMESTAMPTZ NOT NULL
);
CREATE INDEX score_events_cap ON score_events (customer_id, rule_code, period);
CREATE INDEX score_events_customer ON score_events (customer_id, period);

-- Per retailer and month; the grading's amount and quantity inputs.
CREATE TABLE purchases (
    customer_id  TEXT NOT NULL,
    period       TEXT NOT NULL,
    amount_fen   BIGINT NOT NULL CHECK (amount_fen >= 0),
    cartons      BIGINT NOT NULL CHECK (cartons >= 0),
    PRIMARY KEY (customer_id, period)
);

CREATE TABLE gradings (
    version          BIGSERIAL PRIMARY KEY,
    period           TEXT NOT NULL,
    amount_bp        INTEGER NOT NULL,
    quantity_bp      INTEGER NOT NULL,
    score_bp         INTEGER NOT NULL,
    tiers            INTEGER NOT NULL,
    state            SMALLINT NOT NULL,
    distribution     INTEGER[] NOT NULL,
    boundaries       BIGINT[] NOT NULL,
    placed_by_format INTEGER NOT NULL,
    explanations     TEXT[] NOT NULL,
    effective_cycle  TEXT NOT NULL DEFAULT '',
    created_by       TEXT NOT NULL,
    created_at       TIMESTAMPTZ NOT NULL,
    published_by     TEXT NOT NULL DEFAULT '',
    published_at     TIMESTAMPTZ
);

CREATE TABLE tier_assignments (
    grading_version   BIGINT NOT NULL REFERENCES gradings (version),
    customer_id       TEXT NOT NULL,
    tier              INTEGER NOT NULL,
    computed_tier     INTEGER NOT NULL,
    composite         BIGINT NOT NULL,
    placed_by_format  BOOLEAN NOT NULL,
    override_reason   TEXT NOT NULL DEFAULT '',
    overridden_by     TEXT NOT NULL DEFAULT '',
    overridden_at     TIMESTAMPTZ,
    PRIMARY KEY (grading_version, customer_id)
);

CREATE TABLE credit_profiles (
    customer_id       TEXT PRIMARY KEY,
    inputs            JSONB NOT NULL,
    score             INTEGER NOT NULL,
    grade             TEXT NOT NULL,
    limit_fen         BIGINT NOT NULL,
    limit_base        TEXT NOT NULL,
    terms_days        INTEGER NOT NULL,
    early_payment_discount_bp INTEGER NOT NULL,
    explanation       TEXT[] NOT NULL,
    blacklisted       BOOLEAN NOT NULL DEFAULT false,
    blacklist_reason  TEXT NOT NULL DEFAULT '',
    updated_by        TEXT NOT NULL,
    updated_at        TIMESTAMPTZ NOT NULL
);
