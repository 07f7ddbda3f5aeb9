-- Exams: a question bank with tags, exams drawing papers from tagged
-- pools, attempts keeping the paper as drawn (scored later exactly as it
-- was asked). JSON columns hold option lists and index lists.
CREATE TABLE questions (
    id            TEXT PRIMARY KEY,
    kind          BIGINT NOT NULL,
    stem          TEXT NOT NULL,
    options       TEXT NOT NULL,
    correct       TEXT NOT NULL,
    answer_guide  TEXT NOT NULL,
    points        BIGINT NOT NULL,
    tags          TEXT NOT NULL,
    created_by    TEXT NOT NULL,
    created_at    BIGINT NOT NULL
);

CREATE TABLE question_tags (
    tag          TEXT NOT NULL,
    question_id  TEXT NOT NULL REFERENCES questions (id),
    PRIMARY KEY (tag, question_id)
);

CREATE TABLE exams (
    id                  TEXT PRIMARY KEY,
    course_id           TEXT NOT NULL REFERENCES courses (id),
    title               TEXT NOT NULL,
    -- JSON: [{"tag": …, "count": n}]
    pools               TEXT NOT NULL,
    time_limit_minutes  BIGINT NOT NULL,
    max_attempts        BIGINT NOT NULL,
    pass_mark           BIGINT NOT NULL,
    pre_test            BIGINT NOT NULL,
    created_by          TEXT NOT NULL,
    created_at          BIGINT NOT NULL
);
CREATE INDEX exams_course ON exams (course_id);

CREATE TABLE attempts (
    id              TEXT PRIMARY KEY,
    exam_id         TEXT NOT NULL REFERENCES exams (id),
    staff_id        TEXT NOT NULL,
    number          BIGINT NOT NULL,
    state           BIGINT NOT NULL,
    started_at      BIGINT NOT NULL,
    deadline_at     BIGINT NOT NULL,
    submitted_at    BIGINT,
    points_total    BIGINT NOT NULL,
    points_awarded  BIGINT NOT NULL,
    UNIQUE (exam_id, staff_id, number)
);
CREATE INDEX attempts_staff ON attempts (staff_id, submitted_at);

CREATE TABLE attempt_items (
    attempt_id      TEXT NOT NULL REFERENCES attempts (id),
    position        BIGINT NOT NULL,
    question_id     TEXT NOT NULL,
    kind            BIGINT NOT NULL,
    stem            TEXT NOT NULL,
    options         TEXT NOT NULL,
    correct         TEXT NOT NULL,
    answer_guide    TEXT NOT NULL,
    points          BIGINT NOT NULL,
    answered        BIGINT NOT NULL,
    chosen          TEXT NOT NULL,
    answer_text     TEXT NOT NULL,
    points_awarded  BIGINT NOT NULL,
    marked          BIGINT NOT NULL,
    marked_by       TEXT NOT NULL,
    PRIMARY KEY (attempt_id, position)
);
