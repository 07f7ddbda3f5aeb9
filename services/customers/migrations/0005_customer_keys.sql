-- Envelope encryption: each customer's sensitive data is sealed with a data
-- key of its own, stored here wrapped by a key-encryption key from
-- KEFU_DATA_KEYS (never in the database). Erasing a customer deletes its key
-- and what it sealed. A backup still holds the wrapped key until the
-- key-encryption key that wrapped it is destroyed: rotate (`kefu admin
-- rewrap`) and destroy old key-encryption keys once backups made under them
-- have aged out.
CREATE TABLE customer_keys (
    customer_id TEXT PRIMARY KEY REFERENCES customers (id),
    kek_id      TEXT NOT NULL,
    nonce       TEXT NOT NULL,
    wrapped     TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE INDEX customer_keys_kek ON customer_keys (kek_id);
