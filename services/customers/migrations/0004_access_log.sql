-- Who read which customer's contact details in the clear, and when: one row
-- per read, append-only, for auditors (ListAccessLog).
CREATE TABLE access_log (
    id          TEXT PRIMARY KEY,
    at          BIGINT NOT NULL,
    actor       TEXT NOT NULL,
    actor_role  TEXT NOT NULL,
    customer_id TEXT NOT NULL,
    what        TEXT NOT NULL
);
CREATE INDEX access_log_customer ON access_log (customer_id, id);
CREATE INDEX access_log_actor ON access_log (actor, id);
