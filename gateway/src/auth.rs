//! People's login (Argon2id passwords, short-lived access tokens, rotating
//! refresh tokens with reuse detection, lock-out) and API keys for internal
//! systems (shown once, stored hashed, revocable).
use std::{sync::Arc, time::Duration};

use argon2::{
    Argon2,
    password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString, rand_core::OsRng},
};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use kefu_kit::{
    audit::AuditKeys,
    auth::{Principal, Role, TokenSigner, TokenVerifier, Verified},
};
use rand::RngCore;
use sha2::{Digest, Sha256};
use sqlx::{AnyPool, Row};

use crate::problem::Problem;

pub const ACCESS_TTL: Duration = Duration::from_secs(15 * 60);
pub const REFRESH_TTL_MS: i64 = 14 * 24 * 3_600_000;
/// Failed logins before the account locks, and for how long.
pub const MAX_FAILURES: i64 = 5;
pub const LOCK_MS: i64 = 15 * 60_000;

pub(crate) fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// The first second whose tokens outlive a revocation made now: a token's
/// `iat` is whole seconds, so one issued earlier in this second is refused.
pub(crate) fn tokens_after_now() -> i64 {
    now_ms().div_euclid(1000) + 1
}

/// How long an API key lasts unless its creator says otherwise, and the
/// longest it may last.
pub const API_KEY_DEFAULT_DAYS: i64 = 90;
pub const API_KEY_MAX_DAYS: i64 = 366;
/// `last_used_at` is written at most this often per key.
const LAST_USED_EVERY_MS: i64 = 60_000;

/// Who is calling over REST.
#[derive(Debug, Clone)]
pub struct Caller {
    pub principal: Principal,
    /// The bearer token the services are called with.
    pub token: String,
    /// For an API key, the services (`customers`) or calls
    /// (`kefu.customers.v1.CustomerService/GetCustomer`) it may make; people
    /// are limited by their roles only.
    pub scopes: Option<Vec<String>>,
}

impl Caller {
    /// FORBIDDEN unless the caller may make `rpc` (an API key's scopes).
    pub fn may_call(&self, rpc: &str) -> Result<(), Problem> {
        let Some(scopes) = &self.scopes else { return Ok(()) };
        let service = rpc.split('.').nth(1).unwrap_or_default();
        if scopes.iter().any(|s| s == rpc || s == service) {
            return Ok(());
        }
        Err(Problem::forbidden(format!("this API key's scopes [{}] do not include {rpc}", scopes.join(", "))))
    }

    /// FORBIDDEN for an API key: the endpoint is for people.
    pub fn person(&self) -> Result<&Principal, Problem> {
        if self.scopes.is_some() {
            return Err(Problem::forbidden("accounts, passwords and API keys are managed by people, not by API keys"));
        }
        Ok(&self.principal)
    }
}

pub(crate) fn random_token(bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    rand::rngs::OsRng.fill_bytes(&mut b);
    URL_SAFE_NO_PAD.encode(b)
}

fn sha256(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

pub fn hash_password(password: &str) -> Result<String, Problem> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default().hash_password(password.as_bytes(), &salt).map(|h| h.to_string()).map_err(Problem::internal)
}

fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|h| Argon2::default().verify_password(password.as_bytes(), &h).is_ok())
}

/// 429 for a locked login, `remaining_ms` before it opens again.
fn locked(remaining_ms: i64) -> Problem {
    let mut p = Problem::new(
        http::StatusCode::TOO_MANY_REQUESTS,
        "the account is locked after repeated failed logins; try again later",
    );
    p.retry_after = Some(u64::try_from(remaining_ms / 1000 + 1).unwrap_or(1));
    p
}

/// A hash no password matches, checked when a username has no account so
/// that the answer takes as long as for one that has.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$0000000000000000000000000000000000000000000";

/// The type of the problem answered to a login whose password someone else
/// chose: the console then asks for a new one.
pub const PASSWORD_CHANGE_REQUIRED: &str = "urn:kefu:password-change-required";

fn password_change_required() -> Problem {
    let mut p = Problem::forbidden(
        "this password was given to you and must be changed before first use: \
         POST /api/v1/auth/password with username, currentPassword and newPassword, then log in",
    );
    p.kind = PASSWORD_CHANGE_REQUIRED.into();
    p
}

/// Passwords people pick first; refused whatever their length.
const COMMON_PASSWORDS: &[&str] = &[
    "1234567890",
    "12345678910",
    "123456789012",
    "0123456789",
    "1qaz2wsx3edc",
    "qwertyuiop",
    "qwerty123456",
    "password123",
    "password1234",
    "passw0rd123",
    "iloveyou123",
    "abcdefghij",
    "abc123456789",
    "admin12345",
    "administrator",
    "welcome123",
    "letmein123",
    "woaini1314",
    "woaini520",
    "5201314520",
    "1314520520",
];

pub fn check_password_strength(field: &str, p: &str) -> Result<(), Problem> {
    if p.chars().count() < 10 {
        return Err(Problem::bad_request(field, "must be at least 10 characters"));
    }
    if p.len() > 256 {
        return Err(Problem::bad_request(field, "must be at most 256 bytes"));
    }
    let distinct: std::collections::HashSet<char> = p.chars().collect();
    if distinct.len() < 5 {
        return Err(Problem::bad_request(field, "must use at least 5 different characters"));
    }
    let lower = p.to_lowercase();
    if COMMON_PASSWORDS.iter().any(|c| lower == *c) {
        return Err(Problem::bad_request(field, "is one of the most common passwords; choose another"));
    }
    Ok(())
}

