-- Kirkpatrick levels 1 and 3 as recorded by people: an attendee's reaction
-- to a session, a supervisor's observation of a trainee's work.
CREATE TABLE reactions (
    enrolment_id  TEXT PRIMARY KEY REFERENCES enrolments (id),
    relevance     BIGINT NOT NULL,
    trainer       BIGINT NOT NULL,
    materials     BIGINT NOT NULL,
    overall       BIGINT NOT NULL,
    comment       TEXT NOT NULL,
    submitted_at  BIGINT NOT NULL
);

CREATE TABLE observations (
    enrolment_id  TEXT PRIMARY KEY REFERENCES enrolments (id),
    observer      TEXT NOT NULL,
    observed_on   TEXT NOT NULL,
    days_after    BIGINT NOT NULL,
    rating        BIGINT NOT NULL,
    notes         TEXT NOT NULL,
    recorded_at   BIGINT NOT NULL
);
