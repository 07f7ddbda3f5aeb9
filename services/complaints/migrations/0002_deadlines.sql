-- Complaint deadlines (acknowledgement, preliminary opinion, resolution,
-- corrective actions) as SLA targets in business time, and every SLA event
-- once: the same two tables every service with SLA targets keeps (their
-- SQL is kefu_sla::store). The live view in Redis or memory is rebuilt
-- from them.
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
    config_version     BIGINT NOT NULL DEFAULT 0,
    cap_provisional    BIGINT NOT NULL DEFAULT 0,
    calendar_id        TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (record_id, metric, cycle)
);
CREATE INDEX sla_targets_open ON sla_targets (open, record_id);
CREATE INDEX sla_targets_escalation ON sla_targets (escalation_due_at);
CREATE INDEX sla_targets_unbreached_due ON sla_targets (due_at)
    WHERE open = 1 AND breached_at IS NULL AND fulfilled_at IS NULL;
CREATE INDEX sla_targets_unwarned ON sla_targets (warn_at)
    WHERE open = 1 AND warned_at IS NULL AND breached_at IS NULL AND fulfilled_at IS NULL;

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
CREATE INDEX sla_events_at ON sla_events (at, id);

-- The last SLA configuration read from the tickets service (calendars and
-- policies), so deadlines are computed while tickets is unreachable.
CREATE TABLE settings (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- How many times a missed deadline escalated the complaint.
ALTER TABLE complaints ADD COLUMN escalation_level BIGINT NOT NULL DEFAULT 0;

-- Legal holds to release in the customers service once a complaint that
-- went to legal channels is closed (delivered after commit, retried until
-- the customers service has it).
CREATE TABLE legal_hold_releases (
    complaint_id TEXT PRIMARY KEY,
    customer_id  TEXT NOT NULL,
    reference    TEXT NOT NULL,
    queued_at    BIGINT NOT NULL
);
