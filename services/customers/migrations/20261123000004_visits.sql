-- Each customer's weekly visit day (1 = Monday … 7 = Sunday, 0 = none), set by
-- `distnet seed` and editable; the owning rep's daily visit list follows it.
ALTER TABLE customers
    ADD COLUMN visit_weekday SMALLINT NOT NULL DEFAULT 0 CHECK (visit_weekday BETWEEN 0 AND 7);

CREATE INDEX customers_owner_weekday ON customers (owner_id, visit_weekday);
