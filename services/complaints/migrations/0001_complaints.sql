-- Complaints (§7): one row per complaint, its workflow history, and the
-- per-year counters its numbers come from.
CREATE TABLE counters (
    name  TEXT PRIMARY KEY,
    value BIGINT NOT NULL
);

CREATE TABLE complaints (
    id                   TEXT PRIMARY KEY,
    number               TEXT NOT NULL,
    state                BIGINT NOT NULL,
    source               BIGINT NOT NULL,
    channel              BIGINT NOT NULL,
    customer_id          TEXT NOT NULL,
    anonymous            BIGINT NOT NULL,
    ticket_id            TEXT NOT NULL,
    subject_kind         BIGINT NOT NULL,
    subject              TEXT NOT NULL,
    category             TEXT NOT NULL,
    severity             BIGINT NOT NULL,
    description          TEXT NOT NULL,
    demand_kind          BIGINT NOT NULL,
    demand_amount_fen    BIGINT NOT NULL,
    demand_detail        TEXT NOT NULL,
    referred_by          TEXT NOT NULL,
    referral_reference   TEXT NOT NULL,
    referral_due_at      BIGINT,
    repeat_of            TEXT NOT NULL,
    handler              TEXT NOT NULL,
    preliminary_opinion  TEXT NOT NULL,
    response             TEXT NOT NULL,
    mediator             TEXT NOT NULL,
    legal_hold           BIGINT NOT NULL,
    reopen_count         BIGINT NOT NULL,
    recorded_by          TEXT NOT NULL,
    received_at          BIGINT NOT NULL,
    created_at           BIGINT NOT NULL,
    updated_at           BIGINT NOT NULL,
    closed_at            BIGINT,
    version              BIGINT NOT NULL
);
CREATE UNIQUE INDEX complaints_number ON complaints (number);
CREATE INDEX complaints_created ON complaints (created_at, id);
CREATE INDEX complaints_customer ON complaints (customer_id, category, received_at);
CREATE INDEX complaints_state ON complaints (state, created_at);
CREATE INDEX complaints_handler ON complaints (handler, created_at);
CREATE INDEX complaints_recorded_by ON complaints (recorded_by, created_at);

CREATE TABLE complaint_history (
    seq           BIGINT NOT NULL,
    complaint_id  TEXT NOT NULL,
    from_state    BIGINT NOT NULL,
    to_state      BIGINT NOT NULL,
    action        BIGINT NOT NULL,
    actor         TEXT NOT NULL,
    actor_role    TEXT NOT NULL,
    reason        TEXT NOT NULL,
    at            BIGINT NOT NULL,
    PRIMARY KEY (complaint_id, seq)
);
