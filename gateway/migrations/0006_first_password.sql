-- A password someone else chose (the first start's one-time admin
-- password, an account created with mustChangePassword) opens no session:
-- its holder first sets their own.
ALTER TABLE accounts ADD COLUMN must_change_password BIGINT NOT NULL DEFAULT 0;
