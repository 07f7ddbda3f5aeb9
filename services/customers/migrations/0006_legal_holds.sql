-- Legal holds: while one is active (released_at NULL) the customer's data
-- cannot be erased. One row per (customer, reference); placing it again
-- while it is active changes nothing, placing it after a release starts
-- it again.
CREATE TABLE legal_holds (
    customer_id  TEXT NOT NULL,
    reference    TEXT NOT NULL,
    reason       TEXT NOT NULL,
    placed_by    TEXT NOT NULL,
    placed_at    BIGINT NOT NULL,
    released_by  TEXT NOT NULL,
    released_at  BIGINT,
    PRIMARY KEY (customer_id, reference)
);