pub(crate) fn parse_roles(field: &str, roles: &[String]) -> Result<Vec<Role>, Problem> {
    if roles.is_empty() {
        return Err(Problem::bad_request(field, "name at least one role"));
    }
    roles.iter().map(|r| r.parse::<Role>().map_err(|e| Problem::bad_request(field, e))).collect()
}

pub(crate) fn roles_text(roles: &[Role]) -> String {
    roles.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(",")
}

pub(crate) fn roles_of(text: &str) -> Vec<Role> {
    text.split(',').filter_map(|r| r.parse().ok()).collect()
}

#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Account {
    pub id: String,
    pub username: String,
    pub roles: Vec<String>,
    pub staff_id: String,
    pub disabled: bool,
    /// Roles asked for through the API, waiting for a second admin.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pending_role_grant: Option<crate::role_grants::RoleGrant>,
}

/// How a new account's roles take effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grant<'a> {
    /// At once: the shell (`kefu admin create-user`, the first start).
    Direct,
    /// When a second admin approves them (the API), for this reason.
    FourEyes(&'a str),
}

#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenPair {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: u64,
    pub refresh_token: String,
}

pub struct Auth {
    pub pool: AnyPool,
    pub signer: TokenSigner,
    pub verifier: TokenVerifier,
    pub audit_keys: AuditKeys,
    /// Sessions the database said were live lately (see [`crate::sessions`]).
    pub sessions: Arc<crate::sessions::SessionCache>,
}

/// Stores a new refresh token of `family` for `account_id`; returns it.
async fn issue_refresh(conn: &mut sqlx::AnyConnection, account_id: &str, family: &str) -> Result<String, Problem> {
    let token = random_token(32);
    sqlx::query(
        "INSERT INTO refresh_tokens (id, family_id, account_id, token_hash, expires_at, used_at, revoked_at, created_at) \
         VALUES ($1,$2,$3,$4,$5,NULL,NULL,$6)",
    )
    .bind(uuid::Uuid::now_v7().to_string())
    .bind(family)
    .bind(account_id)
    .bind(sha256(&token))
    .bind(now_ms() + REFRESH_TTL_MS)
    .bind(now_ms())
    .execute(conn)
    .await
    .map_err(Problem::internal)?;
    Ok(token)
}

/// Who made a change from the shell (`kefu admin`, the first start).
pub fn operator() -> Principal {
    Principal { subject: "kefu-admin".into(), roles: vec![Role::Admin] }
}

/// Appends an audit entry by `by` about account or key `subject` inside `tx`.
async fn audit(
    tx: &mut sqlx::AnyConnection,
    keys: &AuditKeys,
    by: &Principal,
    action: &str,
    subject: &str,
    detail: String,
) -> Result<(), Problem> {
    let ev = kefu_kit::audit::Event { detail, ..kefu_kit::audit::Event::by(by, action, subject) };
    kefu_kit::audit::append(tx, keys, ev).await.map(drop).map_err(Problem::from)
}

/// A new account's fields, checked: the username, its roles and the staff
/// id it speaks for (the username when none is given).
pub fn checked_new_account(
    username: &str,
    password: &str,
    roles: &[String],
    staff_id: &str,
) -> Result<(String, Vec<Role>, String), Problem> {
    let username = username.trim();
    if username.is_empty()
        || username.len() > 64
        || !username.chars().all(|c| c.is_ascii_alphanumeric() || "._-@".contains(c))
    {
        return Err(Problem::bad_request("username", "1–64 characters of letters, digits and . _ - @"));
    }
    check_password_strength("password", password)?;
    let roles = parse_roles("roles", roles)?;
    if roles.contains(&Role::Service) {
        return Err(Problem::bad_request(
            "roles",
            "the service role is for internal systems (API keys, gRPC), not for people's accounts",
        ));
    }
    // In the directory's case (lower), so one person has one account.
    let staff_id =
        if staff_id.trim().is_empty() { username.to_owned() } else { staff_id.trim().to_owned() }.to_ascii_lowercase();
    // Staff ids name people in every audit entry: plain characters only
    // (no look-alikes), and never an API key's identity.
    if staff_id.len() > 64 || !staff_id.chars().all(|c| c.is_ascii_alphanumeric() || "._-@".contains(c)) {
        return Err(Problem::bad_request("staffId", "1–64 characters of letters, digits and . _ - @"));
    }
    if password.to_lowercase().contains(&username.to_lowercase()) {
        return Err(Problem::bad_request("password", "must not contain the username"));
    }
    Ok((username.to_owned(), roles, staff_id))
}

/// A new account's login: its username and password, and whether the
/// password is a temporary one its holder must replace before a session.
#[derive(Debug, Clone, Copy)]
pub struct Login<'a> {
    pub username: &'a str,
    pub password: &'a str,
    pub must_change_password: bool,
}

