-- The kit's audit trail (kefu_kit::audit): reads of complaints' personal
-- data and evidence in the clear, with their purposes; category changes;
-- erasures.
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

-- The legal hold's placing (customers' LegalHold.generation) a complaint
-- holds, and the one a queued release ends: a release queued before the
-- complaint went to legal channels again does not end the renewed hold.
ALTER TABLE complaints ADD COLUMN hold_generation BIGINT NOT NULL DEFAULT 0;
ALTER TABLE legal_hold_releases ADD COLUMN generation BIGINT NOT NULL DEFAULT 0;
