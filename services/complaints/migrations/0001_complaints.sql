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
    -- The investigation's finding (upheld NULL until there is one).
    findings             TEXT NOT NULL,
    root_cause           BIGINT NOT NULL,
    responsible_staff    TEXT NOT NULL,
    responsible_department TEXT NOT NULL,
    upheld               BIGINT,
    finding_by           TEXT NOT NULL,
    finding_at           BIGINT,
    -- The decision as communicated, and the customer's rating of the handling.
    decision_channel     BIGINT NOT NULL,
    decision_at          BIGINT,
    decision_summary     TEXT NOT NULL,
    compensation_paid_fen BIGINT NOT NULL,
    satisfaction         BIGINT NOT NULL,
    satisfaction_comment TEXT NOT NULL,
    version              BIGINT NOT NULL
);
CREATE UNIQUE INDEX complaints_number ON complaints (number);
CREATE INDEX complaints_created ON complaints (created_at, id);
CREATE INDEX complaints_customer ON complaints (customer_id, category, received_at);
CREATE INDEX complaints_state ON complaints (state, created_at);
CREATE INDEX complaints_handler ON complaints (handler, created_at);
CREATE INDEX complaints_recorded_by ON complaints (recorded_by, created_at);
CREATE INDEX complaints_received ON complaints (received_at);
CREATE INDEX complaints_responsible ON complaints (responsible_staff, received_at);

-- Corrective and preventive actions (CAPA).
CREATE TABLE corrective_actions (
    id                 TEXT PRIMARY KEY,
    complaint_id       TEXT NOT NULL,
    kind               BIGINT NOT NULL,
    description        TEXT NOT NULL,
    owner              TEXT NOT NULL,
    due_date           TEXT NOT NULL,
    status             BIGINT NOT NULL,
    evidence           TEXT NOT NULL,
    completed_at       BIGINT,
    completed_by       TEXT NOT NULL,
    verify_after_days  BIGINT NOT NULL,
    verified_by        TEXT NOT NULL,
    verified_at        BIGINT,
    verification_note  TEXT NOT NULL,
    created_by         TEXT NOT NULL,
    created_at         BIGINT NOT NULL,
    version            BIGINT NOT NULL
);
CREATE INDEX corrective_actions_complaint ON corrective_actions (complaint_id, created_at);
CREATE INDEX corrective_actions_open ON corrective_actions (status, due_date);

-- Customers erased (their complaints are redacted when the erasure
-- arrives and again now and then); the feed position is a counter row.
CREATE TABLE erased_customers (
    customer_id TEXT PRIMARY KEY,
    erased_at   BIGINT NOT NULL
);

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
