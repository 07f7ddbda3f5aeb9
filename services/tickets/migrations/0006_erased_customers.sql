-- Customers erased in the customers service, as tickets learned of them:
-- their tickets are redacted when the erasure arrives and again, now and
-- then, in case something was written to them since.
CREATE TABLE erased_customers (
    customer_id TEXT PRIMARY KEY,
    erased_at   BIGINT NOT NULL
);
