-- Career paths: levels in order with what promotion to each asks, and each
-- person's level over time (the latest `since` is the current one).
CREATE TABLE career_levels (
    id               TEXT PRIMARY KEY,
    path             TEXT NOT NULL,
    code             TEXT NOT NULL UNIQUE,
    name             TEXT NOT NULL,
    step             BIGINT NOT NULL,
    -- JSON lists: course ids, certificate names.
    courses          TEXT NOT NULL,
    certificates     TEXT NOT NULL,
    months_in_level  BIGINT NOT NULL,
    min_grade        TEXT NOT NULL,
    created_by       TEXT NOT NULL,
    created_at       BIGINT NOT NULL,
    UNIQUE (path, step)
);

CREATE TABLE staff_levels (
    staff_id     TEXT NOT NULL,
    level_id     TEXT NOT NULL REFERENCES career_levels (id),
    since        TEXT NOT NULL,
    recorded_by  TEXT NOT NULL,
    recorded_at  BIGINT NOT NULL,
    PRIMARY KEY (staff_id, since)
);
