-- Failed logins for usernames that have no account, counted and locked the
-- same way as real accounts' so that a 429 does not tell an attacker which
-- usernames exist. The username is kept as a hash only (people type
-- passwords into it), and a row goes a day after its last attempt.
CREATE TABLE login_failures (
    username      TEXT PRIMARY KEY,
    failed_logins BIGINT NOT NULL,
    locked_until  BIGINT,
    last_at       BIGINT NOT NULL
);
