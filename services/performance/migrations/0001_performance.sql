-- Performance evaluation: KPI schemes (versioned), cycles, evaluations
-- with their snapshot of figures, and each evaluation's history (written
-- once, never changed). JSON columns hold a scheme's groups and
-- indicators, a cycle's settings, figures and scores.
CREATE TABLE schemes (
    code        TEXT NOT NULL,
    version     BIGINT NOT NULL,
    name        TEXT NOT NULL,
    position    TEXT NOT NULL,
    body        TEXT NOT NULL,
    defined_by  TEXT NOT NULL,
    defined_at  BIGINT NOT NULL,
    PRIMARY KEY (code, version)
);

CREATE TABLE cycles (
    id               TEXT PRIMARY KEY,
    kind             BIGINT NOT NULL,
    period           TEXT NOT NULL,
    from_date        TEXT NOT NULL,
    to_date          TEXT NOT NULL,
    team             TEXT NOT NULL,
    scheme_code      TEXT NOT NULL,
    settings         TEXT NOT NULL,
    state            BIGINT NOT NULL,
    opened_by        TEXT NOT NULL,
    opened_at        BIGINT NOT NULL,
    closed_at        BIGINT,
    calibration_due  BIGINT,
    finalized_at     BIGINT,
    version          BIGINT NOT NULL,
    UNIQUE (period, team)
);

CREATE TABLE evaluations (
    id                     TEXT PRIMARY KEY,
    cycle_id               TEXT NOT NULL REFERENCES cycles (id),
    staff_id               TEXT NOT NULL,
    display_name           TEXT NOT NULL,
    position               TEXT NOT NULL,
    team                   TEXT NOT NULL,
    reviewers              TEXT NOT NULL,
    scheme_code            TEXT NOT NULL,
    scheme_version         BIGINT NOT NULL,
    state                  BIGINT NOT NULL,
    figures                TEXT NOT NULL,
    self_scores            TEXT NOT NULL,
    manual_scores          TEXT NOT NULL,
    self_comment           TEXT NOT NULL,
    review_comment         TEXT NOT NULL,
    reviewed_by            TEXT NOT NULL,
    total_centi            BIGINT NOT NULL,
    computed_grade         TEXT NOT NULL,
    grade                  TEXT NOT NULL,
    calibration_reason     TEXT NOT NULL,
    bonus_base_fen         BIGINT NOT NULL,
    coefficient            BIGINT NOT NULL,
    bonus_fen              BIGINT NOT NULL,
    appeal_reason          TEXT NOT NULL,
    appeal_decision        TEXT NOT NULL,
    appeal_upheld          BIGINT NOT NULL,
    promotion_recommended  BIGINT NOT NULL,
    promotion_detail       TEXT NOT NULL,
    honours                TEXT NOT NULL,
    due_at                 BIGINT,
    corrected              BIGINT NOT NULL,
    version                BIGINT NOT NULL,
    UNIQUE (cycle_id, staff_id)
);
CREATE INDEX evaluations_staff ON evaluations (staff_id);

CREATE TABLE evaluation_history (
    id             TEXT PRIMARY KEY,
    evaluation_id  TEXT NOT NULL REFERENCES evaluations (id),
    at             BIGINT NOT NULL,
    actor          TEXT NOT NULL,
    action         TEXT NOT NULL,
    detail         TEXT NOT NULL
);
CREATE INDEX evaluation_history_of ON evaluation_history (evaluation_id, at, id);