impl Auth {
    pub async fn create_account(
        &self,
        login: Login<'_>,
        roles: &[String],
        staff_id: &str,
        by: &Principal,
        grant: Grant<'_>,
    ) -> Result<Account, Problem> {
        let Login { username, password, must_change_password } = login;
        let (username, roles, staff_id) = checked_new_account(username, password, roles, staff_id)?;
        let username = username.as_str();
        // Named clashes first (a unique index still decides a race).
        let clash: Option<(String, String)> = sqlx::query_as(
            "SELECT username, staff_id FROM accounts WHERE lower(username) = lower($1) OR staff_id = $2",
        )
        .bind(username)
        .bind(&staff_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(Problem::internal)?;
        if let Some((taken, sid)) = clash {
            let detail = if taken.eq_ignore_ascii_case(username) {
                format!("username {username:?} is taken")
            } else {
                format!("staff id {sid:?} already belongs to another account")
            };
            return Err(Problem::new(http::StatusCode::CONFLICT, detail));
        }
        let id = uuid::Uuid::now_v7().to_string();
        let now = now_ms();
        let hash = hash_password(password)?;
        let mut tx = self.pool.begin().await.map_err(Problem::internal)?;
        let res = sqlx::query(
            "INSERT INTO accounts (id, username, password_hash, roles, staff_id, disabled, failed_logins, locked_until, created_at, updated_at, must_change_password) \
             VALUES ($1,$2,$3,$4,$5,0,0,NULL,$6,$7,$8)",
        )
        .bind(&id)
        .bind(username)
        .bind(&hash)
        .bind(if grant == Grant::Direct { roles_text(&roles) } else { String::new() })
        .bind(&staff_id)
        .bind(now)
        .bind(now)
        .bind(i64::from(must_change_password))
        .execute(&mut *tx)
        .await;
        match res {
            Ok(_) => {}
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                return Err(Problem::new(http::StatusCode::CONFLICT, format!("username {username:?} is taken")));
            }
            Err(e) => return Err(Problem::internal(e)),
        }
        let granted = if grant == Grant::Direct { roles_text(&roles) } else { String::new() };
        let detail = format!("username={username} staff_id={staff_id} roles={granted}");
        audit(&mut tx, &self.audit_keys, by, "account.create", &id, detail).await?;
        let pending_role_grant = match grant {
            Grant::Direct => None,
            Grant::FourEyes(reason) => {
                let who = crate::role_grants::Grantee { account_id: &id, username, staff_id: &staff_id };
                Some(crate::role_grants::propose(&mut tx, &self.audit_keys, by, who, &roles, reason).await?)
            }
        };
        tx.commit().await.map_err(Problem::internal)?;
        Ok(Account {
            id,
            username: username.to_owned(),
            roles: if grant == Grant::Direct { roles.iter().map(|r| r.as_str().to_owned()).collect() } else { vec![] },
            staff_id,
            disabled: false,
            pending_role_grant,
        })
    }

    pub async fn count_accounts(&self) -> Result<i64, Problem> {
        sqlx::query("SELECT COUNT(*) FROM accounts")
            .fetch_one(&self.pool)
            .await
            .and_then(|r| r.try_get(0))
            .map_err(Problem::internal)
    }

