-- Satisfaction questionnaires with their weighted score (0–100).
CREATE TABLE surveys (
    id            TEXT PRIMARY KEY,
    customer_id   TEXT NOT NULL REFERENCES customers (id),
    area_id       TEXT NOT NULL,
    channel       SMALLINT NOT NULL,
    actor         TEXT NOT NULL,
    time          TIMESTAMPTZ NOT NULL,
    -- [{question_id, answer_id, weight, score}], as recorded.
    responses     JSONB NOT NULL,
    comment       TEXT NOT NULL DEFAULT '',
    score         DOUBLE PRECISION NOT NULL CHECK (score BETWEEN 0 AND 100)
);

CREATE INDEX surveys_customer ON surveys (customer_id, time DESC);
