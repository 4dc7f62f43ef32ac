-- Tables every service schema has: the outbox and its per-subscriber queue, the
-- inbox that makes redelivery a no-op, and remembered responses for request ids.
-- Platform migrations use versions below 1000; service migrations use dates.

CREATE TABLE outbox (
    id            BIGSERIAL PRIMARY KEY,
    event_id      UUID NOT NULL UNIQUE,
    event_type    TEXT NOT NULL,
    aggregate     TEXT NOT NULL,
    envelope      BYTEA NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- One row per (subscriber, event) still to deliver; deleted once delivered.
CREATE TABLE outbox_pending (
    subscriber       TEXT NOT NULL,
    outbox_id        BIGINT NOT NULL REFERENCES outbox (id) ON DELETE CASCADE,
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_error       TEXT,
    PRIMARY KEY (subscriber, outbox_id)
);

CREATE TABLE inbox (
    event_id      UUID PRIMARY KEY,
    event_type    TEXT NOT NULL,
    source        TEXT NOT NULL,
    processed_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE idempotency_keys (
    caller        TEXT NOT NULL,
    request_id    TEXT NOT NULL,
    method        TEXT NOT NULL,
    request_hash  BYTEA NOT NULL,
    -- NULL while the first request is in flight.
    response      BYTEA,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (caller, request_id)
);

CREATE INDEX idempotency_keys_created_at ON idempotency_keys (created_at);
