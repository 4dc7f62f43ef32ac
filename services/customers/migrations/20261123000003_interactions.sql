-- Every contact with a customer (visit, call, web, SMS, delivery) with its outcome.
-- Enum columns hold the proto enum numbers of distnet.customers.v1.

CREATE TABLE interactions (
    id                  TEXT PRIMARY KEY,
    customer_id         TEXT NOT NULL REFERENCES customers (id),
    area_id             TEXT NOT NULL,
    channel             SMALLINT NOT NULL,
    actor               TEXT NOT NULL,
    actor_role          TEXT NOT NULL,
    time                TIMESTAMPTZ NOT NULL,
    outcome             TEXT NOT NULL,
    notes               TEXT NOT NULL DEFAULT '',
    check_in_latitude   DOUBLE PRECISION,
    check_in_longitude  DOUBLE PRECISION,
    check_in_distance_m DOUBLE PRECISION,
    flagged             BOOLEAN NOT NULL DEFAULT false,
    tasks               SMALLINT[] NOT NULL DEFAULT '{}',
    order_id            TEXT NOT NULL DEFAULT '',
    created_at          TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX interactions_customer ON interactions (customer_id, time DESC, id DESC);
CREATE INDEX interactions_actor ON interactions (actor, time DESC, id DESC);
CREATE INDEX interactions_time ON interactions (time DESC, id DESC);