    pub async fn list_accounts(&self) -> Result<Vec<Account>, Problem> {
        let rows = sqlx::query("SELECT id, username, roles, staff_id, disabled FROM accounts ORDER BY username")
            .fetch_all(&self.pool)
            .await
            .map_err(Problem::internal)?;
        rows.iter()
            .map(|r| {
                Ok(Account {
                    id: r.try_get(0)?,
                    username: r.try_get(1)?,
                    roles: r.try_get::<String, _>(2)?.split(',').filter(|s| !s.is_empty()).map(str::to_owned).collect(),
                    staff_id: r.try_get(3)?,
                    disabled: r.try_get::<i64, _>(4)? == 1,
                    pending_role_grant: None,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(Problem::internal)
    }

    pub async fn set_disabled(&self, id: &str, disabled: bool, by: &Principal) -> Result<(), Problem> {
        let mut tx = self.pool.begin().await.map_err(Problem::internal)?;
        // Disabling ends every token issued so far, sessions or not.
        let n = sqlx::query(
            "UPDATE accounts SET disabled = $1, updated_at = $2, \
             tokens_after = CASE WHEN $1 = 1 THEN $4 ELSE tokens_after END WHERE id = $3",
        )
        .bind(i64::from(disabled))
        .bind(now_ms())
        .bind(id)
        .bind(tokens_after_now())
        .execute(&mut *tx)
        .await
        .map_err(Problem::internal)?
        .rows_affected();
        if n == 0 {
            return Err(Problem::new(http::StatusCode::NOT_FOUND, format!("account {id} not found")));
        }
        if disabled {
            sqlx::query("UPDATE refresh_tokens SET revoked_at = $1 WHERE account_id = $2 AND revoked_at IS NULL")
                .bind(now_ms())
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(Problem::internal)?;
        }
        let action = if disabled { "account.disable" } else { "account.enable" };
        audit(&mut tx, &self.audit_keys, by, action, id, String::new()).await?;
        if disabled {
            crate::sessions::announce(&mut tx).await.map_err(Problem::internal)?;
        }
        tx.commit().await.map_err(Problem::internal)?;
        if disabled {
            self.sessions.forget_all();
        }
        Ok(())
    }

    fn access_token(&self, staff_id: &str, roles: &[Role], session: &str) -> Result<String, Problem> {
        self.signer.mint_session(staff_id, roles, ACCESS_TTL, session).map_err(Problem::internal)
    }

    async fn issue_refresh(&self, account_id: &str, family: &str) -> Result<String, Problem> {
        let mut conn = self.pool.acquire().await.map_err(Problem::internal)?;
        issue_refresh(&mut conn, account_id, family).await
    }

    /// Username + password → tokens. Locks the account after repeated failures.
    pub async fn login(&self, username: &str, password: &str) -> Result<TokenPair, Problem> {
        let denied = || Problem::unauthorized("wrong username or password");
        let row = sqlx::query("SELECT id, password_hash, roles, staff_id, disabled, failed_logins, locked_until, must_change_password FROM accounts WHERE lower(username) = lower($1)")
            .bind(username.trim())
            .fetch_optional(&self.pool)
            .await
            .map_err(Problem::internal)?;
        let Some(r) = row else {
            // A username without an account is counted and locked like a real
            // one, and costs the same work, so neither a 429 nor the timing
            // tells which usernames exist.
            self.reserve_unknown(&username.trim().to_lowercase()).await?;
            let _ = verify_password(password, DUMMY_HASH);
            return Err(denied());
        };
        let (id, hash, roles, staff_id): (String, String, String, String) = (
            r.try_get(0).map_err(Problem::internal)?,
            r.try_get(1).map_err(Problem::internal)?,
            r.try_get(2).map_err(Problem::internal)?,
            r.try_get(3).map_err(Problem::internal)?,
        );
        let disabled: i64 = r.try_get(4).map_err(Problem::internal)?;
        let now = now_ms();
        // The attempt is reserved (counted as failed) atomically before the
        // password is checked, so parallel guesses cannot outrun the lock:
        // at most MAX_FAILURES passwords are checked per lock period.
        self.reserve_attempt("accounts", "id", &id, now).await?;
        if !verify_password(password, &hash) {
            return Err(denied());
        }
        if disabled == 1 {
            return Err(Problem::forbidden("the account is disabled"));
        }
        let must_change: i64 = r.try_get(7).map_err(Problem::internal)?;
        if must_change == 1 {
            sqlx::query("UPDATE accounts SET failed_logins = 0, locked_until = NULL WHERE id = $1")
                .bind(&id)
                .execute(&self.pool)
                .await
                .map_err(Problem::internal)?;
            return Err(password_change_required());
        }
        if roles_of(&roles).is_empty() {
            return Err(Problem::forbidden(
                "the account has no roles yet: its role grant waits for a second admin's approval",
            ));
        }
        sqlx::query("UPDATE accounts SET failed_logins = 0, locked_until = NULL WHERE id = $1")
            .bind(&id)
            .execute(&self.pool)
            .await
            .map_err(Problem::internal)?;
        let family = uuid::Uuid::now_v7().to_string();
        let access = self.access_token(&staff_id, &roles_of(&roles), &family)?;
        let refresh = self.issue_refresh(&id, &family).await?;
        Ok(TokenPair {
            access_token: access,
            token_type: "Bearer",
            expires_in: ACCESS_TTL.as_secs(),
            refresh_token: refresh,
        })
    }

    /// Reserves a login attempt on the row of `table` whose `key_column` is
    /// `key` (counted as failed until a success resets it), atomically, so
    /// that parallel guesses cannot outrun the lock; 429 while it is locked.
    async fn reserve_attempt(&self, table: &str, key_column: &str, key: &str, now: i64) -> Result<(), Problem> {
        let reserved = sqlx::query(&format!(
            "UPDATE {table} SET failed_logins = CASE WHEN locked_until IS NOT NULL AND locked_until <= $3 THEN 1 \
             ELSE failed_logins + 1 END, \
             locked_until = CASE WHEN (CASE WHEN locked_until IS NOT NULL AND locked_until <= $3 THEN 1 \
             ELSE failed_logins + 1 END) >= $1 THEN $2 ELSE NULL END \
             WHERE {key_column} = $4 AND (locked_until IS NULL OR locked_until <= $3)"
        ))
        .bind(MAX_FAILURES)
        .bind(now + LOCK_MS)
        .bind(now)
        .bind(key)
        .execute(&self.pool)
        .await
        .map_err(Problem::internal)?
        .rows_affected();
        if reserved == 0 {
            let until: Option<i64> = sqlx::query(&format!("SELECT locked_until FROM {table} WHERE {key_column} = $1"))
                .bind(key)
                .fetch_one(&self.pool)
                .await
                .and_then(|r| r.try_get(0))
                .map_err(Problem::internal)?;
            return Err(locked(until.unwrap_or(now) - now));
        }
        Ok(())
    }

    /// The lock-out of a username with no account: reserves an attempt, or
    /// answers 429 as a locked account would.
    async fn reserve_unknown(&self, username: &str) -> Result<(), Problem> {
        if username.len() > 256 {
            return Ok(());
        }
        let now = now_ms();
        // Only a hash of what was typed is kept (people type passwords into
        // the username field), and only for a day after its last lock.
        let username = sha256(&format!("kefu.login-failure:{username}"));
        let username = username.as_str();
        sqlx::query("DELETE FROM login_failures WHERE last_at < $1")
            .bind(now - 86_400_000)
            .execute(&self.pool)
            .await
            .map_err(Problem::internal)?;
        sqlx::query(
            "INSERT INTO login_failures (username, failed_logins, locked_until, last_at) VALUES ($1, 0, NULL, $2) \
             ON CONFLICT (username) DO UPDATE SET last_at = excluded.last_at",
        )
        .bind(username)
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(Problem::internal)?;
        self.reserve_attempt("login_failures", "username", username, now).await?;
        Ok(())
    }

    /// Rotates a refresh token. Presenting one already used revokes its
    /// whole family (someone copied it).
    pub async fn refresh(&self, token: &str) -> Result<TokenPair, Problem> {
        let denied = |m: &str| Problem::unauthorized(m.to_owned());
        let row = sqlx::query(
            "SELECT r.id, r.family_id, r.account_id, r.expires_at, r.used_at, r.revoked_at, a.roles, a.staff_id, a.disabled \
             FROM refresh_tokens r JOIN accounts a ON a.id = r.account_id WHERE r.token_hash = $1",
        )
        .bind(sha256(token))
        .fetch_optional(&self.pool)
        .await
        .map_err(Problem::internal)?
        .ok_or_else(|| denied("unknown refresh token"))?;
        let get = |i: usize| -> Result<String, Problem> { row.try_get(i).map_err(Problem::internal) };
        let (id, family, account) = (get(0)?, get(1)?, get(2)?);
        let expires: i64 = row.try_get(3).map_err(Problem::internal)?;
        let used: Option<i64> = row.try_get(4).map_err(Problem::internal)?;
        let revoked: Option<i64> = row.try_get(5).map_err(Problem::internal)?;
        let disabled: i64 = row.try_get(8).map_err(Problem::internal)?;
        let now = now_ms();
        if used.is_some() {
            self.revoke_family(&family).await?;
            tracing::warn!(family = %family, "refresh token reused: family revoked");
            return Err(denied("refresh token already used; every session of this login is revoked"));
        }
        if revoked.is_some() || expires <= now || disabled == 1 {
            return Err(denied("refresh token revoked or expired"));
        }
        // The rotation and the new token commit together, and only while the
        // token is unused, unrevoked and unexpired and its account enabled:
        // a revocation committing meanwhile either stops it here or (having
        // revoked this row) ends the family for good.
        let mut tx = self.pool.begin().await.map_err(Problem::internal)?;
        let done = sqlx::query(
            "UPDATE refresh_tokens SET used_at = $1 WHERE id = $2 AND used_at IS NULL AND revoked_at IS NULL \
             AND expires_at > $1 AND account_id IN (SELECT id FROM accounts WHERE disabled = 0)",
        )
        .bind(now)
        .bind(&id)
        .execute(&mut *tx)
        .await
        .map_err(Problem::internal)?;
        if done.rows_affected() == 0 {
            drop(tx);
            let reused: Option<i64> = sqlx::query("SELECT used_at FROM refresh_tokens WHERE id = $1")
                .bind(&id)
                .fetch_one(&self.pool)
                .await
                .and_then(|r| r.try_get(0))
                .map_err(Problem::internal)?;
            if reused.is_some() {
                self.revoke_family(&family).await?;
                return Err(denied("refresh token already used; every session of this login is revoked"));
            }
            return Err(denied("refresh token revoked or expired"));
        }
        let access = self.access_token(&get(7)?, &roles_of(&get(6)?), &family)?;
        let refresh = issue_refresh(&mut tx, &account, &family).await?;
        tx.commit().await.map_err(Problem::internal)?;
        Ok(TokenPair {
            access_token: access,
            token_type: "Bearer",
            expires_in: ACCESS_TTL.as_secs(),
            refresh_token: refresh,
        })
    }

    pub async fn revoke_family(&self, family: &str) -> Result<(), Problem> {
        let mut tx = self.pool.begin().await.map_err(Problem::internal)?;
        sqlx::query("UPDATE refresh_tokens SET revoked_at = $1 WHERE family_id = $2 AND revoked_at IS NULL")
            .bind(now_ms())
            .bind(family)
            .execute(&mut *tx)
            .await
            .map_err(Problem::internal)?;
        crate::sessions::announce(&mut tx).await.map_err(Problem::internal)?;
        tx.commit().await.map_err(Problem::internal)?;
        self.sessions.forget_all();
        Ok(())
    }

    pub async fn logout(&self, token: &str) -> Result<(), Problem> {
        let family: Option<String> = sqlx::query("SELECT family_id FROM refresh_tokens WHERE token_hash = $1")
            .bind(sha256(token))
            .fetch_optional(&self.pool)
            .await
            .map_err(Problem::internal)?
            .map(|r| r.try_get(0))
            .transpose()
            .map_err(Problem::internal)?;
        if let Some(f) = family {
            self.revoke_family(&f).await?;
        }
        Ok(())
    }

    /// The password of an account that must change it, changed without a
    /// session: the username and the current password prove who it is
    /// (counted against the lock-out like a login). Then log in with the new one.
    pub async fn change_first_password(&self, username: &str, current: &str, new: &str) -> Result<(), Problem> {
        let denied = || Problem::unauthorized("wrong username or password");
        let row = sqlx::query(
            "SELECT id, password_hash, staff_id, disabled, must_change_password, roles FROM accounts WHERE lower(username) = lower($1)",
        )
        .bind(username.trim())
        .fetch_optional(&self.pool)
        .await
        .map_err(Problem::internal)?;
        let Some(r) = row else {
            // Counted, locked and as slow as a real account, as a login is.
            self.reserve_unknown(&username.trim().to_lowercase()).await?;
            let _ = verify_password(current, DUMMY_HASH);
            return Err(denied());
        };
        let id: String = r.try_get(0).map_err(Problem::internal)?;
        let hash: String = r.try_get(1).map_err(Problem::internal)?;
        let staff_id: String = r.try_get(2).map_err(Problem::internal)?;
        let disabled: i64 = r.try_get(3).map_err(Problem::internal)?;
        let must_change: i64 = r.try_get(4).map_err(Problem::internal)?;
        let roles = roles_of(&r.try_get::<String, _>(5).map_err(Problem::internal)?);
        self.reserve_attempt("accounts", "id", &id, now_ms()).await?;
        if !verify_password(current, &hash) {
            return Err(denied());
        }
        // The right password: a refusal of the new one below does not count
        // towards the lock-out.
        sqlx::query("UPDATE accounts SET failed_logins = 0, locked_until = NULL WHERE id = $1")
            .bind(&id)
            .execute(&self.pool)
            .await
            .map_err(Problem::internal)?;
        if disabled == 1 {
            return Err(Problem::forbidden("the account is disabled"));
        }
        if must_change == 0 {
            return Err(Problem::forbidden(
                "this account's password is its holder's own: log in and change it with your session",
            ));
        }
        check_password_strength("newPassword", new)?;
        if new == current {
            return Err(Problem::bad_request("newPassword", "must differ from the password given to you"));
        }
        if new.to_lowercase().contains(&username.trim().to_lowercase()) {
            return Err(Problem::bad_request("newPassword", "must not contain the username"));
        }
        let new_hash = hash_password(new)?;
        let mut tx = self.pool.begin().await.map_err(Problem::internal)?;
        sqlx::query(
            "UPDATE accounts SET password_hash = $1, updated_at = $2, tokens_after = $4, must_change_password = 0, \
             failed_logins = 0, locked_until = NULL WHERE id = $3",
        )
        .bind(&new_hash)
        .bind(now_ms())
        .bind(&id)
        .bind(tokens_after_now())
        .execute(&mut *tx)
        .await
        .map_err(Problem::internal)?;
        let by = Principal { subject: staff_id, roles };
        audit(&mut tx, &self.audit_keys, &by, "account.password", &id, "first password set by its holder".into())
            .await?;
        crate::sessions::announce(&mut tx).await.map_err(Problem::internal)?;
        tx.commit().await.map_err(Problem::internal)?;
        self.sessions.forget_all();
        Ok(())
    }

    pub async fn change_password(&self, by: &Principal, current: &str, new: &str) -> Result<(), Problem> {
        let staff_id = by.subject.as_str();
        check_password_strength("newPassword", new)?;
        let row = sqlx::query("SELECT id, password_hash FROM accounts WHERE staff_id = $1")
            .bind(staff_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(Problem::internal)?
            .ok_or_else(|| Problem::forbidden("only people with a login account have a password"))?;
        let id: String = row.try_get(0).map_err(Problem::internal)?;
        let hash: String = row.try_get(1).map_err(Problem::internal)?;
        if !verify_password(current, &hash) {
            return Err(Problem::bad_request("currentPassword", "is not the current password"));
        }
        let new_hash = hash_password(new)?;
        let mut tx = self.pool.begin().await.map_err(Problem::internal)?;
        sqlx::query("UPDATE accounts SET password_hash = $1, updated_at = $2, tokens_after = $4 WHERE id = $3")
            .bind(&new_hash)
            .bind(now_ms())
            .bind(&id)
            .bind(tokens_after_now())
            .execute(&mut *tx)
            .await
            .map_err(Problem::internal)?;
        // Every session ends with the old password, this one too: its
        // holder logs in again with the new one.
        sqlx::query("UPDATE refresh_tokens SET revoked_at = $1 WHERE account_id = $2 AND revoked_at IS NULL")
            .bind(now_ms())
            .bind(&id)
            .execute(&mut *tx)
            .await
            .map_err(Problem::internal)?;
        audit(&mut tx, &self.audit_keys, by, "account.password", &id, String::new()).await?;
        crate::sessions::announce(&mut tx).await.map_err(Problem::internal)?;
        tx.commit().await.map_err(Problem::internal)?;
        self.sessions.forget_all();
        Ok(())
    }

    /// A new API key (the secret is returned once and only its hash kept):
    /// its roles, the scopes it is limited to (each checked
    /// by `known_scope`), and its lifetime in days.
    pub async fn create_api_key(
        &self,
        new: &NewApiKey,
        known_scope: impl Fn(&str) -> bool,
        by: &Principal,
    ) -> Result<ApiKeyCreated, Problem> {
        let name = new.name.trim();
        if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
            return Err(Problem::bad_request("name", "is required (at most 100 characters, no control characters)"));
        }
        let roles = parse_roles("roles", &new.roles)?;
        if new.scopes.is_empty() {
            return Err(Problem::bad_request(
                "scopes",
                "name the services (customers, tickets) or calls (kefu.tickets.v1.TicketService/GetTicket) the key may use",
            ));
        }
        if new.scopes.len() > 64 {
            return Err(Problem::bad_request("scopes", "at most 64 entries"));
        }
        for (i, s) in new.scopes.iter().enumerate() {
            if !known_scope(s) {
                return Err(Problem::bad_request(
                    &format!("scopes[{i}]"),
                    format!("{s:?} is neither a service (customers, tickets) nor one of their calls"),
                ));
            }
        }
        let days = new.expires_in_days.unwrap_or(API_KEY_DEFAULT_DAYS);
        if !(1..=API_KEY_MAX_DAYS).contains(&days) {
            return Err(Problem::bad_request("expiresInDays", format!("must be 1–{API_KEY_MAX_DAYS}")));
        }
        let id = uuid::Uuid::now_v7().simple().to_string();
        let key = format!("kefu_{id}_{}", random_token(24));
        let now = now_ms();
        let expires_at = now + days * 86_400_000;
        let mut tx = self.pool.begin().await.map_err(Problem::internal)?;
        sqlx::query(
            "INSERT INTO api_keys (id, name, key_hash, roles, created_by, created_at, revoked_at, last_used_at, expires_at, scopes) \
             VALUES ($1,$2,$3,$4,$5,$6,NULL,NULL,$7,$8)",
        )
        .bind(&id)
        .bind(name)
        .bind(sha256(&key))
        .bind(roles_text(&roles))
        .bind(&by.subject)
        .bind(now)
        .bind(expires_at)
        .bind(new.scopes.join(","))
        .execute(&mut *tx)
        .await
        .map_err(Problem::internal)?;
        let detail = format!("name={name} roles={} scopes={} days={days}", roles_text(&roles), new.scopes.join(","));
        audit(&mut tx, &self.audit_keys, by, "api_key.create", &id, detail).await?;
        tx.commit().await.map_err(Problem::internal)?;
        Ok(ApiKeyCreated { id, name: name.to_owned(), key, expires_at, note: "shown once; store it now" })
    }

    pub async fn list_api_keys(&self) -> Result<Vec<serde_json::Value>, Problem> {
        let rows = sqlx::query(
            "SELECT id, name, roles, created_by, created_at, revoked_at, expires_at, scopes, last_used_at FROM api_keys ORDER BY id",
        )
            .fetch_all(&self.pool)
            .await
            .map_err(Problem::internal)?;
        rows.iter()
            .map(|r| -> Result<serde_json::Value, sqlx::Error> {
                Ok(serde_json::json!({
                    "id": r.try_get::<String, _>(0)?,
                    "name": r.try_get::<String, _>(1)?,
                    "roles": r.try_get::<String, _>(2)?.split(',').collect::<Vec<_>>(),
                    "createdBy": r.try_get::<String, _>(3)?,
                    "createdAt": r.try_get::<i64, _>(4)?,
                    "revoked": r.try_get::<Option<i64>, _>(5)?.is_some(),
                    "expiresAt": r.try_get::<Option<i64>, _>(6)?,
                    "scopes": r.try_get::<String, _>(7)?.split(',').filter(|s| !s.is_empty()).collect::<Vec<_>>(),
                    "lastUsedAt": r.try_get::<Option<i64>, _>(8)?,
                }))
            })
            .collect::<Result<_, _>>()
            .map_err(Problem::internal)
    }

    pub async fn revoke_api_key(&self, id: &str, by: &Principal) -> Result<(), Problem> {
        let mut tx = self.pool.begin().await.map_err(Problem::internal)?;
        let n = sqlx::query("UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
            .bind(now_ms())
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(Problem::internal)?
            .rows_affected();
        if n == 0 {
            return Err(Problem::new(http::StatusCode::NOT_FOUND, format!("no live API key {id}")));
        }
        audit(&mut tx, &self.audit_keys, by, "api_key.revoke", id, String::new()).await?;
        tx.commit().await.map_err(Problem::internal)?;
        Ok(())
    }

    /// An API key → the caller, with a short-lived token for the services.
    pub async fn authenticate_api_key(&self, key: &str) -> Result<Caller, Problem> {
        let row = sqlx::query(
            "SELECT id, name, roles, revoked_at, expires_at, scopes, last_used_at FROM api_keys WHERE key_hash = $1",
        )
        .bind(sha256(key.trim()))
        .fetch_optional(&self.pool)
        .await
        .map_err(Problem::internal)?
        .ok_or_else(|| Problem::unauthorized("unknown API key"))?;
        let id: String = row.try_get(0).map_err(Problem::internal)?;
        let revoked: Option<i64> = row.try_get(3).map_err(Problem::internal)?;
        if revoked.is_some() {
            return Err(Problem::unauthorized("the API key was revoked"));
        }
        let now = now_ms();
        let expires: Option<i64> = row.try_get(4).map_err(Problem::internal)?;
        match expires {
            // A key from before expiry: its default lifetime starts now.
            None => {
                sqlx::query("UPDATE api_keys SET expires_at = $1 WHERE id = $2 AND expires_at IS NULL")
                    .bind(now + API_KEY_DEFAULT_DAYS * 86_400_000)
                    .bind(&id)
                    .execute(&self.pool)
                    .await
                    .map_err(Problem::internal)?;
            }
            Some(e) if e <= now => return Err(Problem::unauthorized("the API key has expired; create a new one")),
            Some(_) => {}
        }
        let last_used: Option<i64> = row.try_get(6).map_err(Problem::internal)?;
        if last_used.is_none_or(|t| now - t >= LAST_USED_EVERY_MS) {
            sqlx::query("UPDATE api_keys SET last_used_at = $1 WHERE id = $2")
                .bind(now)
                .bind(&id)
                .execute(&self.pool)
                .await
                .map_err(Problem::internal)?;
        }
        let name: String = row.try_get(1).map_err(Problem::internal)?;
        let roles = roles_of(&row.try_get::<String, _>(2).map_err(Problem::internal)?);
        let scopes: Vec<String> = row
            .try_get::<String, _>(5)
            .map_err(Problem::internal)?
            .split(',')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        let subject = format!("apikey:{name}");
        let token = self.signer.mint(&subject, &roles, Duration::from_secs(120)).map_err(Problem::internal)?;
        Ok(Caller { principal: Principal { subject, roles }, token, scopes: Some(scopes) })
    }

    /// Who is calling: a bearer access token or an API key.
    pub async fn caller(&self, headers: &http::HeaderMap) -> Result<Caller, Problem> {
        if let Some(key) = headers.get("x-api-key").and_then(|v| v.to_str().ok()) {
            return self.authenticate_api_key(key).await;
        }
        let auth = headers
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| Problem::unauthorized("log in: send Authorization: Bearer <access token> or X-API-Key"))?;
        if let Some(key) = auth.strip_prefix("ApiKey ") {
            return self.authenticate_api_key(key).await;
        }
        let token = auth
            .strip_prefix("Bearer ")
            .ok_or_else(|| Problem::unauthorized("Authorization must be 'Bearer <token>' or 'ApiKey <key>'"))?
            .trim();
        let v = self.verifier.verify_token(token).map_err(|e| Problem::unauthorized(e.to_string()))?;
        if v.principal.roles.contains(&Role::Service) {
            // It reads unmasked bank accounts: systems only, each with its
            // own revocable key, never a person's bearer token.
            return Err(Problem::forbidden(
                "the service role is for internal systems: use an API key (X-API-Key) or call the services over gRPC",
            ));
        }
        self.check_not_revoked(&v).await?;
        Ok(Caller { principal: v.principal, token: token.to_owned(), scopes: None })
    }

    /// UNAUTHORIZED for a token whose session ended (logout, a reused
    /// refresh token, a password change, an account disabled) or, for a
    /// token minted outside a login, one issued before its account's last
    /// password change or disabling.
    async fn check_not_revoked(&self, v: &Verified) -> Result<(), Problem> {
        let key = match &v.session {
            Some(s) => format!("{}\u{1f}{s}", v.principal.subject),
            None => format!("{}\u{1f}iat:{}", v.principal.subject, v.issued_at),
        };
        if self.sessions.is_live(&key) {
            return Ok(());
        }
        let generation = self.sessions.generation();
        self.read_not_revoked(v).await?;
        self.sessions.remember(key, generation);
        Ok(())
    }

    async fn read_not_revoked(&self, v: &Verified) -> Result<(), Problem> {
        let row = sqlx::query(
            "SELECT a.disabled, a.tokens_after, \
             (SELECT COUNT(*) FROM refresh_tokens r WHERE r.family_id = $2 AND r.account_id = a.id), \
             (SELECT COUNT(*) FROM refresh_tokens r WHERE r.family_id = $2 AND r.account_id = a.id AND r.revoked_at IS NOT NULL) \
             FROM accounts a WHERE a.staff_id = $1",
        )
        .bind(&v.principal.subject)
        .bind(v.session.as_deref().unwrap_or(""))
        .fetch_optional(&self.pool)
        .await
        .map_err(Problem::internal)?;
        let Some(row) = row else {
            return match v.session {
                Some(_) => Err(Problem::unauthorized("the account of this session no longer exists")),
                // A token minted for a system or a person without an account.
                None => Ok(()),
            };
        };
        let disabled: i64 = row.try_get(0).map_err(Problem::internal)?;
        let tokens_after: i64 = row.try_get(1).map_err(Problem::internal)?;
        // A session ends for good once any of its refresh tokens is revoked.
        let tokens: i64 = row.try_get(2).map_err(Problem::internal)?;
        let revoked: i64 = row.try_get(3).map_err(Problem::internal)?;
        let live = i64::from(tokens > 0 && revoked == 0);
        if disabled == 1 {
            return Err(Problem::unauthorized("the account is disabled"));
        }
        match v.session {
            Some(_) if live == 0 => {
                Err(Problem::unauthorized("this session has ended (logged out or revoked); log in again"))
            }
            None if v.issued_at < tokens_after => {
                Err(Problem::unauthorized("the token was issued before the account's password changed; mint a new one"))
            }
            _ => Ok(()),
        }
    }
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewApiKey {
    pub name: String,
    pub roles: Vec<String>,
    #[serde(default)]
    pub scopes: Vec<String>,
    #[serde(default)]
    pub expires_in_days: Option<i64>,
}

#[derive(Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiKeyCreated {
    pub id: String,
    pub name: String,
    pub key: String,
    pub expires_at: i64,
    pub note: &'static str,
}
