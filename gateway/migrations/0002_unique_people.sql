-- One account per person: a staff id belongs to one account (so one user
-- cannot act as, or reset the password of, another), and usernames differ
-- by more than letter case.
CREATE UNIQUE INDEX accounts_staff_id ON accounts (staff_id);
CREATE UNIQUE INDEX accounts_username_lower ON accounts (lower(username));
