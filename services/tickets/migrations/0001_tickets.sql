-- kefu tickets service. Portable SQL (SQLite and PostgreSQL).

CREATE TABLE counters (
    name  TEXT PRIMARY KEY,
    value BIGINT NOT NULL
);
INSERT INTO counters (name, value) VALUES ('ticket', 0);

CREATE TABLE tickets (
    id                   TEXT PRIMARY KEY,
    number               TEXT NOT NULL UNIQUE,
    kind                 BIGINT NOT NULL,
    channel              BIGINT NOT NULL,
    category             TEXT NOT NULL,
    priority             BIGINT NOT NULL,
    status               BIGINT NOT NULL,
    subject              TEXT NOT NULL,
    customer_id          TEXT NOT NULL,
    customer_tier        TEXT NOT NULL,
    requester            TEXT NOT NULL,
    queue                TEXT NOT NULL,
    assignee             TEXT NOT NULL,
    tags                 TEXT NOT NULL,
    request_type         TEXT NOT NULL,
    materials            TEXT NOT NULL,
    steps                TEXT NOT NULL,
    filing_period        TEXT NOT NULL,
    filing_deadline      TEXT NOT NULL,
    department           TEXT NOT NULL,
    department_response  TEXT NOT NULL,
    pending_reason       TEXT NOT NULL,
    escalated_to         TEXT NOT NULL,
    satisfaction         BIGINT NOT NULL,
    satisfaction_comment TEXT NOT NULL,
    reopen_count         BIGINT NOT NULL,
    resolution_cycle     BIGINT NOT NULL,
    next_response_cycle  BIGINT NOT NULL,
    first_replied_at     BIGINT,
    solved_at            BIGINT,
    version              BIGINT NOT NULL,
    request_id           TEXT,
    created_by           TEXT NOT NULL,
    created_at           BIGINT NOT NULL,
    updated_at           BIGINT NOT NULL
);
CREATE UNIQUE INDEX tickets_request_id ON tickets (request_id);
CREATE INDEX tickets_status ON tickets (status, id);
CREATE INDEX tickets_assignee ON tickets (assignee, id);
CREATE INDEX tickets_queue ON tickets (queue, id);
CREATE INDEX tickets_customer ON tickets (customer_id, id);

CREATE TABLE timeline (
    id         TEXT PRIMARY KEY,
    ticket_id  TEXT NOT NULL REFERENCES tickets (id),
    kind       TEXT NOT NULL,
    author     TEXT NOT NULL,
    body       TEXT NOT NULL,
    at         BIGINT NOT NULL
);
CREATE INDEX timeline_ticket ON timeline (ticket_id, at, id);

-- Email threading: every ingested or sent Message-ID and its ticket.
CREATE TABLE email_messages (
    message_id TEXT PRIMARY KEY,
    ticket_id  TEXT NOT NULL REFERENCES tickets (id),
    at         BIGINT NOT NULL
);

CREATE TABLE request_types (
    name               TEXT PRIMARY KEY,
    category           TEXT NOT NULL,
    required_materials TEXT NOT NULL,
    steps              TEXT NOT NULL
);

-- The durable record of every SLA target (the live view is rebuilt from it).
CREATE TABLE sla_targets (
    record_id          TEXT NOT NULL,
    metric             TEXT NOT NULL,
    cycle              BIGINT NOT NULL,
    policy_id          TEXT NOT NULL,
    clock              TEXT NOT NULL,
    duration_ms        BIGINT NOT NULL,
    warn_percent       BIGINT NOT NULL,
    started_at         BIGINT NOT NULL,
    consumed_ms        BIGINT NOT NULL,
    running_since      BIGINT,
    cap_at             BIGINT,
    due_at             BIGINT,
    warn_at            BIGINT,
    warned_at          BIGINT,
    breached_at        BIGINT,
    fulfilled_at       BIGINT,
    escalation_due_at  BIGINT,
    escalated_at       BIGINT,
    open               BIGINT NOT NULL,
    PRIMARY KEY (record_id, metric, cycle)
);
CREATE INDEX sla_targets_open ON sla_targets (open, record_id);
CREATE INDEX sla_targets_escalation ON sla_targets (escalation_due_at);

-- Every SLA event, once (its id is stable across retries and replicas).
CREATE TABLE sla_events (
    id        TEXT PRIMARY KEY,
    record_id TEXT NOT NULL,
    metric    TEXT NOT NULL,
    cycle     BIGINT NOT NULL,
    kind      TEXT NOT NULL,
    at        BIGINT NOT NULL,
    due_at    BIGINT,
    queue     TEXT NOT NULL,
    assignee  TEXT NOT NULL
);
CREATE INDEX sla_events_record ON sla_events (record_id, at);

CREATE TABLE sla_policies (
    id       TEXT PRIMARY KEY,
    position BIGINT NOT NULL,
    body     TEXT NOT NULL
);

CREATE TABLE settings (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE phone_contacts (
    call_id        TEXT PRIMARY KEY,
    caller_number  TEXT NOT NULL,
    queue          TEXT NOT NULL,
    agent          TEXT NOT NULL,
    offered_at     BIGINT NOT NULL,
    answered_at    BIGINT,
    abandoned_at   BIGINT,
    ring_count     BIGINT NOT NULL
);
CREATE INDEX phone_contacts_agent ON phone_contacts (agent, offered_at);
