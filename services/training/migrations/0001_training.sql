-- The training service (§4): the course catalogue, sessions, enrolments,
-- annual plans and staff certificates. Hours are kept exactly as a count
-- of half hours (`*_x2`); dates of certificates as YYYY-MM-DD.
CREATE TABLE courses (
    id                 TEXT PRIMARY KEY,
    code               TEXT NOT NULL UNIQUE,
    title              TEXT NOT NULL,
    topic              BIGINT NOT NULL,
    method             BIGINT NOT NULL,
    hours_x2           BIGINT NOT NULL,
    description        TEXT NOT NULL,
    -- JSON: [{"title": …, "url": …}]
    materials          TEXT NOT NULL,
    requires_approval  BIGINT NOT NULL,
    created_by         TEXT NOT NULL,
    created_at         BIGINT NOT NULL
);

CREATE TABLE sessions (
    id            TEXT PRIMARY KEY,
    course_id     TEXT NOT NULL REFERENCES courses (id),
    start_at      BIGINT NOT NULL,
    end_at        BIGINT NOT NULL,
    location      TEXT NOT NULL,
    trainer       TEXT NOT NULL,
    capacity      BIGINT NOT NULL,
    waitlist_capacity BIGINT NOT NULL,
    cost_fen      BIGINT NOT NULL,
    -- Empty: no plan pays.
    plan_id       TEXT NOT NULL,
    state         BIGINT NOT NULL,
    cancel_reason TEXT NOT NULL,
    scheduled_by  TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    -- Bumped by every enrolment change: they queue on the session's row.
    version       BIGINT NOT NULL
);
CREATE INDEX sessions_start ON sessions (start_at, id);
CREATE INDEX sessions_plan ON sessions (plan_id);

CREATE TABLE enrolments (
    id           TEXT PRIMARY KEY,
    session_id   TEXT NOT NULL REFERENCES sessions (id),
    staff_id     TEXT NOT NULL,
    state        BIGINT NOT NULL,
    assigned_by  TEXT NOT NULL,
    approved_by  TEXT NOT NULL,
    -- Also the waitlist's order (with the id).
    enrolled_at  BIGINT NOT NULL,
    check_in_at  BIGINT,
    complete_at  BIGINT,
    hours_x2     BIGINT NOT NULL,
    UNIQUE (session_id, staff_id)
);
CREATE INDEX enrolments_staff ON enrolments (staff_id, complete_at);

CREATE TABLE plans (
    id           TEXT PRIMARY KEY,
    year         BIGINT NOT NULL,
    team         TEXT NOT NULL,
    title        TEXT NOT NULL,
    -- JSON: ["…", …]
    goals        TEXT NOT NULL,
    budget_fen   BIGINT NOT NULL,
    target_x2    BIGINT NOT NULL,
    headcount    BIGINT NOT NULL,
    -- JSON: [{"course_id": …, "quarter": 1–4, "sessions": n}]
    courses      TEXT NOT NULL,
    state        BIGINT NOT NULL,
    created_by   TEXT NOT NULL,
    approved_by  TEXT NOT NULL,
    approved_at  BIGINT,
    created_at   BIGINT NOT NULL,
    -- Bumped when a session is charged to it: charges queue on its row.
    version      BIGINT NOT NULL,
    UNIQUE (year, team)
);

CREATE TABLE certificates (
    id           TEXT PRIMARY KEY,
    staff_id     TEXT NOT NULL,
    name         TEXT NOT NULL,
    kind         BIGINT NOT NULL,
    number       TEXT NOT NULL,
    issuer       TEXT NOT NULL,
    issue_date   TEXT NOT NULL,
    expiry_date  TEXT,
    ce_x2        BIGINT NOT NULL,
    recorded_by  TEXT NOT NULL,
    recorded_at  BIGINT NOT NULL,
    UNIQUE (name, number)
);
CREATE INDEX certificates_staff ON certificates (staff_id);
