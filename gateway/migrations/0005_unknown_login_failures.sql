-- Failed logins for usernames that have no account, counted and locked the
-- same way as real accounts' so that a 429 does not tell an attacker which
-- usernames exist.
CREATE TABLE login_failures (
    username      TEXT PRIMARY KEY,
    failed_logins BIGINT NOT NULL,
    locked_until  BIGINT
);
