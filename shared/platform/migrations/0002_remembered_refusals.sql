-- A request refused for a business reason (FAILED_PRECONDITION) is remembered, so a
-- retry with the same id gets the same refusal instead of a second evaluation.
ALTER TABLE idempotency_keys ADD COLUMN refusal JSONB;
