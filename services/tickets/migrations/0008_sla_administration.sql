-- SLA administration: named business calendars, categories with labels,
-- targets that know which configuration computed them, phone contacts an
-- agent logs by hand, and the audit trail of configuration changes.

-- One row per calendar; `body` is its JSON form (libs/sla CalendarSpec).
CREATE TABLE sla_calendars (
    id          TEXT PRIMARY KEY,
    body        TEXT NOT NULL,
    is_default  BIGINT NOT NULL,
    version     BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    updated_by  TEXT NOT NULL
);

CREATE TABLE ticket_categories (
    code      TEXT PRIMARY KEY,
    label     TEXT NOT NULL,
    position  BIGINT NOT NULL,
    active    BIGINT NOT NULL
);

-- The configuration version a target's due times were computed under: a
-- change recomputes the open targets computed under an older one.
ALTER TABLE sla_targets ADD COLUMN config_version BIGINT NOT NULL DEFAULT 0;
ALTER TABLE sla_targets ADD COLUMN cap_provisional BIGINT NOT NULL DEFAULT 0;
ALTER TABLE sla_targets ADD COLUMN calendar_id TEXT NOT NULL DEFAULT '';
CREATE INDEX sla_targets_config ON sla_targets (config_version) WHERE open = 1;

ALTER TABLE phone_contacts ADD COLUMN ticket_id TEXT NOT NULL DEFAULT '';
ALTER TABLE phone_contacts ADD COLUMN direction TEXT NOT NULL DEFAULT 'inbound';
ALTER TABLE phone_contacts ADD COLUMN source TEXT NOT NULL DEFAULT 'telephony';
ALTER TABLE phone_contacts ADD COLUMN talk_seconds BIGINT NOT NULL DEFAULT 0;
ALTER TABLE phone_contacts ADD COLUMN note TEXT NOT NULL DEFAULT '';
ALTER TABLE phone_contacts ADD COLUMN logged_by TEXT NOT NULL DEFAULT '';
CREATE INDEX phone_contacts_ticket ON phone_contacts (ticket_id, offered_at);
CREATE INDEX phone_contacts_offered ON phone_contacts (offered_at, call_id);

-- The kit's audit trail (kefu_kit::audit): configuration changes.
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
    subject     TEXT NOT NULL,
    detail      TEXT NOT NULL,
    purpose     TEXT NOT NULL,
    prev_hash   TEXT NOT NULL,
    hash        TEXT NOT NULL,
    key_id      TEXT NOT NULL DEFAULT ''
);
CREATE INDEX audit_log_subject ON audit_log (subject, seq);
