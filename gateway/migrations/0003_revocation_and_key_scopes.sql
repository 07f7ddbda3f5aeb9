-- Revocation and API-key limits.
--
-- Access tokens from a login carry their session (refresh-token family) and
-- die with it. Tokens minted outside a login for an account's staff id
-- (`kefu admin token`) are refused when issued before tokens_after (Unix
-- seconds), which a password change or disabling the account moves on.
ALTER TABLE accounts ADD COLUMN tokens_after BIGINT NOT NULL DEFAULT 0;

-- API keys expire and are limited to the services or calls they name.
-- Keys made before expiry existed run for 90 days from their creation.
ALTER TABLE api_keys ADD COLUMN expires_at BIGINT;
ALTER TABLE api_keys ADD COLUMN scopes TEXT NOT NULL DEFAULT '';
UPDATE api_keys SET expires_at = created_at + 7776000000 WHERE expires_at IS NULL;
