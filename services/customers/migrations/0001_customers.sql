-- kefu customers service. Portable SQL: runs on SQLite and PostgreSQL.
-- Instants are BIGINT Unix milliseconds (UTC); civil dates TEXT YYYY-MM-DD;
-- flags BIGINT 0/1; ids TEXT UUIDv7.

CREATE TABLE customers (
    id                 TEXT PRIMARY KEY,
    company_name       TEXT NOT NULL,
    company_name_lower TEXT NOT NULL,
    uscc               TEXT NOT NULL,
    uscc_check_failed  BIGINT NOT NULL DEFAULT 0,
    taxpayer_type      BIGINT NOT NULL,
    tax_credit_rating  BIGINT NOT NULL,
    business_scope     TEXT NOT NULL,
    industry           TEXT NOT NULL,
    region             TEXT NOT NULL,
    service_tier       BIGINT NOT NULL,
    account_manager    TEXT NOT NULL,
    preferred_channel  BIGINT NOT NULL,
    language           TEXT NOT NULL,
    greeting_opt_in    BIGINT NOT NULL,
    lifecycle_status   BIGINT NOT NULL,
    live               BIGINT NOT NULL,
    version            BIGINT NOT NULL,
    request_id         TEXT,
    created_at         BIGINT NOT NULL,
    updated_at         BIGINT NOT NULL
);
-- The USCC is unique among live (not archived, not erased) customers.
CREATE UNIQUE INDEX customers_live_uscc ON customers (uscc) WHERE live = 1;
CREATE UNIQUE INDEX customers_request_id ON customers (request_id);
CREATE INDEX customers_account_manager ON customers (account_manager);

CREATE TABLE customer_tags (
    customer_id TEXT NOT NULL REFERENCES customers (id),
    tag         TEXT NOT NULL,
    PRIMARY KEY (customer_id, tag)
);
CREATE INDEX customer_tags_tag ON customer_tags (tag);

CREATE TABLE contacts (
    id          TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL REFERENCES customers (id),
    name        TEXT NOT NULL,
    role        TEXT NOT NULL,
    mobile      TEXT,
    email       TEXT,
    email_lower TEXT,
    wechat_id   TEXT,
    is_primary  BIGINT NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);
CREATE INDEX contacts_customer ON contacts (customer_id);
CREATE INDEX contacts_mobile ON contacts (mobile);
CREATE INDEX contacts_email ON contacts (email_lower);

-- Sensitive profile: AES-256-GCM ciphertext only, with the key id that
-- encrypted it (rotation) and the nonce.
CREATE TABLE tax_profiles (
    customer_id TEXT PRIMARY KEY REFERENCES customers (id),
    key_id      TEXT NOT NULL,
    nonce       TEXT NOT NULL,
    ciphertext  TEXT NOT NULL,
    updated_at  BIGINT NOT NULL,
    updated_by  TEXT NOT NULL
);

CREATE TABLE consents (
    id          TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL REFERENCES customers (id),
    purpose     TEXT NOT NULL,
    recipient   TEXT NOT NULL,
    categories  TEXT NOT NULL,
    granted_at  BIGINT NOT NULL,
    expires_at  BIGINT,
    revoked_at  BIGINT,
    recorded_by TEXT NOT NULL,
    evidence    TEXT NOT NULL
);
CREATE INDEX consents_customer ON consents (customer_id);

-- Hash-chained audit trail. audit_head serialises appends (its row is
-- updated first in every appending transaction) and anchors the tail.
CREATE TABLE audit_head (
    id   BIGINT PRIMARY KEY,
    seq  BIGINT NOT NULL,
    hash TEXT NOT NULL
);
INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, '');

CREATE TABLE audit_log (
    seq         BIGINT PRIMARY KEY,
    at          BIGINT NOT NULL,
    actor       TEXT NOT NULL,
    actor_role  TEXT NOT NULL,
    action      TEXT NOT NULL,
    customer_id TEXT NOT NULL,
    detail      TEXT NOT NULL,
    purpose     TEXT NOT NULL,
    prev_hash   TEXT NOT NULL,
    hash        TEXT NOT NULL
);
CREATE INDEX audit_log_customer ON audit_log (customer_id, seq);

CREATE TABLE follow_up_plans (
    customer_id TEXT PRIMARY KEY REFERENCES customers (id),
    owner       TEXT NOT NULL,
    cycle_days  BIGINT NOT NULL,
    next_due    TEXT NOT NULL,
    active      BIGINT NOT NULL,
    last_visit  TEXT
);
CREATE INDEX follow_up_plans_due ON follow_up_plans (active, next_due, customer_id);

CREATE TABLE follow_up_visits (
    id           TEXT PRIMARY KEY,
    customer_id  TEXT NOT NULL REFERENCES customers (id),
    visit_date   TEXT NOT NULL,
    channel      BIGINT NOT NULL,
    outcome      TEXT NOT NULL,
    satisfaction BIGINT NOT NULL,
    notes        TEXT NOT NULL,
    visited_by   TEXT NOT NULL,
    next_due     TEXT NOT NULL,
    created_at   BIGINT NOT NULL
);
CREATE INDEX follow_up_visits_customer ON follow_up_visits (customer_id, visit_date);

CREATE TABLE greetings_sent (
    customer_id TEXT NOT NULL REFERENCES customers (id),
    festival    BIGINT NOT NULL,
    year        BIGINT NOT NULL,
    channel     BIGINT NOT NULL,
    sent_at     BIGINT NOT NULL,
    sent_by     TEXT NOT NULL,
    PRIMARY KEY (customer_id, festival, year)
);
