-- The staff directory: people, teams (teams, queues, expert groups) and
-- who belongs to them. JSON columns hold skill and language lists.
CREATE TABLE people (
    staff_id      TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    display_name  TEXT NOT NULL,
    position      TEXT NOT NULL,
    level         TEXT NOT NULL,
    hire_date     TEXT NOT NULL,
    status        BIGINT NOT NULL,
    manager       TEXT NOT NULL,
    skills        TEXT NOT NULL,
    languages     TEXT NOT NULL,
    updated_by    TEXT NOT NULL,
    updated_at    BIGINT NOT NULL,
    version       BIGINT NOT NULL
);

CREATE TABLE teams (
    code        TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    kind        BIGINT NOT NULL,
    created_by  TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);

CREATE TABLE memberships (
    team      TEXT NOT NULL REFERENCES teams (code),
    staff_id  TEXT NOT NULL REFERENCES people (staff_id),
    lead      BIGINT NOT NULL,
    PRIMARY KEY (team, staff_id)
);
CREATE INDEX memberships_staff ON memberships (staff_id);
