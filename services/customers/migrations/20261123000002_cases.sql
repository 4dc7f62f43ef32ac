-- Service cases (complaints) under first-contact responsibility, and the customer
-- classes that decide their deadlines (a replica of accreditation's standings).
-- Enum columns hold the proto enum numbers of distnet.customers.v1.

CREATE TABLE customer_standings (
    customer_id   TEXT PRIMARY KEY,
    -- SPECIAL, KEY or GENERAL (accreditation's class), '' when not graded yet.
    class         TEXT NOT NULL DEFAULT '',
    -- Standing version: older events are ignored.
    version       BIGINT NOT NULL DEFAULT 0,
    updated_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE cases (
    id                    TEXT PRIMARY KEY,
    customer_id           TEXT NOT NULL REFERENCES customers (id),
    area_id               TEXT NOT NULL,
    customer_class        TEXT NOT NULL,
    category              SMALLINT NOT NULL,
    channel               SMALLINT NOT NULL,
    description           TEXT NOT NULL,
    status                SMALLINT NOT NULL,
    first_contact_owner   TEXT NOT NULL,
    handler               TEXT NOT NULL,
    open_time             TIMESTAMPTZ NOT NULL,
    respond_by            TIMESTAMPTZ NOT NULL,
    resolve_by            TIMESTAMPTZ NOT NULL,
    first_response_time   TIMESTAMPTZ,
    resolve_time          TIMESTAMPTZ,
    close_time            TIMESTAMPTZ,
    resolution            TEXT NOT NULL DEFAULT '',
    callback_outcome      TEXT,
    callback_satisfied    BOOLEAN,
    callback_by           TEXT,
    callback_time         TIMESTAMPTZ,
    escalate_time         TIMESTAMPTZ,
    CHECK (respond_by >= open_time AND resolve_by >= open_time),
    CHECK (close_time IS NULL OR callback_time IS NOT NULL)
);

CREATE INDEX cases_customer ON cases (customer_id, open_time DESC);
CREATE INDEX cases_owner ON cases (first_contact_owner, open_time DESC);
CREATE INDEX cases_handler ON cases (handler, open_time DESC);
CREATE INDEX cases_open_time ON cases (open_time DESC, id DESC);
-- The overdue sweep: unresolved, not yet escalated.
CREATE INDEX cases_due ON cases (respond_by, resolve_by)
    WHERE escalate_time IS NULL AND resolve_time IS NULL;

-- Each step of a case, oldest first.
CREATE TABLE case_steps (
    case_id       TEXT NOT NULL REFERENCES cases (id),
    seq           INTEGER NOT NULL,
    action        SMALLINT NOT NULL,
    actor         TEXT NOT NULL,
    time          TIMESTAMPTZ NOT NULL,
    from_handler  TEXT NOT NULL DEFAULT '',
    to_handler    TEXT NOT NULL DEFAULT '',
    note          TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (case_id, seq)
);
