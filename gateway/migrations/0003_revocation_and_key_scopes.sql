-- Revocation and API-key limits.
--
-- Access tokens from a login carry their session (refresh-token family) and
-- die with it. Tokens minted outside a login for an account's staff id
-- (`kefu admin token`) are refused when issued before tokens_after (Unix
-- seconds), which a password change or disabling the account moves on.
ALTER TABLE accounts ADD COLUMN tokens_after BIGINT NOT NULL DEFAULT 0;

-- API keys expire and are limited to the services or calls they name.
-- Keys made before scopes keep reaching every service there was; their 90
-- days start at their first use after the upgrade (expires_at NULL).
ALTER TABLE api_keys ADD COLUMN expires_at BIGINT;
ALTER TABLE api_keys ADD COLUMN scopes TEXT NOT NULL DEFAULT '';
UPDATE api_keys SET scopes = 'customers,tickets' WHERE scopes = '';
