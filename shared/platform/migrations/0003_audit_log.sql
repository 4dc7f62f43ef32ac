-- Who changed what, when: one row per mutating request that committed (written with
-- its idempotency claim, in the same transaction as the change).
CREATE TABLE audit_log (
    id            BIGSERIAL PRIMARY KEY,
    at            TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- The token's subject and role.
    actor         TEXT NOT NULL,
    role          TEXT NOT NULL,
    -- The RPC, e.g. PlaceOrder, and the SHA-256 of the method and request.
    method        TEXT NOT NULL,
    request_hash  BYTEA NOT NULL,
    request_id    TEXT NOT NULL,
    -- W3C trace id (32 hex digits), or '' when the call carried none.
    trace_id      TEXT NOT NULL DEFAULT ''
);

CREATE INDEX audit_log_at ON audit_log (at);
CREATE INDEX audit_log_actor ON audit_log (actor, at);
CREATE INDEX audit_log_method ON audit_log (method, at);
