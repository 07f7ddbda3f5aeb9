//! Identity on every call: Ed25519-signed JWTs carrying the staff id and
//! roles. Services hold only public keys (by key id), so a service cannot
//! mint tokens and keys can rotate.
use std::{collections::HashMap, str::FromStr, sync::Arc, time::Duration};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use ed25519_dalek::pkcs8::EncodePrivateKey;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::{Error, keys::KeyEntry};

const ISSUER: &str = "kefu";
const AUDIENCE: &str = "kefu";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Agent,
    Supervisor,
    Hr,
    Admin,
    Auditor,
    /// An internal system (or another kefu service).
    Service,
}

impl Role {
    pub const ALL: [Role; 6] = [Role::Agent, Role::Supervisor, Role::Hr, Role::Admin, Role::Auditor, Role::Service];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Agent => "agent",
            Role::Supervisor => "supervisor",
            Role::Hr => "hr",
            Role::Admin => "admin",
            Role::Auditor => "auditor",
            Role::Service => "service",
        }
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL.into_iter().find(|r| r.as_str() == s).ok_or_else(|| {
            format!("unknown role {s:?} (expected one of agent, supervisor, hr, admin, auditor, service)")
        })
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The subject prefix of tokens the gateway mints for API keys.
pub const API_KEY_SUBJECT_PREFIX: &str = "apikey:";

/// The verified caller of an RPC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// Staff id (people) or system name (service tokens).
    pub subject: String,
    pub roles: Vec<Role>,
}

impl Principal {
    pub fn has_any(&self, allowed: &[Role]) -> bool {
        self.roles.iter().any(|r| allowed.contains(r))
    }

    /// The caller acting in `role`: that role first, so audit entries name
    /// the role that allowed the action.
    pub fn acting_as(&self, role: Role) -> Self {
        let mut roles = vec![role];
        roles.extend(self.roles.iter().copied().filter(|r| *r != role));
        Self { subject: self.subject.clone(), roles }
    }

    /// PERMISSION_DENIED unless the caller holds one of `allowed`; else the
    /// caller acting in the first such role it holds.
    pub fn require(&self, allowed: &[Role]) -> Result<Self, Error> {
        if let Some(role) = self.roles.iter().find(|r| allowed.contains(r)) {
            Ok(self.acting_as(*role))
        } else {
            let want: Vec<&str> = allowed.iter().map(|r| r.as_str()).collect();
            Err(Error::PermissionDenied(format!(
                "this call needs one of the roles [{}]; the caller has [{}]",
                want.join(", "),
                self.roles.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(", ")
            )))
        }
    }

    /// The role recorded in audit entries: the one that allowed the call
    /// (the auth layer and [`Principal::require`] put it first).
    /// A token the gateway mints for an API key (an integration), not a person.
    pub fn is_api_key(&self) -> bool {
        self.subject.starts_with(API_KEY_SUBJECT_PREFIX)
    }

    pub fn primary_role(&self) -> &'static str {
        self.roles.first().map_or("", |r| r.as_str())
    }
}

/// Reads the verified principal that the auth layer put on the request.
pub fn principal<T>(req: &tonic::Request<T>) -> Result<Principal, Error> {
    req.extensions()
        .get::<Principal>()
        .cloned()
        .ok_or_else(|| Error::Unauthenticated("no verified caller on this request".into()))
}

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    roles: Vec<Role>,
    iss: String,
    aud: String,
    iat: i64,
    exp: i64,
    /// The login session (refresh-token family) an access token belongs to;
    /// the gateway refuses the token once that session has ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sid: Option<String>,
}

/// A verified token: its caller, and what a session check needs.
#[derive(Debug, Clone)]
pub struct Verified {
    pub principal: Principal,
    /// The login session the token was issued for, if any.
    pub session: Option<String>,
    /// When it was issued (Unix seconds).
    pub issued_at: i64,
}

/// The longest lifetime (exp − iat) a token may have. Verifiers refuse
/// longer-lived tokens whoever signed them, so a stolen long-lived token
/// cannot outlive key hygiene: people's tokens last minutes, systems' tokens
/// are re-minted at least monthly.
pub const MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(31 * 24 * 3600);

/// Mints tokens. Only holders of the private key have one.
pub struct TokenSigner {
    kid: String,
    key: EncodingKey,
    public: [u8; 32],
}

impl TokenSigner {
    pub fn from_entry(entry: &KeyEntry) -> anyhow::Result<Self> {
        let sk = ed25519_dalek::SigningKey::from_bytes(&entry.bytes);
        let der = sk.to_pkcs8_der().map_err(|e| anyhow::anyhow!("encoding signing key: {e}"))?;
        Ok(Self {
            kid: entry.kid.clone(),
            key: EncodingKey::from_ed_der(der.as_bytes()),
            public: sk.verifying_key().to_bytes(),
        })
    }

    /// The matching public key in `KID:BASE64URL` form.
    pub fn public_key(&self) -> String {
        format!("{}:{}", self.kid, URL_SAFE_NO_PAD.encode(self.public))
    }

    pub fn mint(&self, subject: &str, roles: &[Role], ttl: Duration) -> anyhow::Result<String> {
        self.mint_claims(subject, roles, ttl, None)
    }

    /// A token bound to login session `session`.
    pub fn mint_session(&self, subject: &str, roles: &[Role], ttl: Duration, session: &str) -> anyhow::Result<String> {
        self.mint_claims(subject, roles, ttl, Some(session.to_owned()))
    }

    fn mint_claims(&self, subject: &str, roles: &[Role], ttl: Duration, sid: Option<String>) -> anyhow::Result<String> {
        if subject.trim().is_empty() {
            anyhow::bail!("a token needs a subject (staff id)");
        }
        if roles.is_empty() {
            anyhow::bail!("a token needs at least one role");
        }
        if ttl > MAX_TOKEN_LIFETIME {
            anyhow::bail!("a token may last at most {} days", MAX_TOKEN_LIFETIME.as_secs() / 86_400);
        }
        let now = chrono::Utc::now().timestamp();
        let ttl = i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX / 2);
        let claims = Claims {
            sub: subject.to_owned(),
            roles: roles.to_vec(),
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
            iat: now,
            exp: now.saturating_add(ttl),
            sid,
        };
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        Ok(jsonwebtoken::encode(&header, &claims, &self.key)?)
    }
}

/// How many verified tokens a verifier remembers.
const VERIFIED_CACHE: usize = 10_000;

/// Tokens verified already, by their text, with their expiry
/// (Unix seconds, leeway included). A signature check costs tens of
/// microseconds (the largest part of a cheap call's CPU); a token's text
/// cannot change, so a cached verdict holds until the token expires.
type VerifiedCache = std::sync::Mutex<HashMap<String, (Arc<Verified>, i64)>>;

/// A token longer than this is refused before any work (real ones are under 1 KB).
const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// Verifies tokens against the configured public keys.
#[derive(Clone)]
pub struct TokenVerifier {
    keys: Arc<HashMap<String, DecodingKey>>,
    cache: Arc<VerifiedCache>,
}

impl TokenVerifier {
    pub fn new(public_keys: &[KeyEntry]) -> anyhow::Result<Self> {
        let mut keys = HashMap::new();
        for k in public_keys {
            let vk = ed25519_dalek::VerifyingKey::from_bytes(&k.bytes)
                .map_err(|_| anyhow::anyhow!("token public key {:?} is not a valid Ed25519 key", k.kid))?;
            keys.insert(k.kid.clone(), DecodingKey::from_ed_der(vk.as_bytes()));
        }
        Ok(Self { keys: Arc::new(keys), cache: Arc::default() })
    }

    pub fn verify(&self, token: &str) -> Result<Principal, Error> {
        self.verify_token(token).map(|v| v.principal)
    }

    /// Verifies `token` and returns it with its session and issue time; a
    /// token verified before and not yet expired is answered from memory.
    pub fn verify_token(&self, token: &str) -> Result<Verified, Error> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(Error::Unauthenticated("token is too long".into()));
        }
        let now = chrono::Utc::now().timestamp();
        let remembered = self
            .cache
            .lock()
            .ok()
            .and_then(|cache| cache.get(token).filter(|(_, expires)| *expires > now).map(|(v, _)| v.clone()));
        if let Some(v) = remembered {
            return Ok(Verified::clone(&v));
        }
        let (verified, expires) = self.verify_signed(token)?;
        if let Ok(mut cache) = self.cache.lock() {
            if cache.len() >= VERIFIED_CACHE {
                cache.retain(|_, (_, e)| *e > now);
                // Still mostly live tokens: start afresh rather than sweep
                // the map again on every insert.
                if cache.len() >= VERIFIED_CACHE * 9 / 10 {
                    cache.clear();
                }
            }
            cache.insert(token.to_owned(), (Arc::new(verified.clone()), expires));
        }
        Ok(verified)
    }

    /// Checks the signature and claims; the verdict and when it ends.
    fn verify_signed(&self, token: &str) -> Result<(Verified, i64), Error> {
        let unauth = |m: &str| Error::Unauthenticated(m.to_owned());
        let header = jsonwebtoken::decode_header(token).map_err(|_| unauth("malformed token"))?;
        if header.alg != Algorithm::EdDSA {
            return Err(unauth("token must be signed with EdDSA"));
        }
        let kid = header.kid.ok_or_else(|| unauth("token has no key id"))?;
        let key = self.keys.get(&kid).ok_or_else(|| unauth("token signed with an unknown key"))?;
        let mut v = Validation::new(Algorithm::EdDSA);
        v.set_issuer(&[ISSUER]);
        v.set_audience(&[AUDIENCE]);
        v.leeway = 30;
        v.set_required_spec_claims(&["exp", "iat", "sub", "iss", "aud"]);
        let data = jsonwebtoken::decode::<Claims>(token, key, &v).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind;
            match e.kind() {
                ErrorKind::ExpiredSignature => unauth("token expired"),
                ErrorKind::InvalidSignature => unauth("token signature is not valid"),
                _ => unauth("token is not valid"),
            }
        })?;
        if data.claims.roles.is_empty() {
            return Err(unauth("token carries no role"));
        }
        let max = i64::try_from(MAX_TOKEN_LIFETIME.as_secs()).unwrap_or(i64::MAX);
        if data.claims.exp.saturating_sub(data.claims.iat) > max
            || data.claims.iat > chrono::Utc::now().timestamp() + 60
        {
            return Err(unauth("token lifetime is longer than allowed; mint a new one"));
        }
        let expires = data.claims.exp.saturating_add(i64::try_from(v.leeway).unwrap_or(0));
        let verified = Verified {
            principal: Principal { subject: data.claims.sub, roles: data.claims.roles },
            session: data.claims.sid,
            issued_at: data.claims.iat,
        };
        Ok((verified, expires))
    }

    /// Extracts and verifies `authorization: Bearer <token>`.
    pub fn verify_header(&self, value: Option<&http::HeaderValue>) -> Result<Principal, Error> {
        let value =
            value.ok_or_else(|| Error::Unauthenticated("missing authorization metadata (Bearer token)".into()))?;
        let text = value.to_str().map_err(|_| Error::Unauthenticated("authorization metadata is not text".into()))?;
        let token = text
            .strip_prefix("Bearer ")
            .or_else(|| text.strip_prefix("bearer "))
            .ok_or_else(|| Error::Unauthenticated("authorization must be 'Bearer <token>'".into()))?;
        self.verify(token.trim())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair() -> (TokenSigner, TokenVerifier) {
        let entry = KeyEntry::generate("test");
        let signer = TokenSigner::from_entry(&entry).expect("signer");
        let pubs = crate::keys::parse_key_list("pub", &signer.public_key()).expect("pub");
        (signer, TokenVerifier::new(&pubs).expect("verifier"))
    }

    #[test]
    fn minted_token_verifies_with_roles() {
        let (s, v) = pair();
        let t = s.mint("staff-7", &[Role::Agent, Role::Supervisor], Duration::from_secs(60)).expect("mint");
        let p = v.verify(&t).expect("verifies");
        assert_eq!(p.subject, "staff-7");
        assert_eq!(p.roles, vec![Role::Agent, Role::Supervisor]);
        assert!(p.require(&[Role::Supervisor]).is_ok());
        assert!(matches!(p.require(&[Role::Admin]), Err(Error::PermissionDenied(_))));
    }

    #[test]
    fn a_remembered_verdict_serves_only_the_same_token_until_it_expires() {
        let (s, v) = pair();
        let good = s.mint("staff-8", &[Role::Agent], Duration::from_secs(60)).expect("mint");
        assert_eq!(v.verify(&good).expect("verifies").subject, "staff-8");
        assert_eq!(v.verify(&good).expect("again, from memory").subject, "staff-8");
        // A token differing in its signature's last character is a new text: checked, refused.
        let mut forged = good.clone();
        let last = forged.pop().expect("a character");
        forged.push(if last == 'A' { 'B' } else { 'A' });
        assert!(matches!(v.verify(&forged), Err(Error::Unauthenticated(_))));
        // A remembered verdict past its token's expiry is not used.
        v.cache.lock().expect("cache").get_mut(&good).expect("remembered").1 = 0;
        let other = TokenVerifier { keys: Arc::new(HashMap::new()), cache: v.cache.clone() };
        assert!(other.verify(&good).is_err(), "an expired verdict is checked again (and here no key verifies it)");
    }

    #[test]
    fn other_key_tampered_and_expired_tokens_are_refused() {
        let (s, v) = pair();
        let (other, _) = pair();
        let foreign = other.mint("x", &[Role::Admin], Duration::from_secs(60)).expect("mint");
        assert!(matches!(v.verify(&foreign), Err(Error::Unauthenticated(_))));

        let good = s.mint("x", &[Role::Agent], Duration::from_secs(60)).expect("mint");
        let mut parts: Vec<String> = good.split('.').map(str::to_owned).collect();
        let forged =
            serde_json::json!({"sub":"x","roles":["admin"],"iss":"kefu","aud":"kefu","iat":0,"exp":4_000_000_000_i64});
        parts[1] = URL_SAFE_NO_PAD.encode(forged.to_string());
        assert!(matches!(v.verify(&parts.join(".")), Err(Error::Unauthenticated(_))));

        // Expired well past the leeway.
        let entry = KeyEntry::generate("old");
        let signer = TokenSigner::from_entry(&entry).expect("signer");
        let v2 = TokenVerifier::new(&crate::keys::parse_key_list("p", &signer.public_key()).expect("p")).expect("v");
        let now = chrono::Utc::now().timestamp();
        let claims = Claims {
            sub: "x".into(),
            roles: vec![Role::Agent],
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
            iat: now - 7200,
            exp: now - 3600,
            sid: None,
        };
        let mut h = Header::new(Algorithm::EdDSA);
        h.kid = Some(entry.kid.clone());
        let expired = jsonwebtoken::encode(&h, &claims, &signer.key).expect("encode");
        match v2.verify(&expired) {
            Err(Error::Unauthenticated(m)) => assert!(m.contains("expired")),
            other => panic!("expected expired, got {other:?}"),
        }
        assert!(v.verify("not.a.token").is_err());
        assert!(v.verify_header(None).is_err());
    }

    #[test]
    fn a_token_longer_lived_than_allowed_is_refused_by_signer_and_verifier() {
        let entry = KeyEntry::generate("long");
        let signer = TokenSigner::from_entry(&entry).expect("signer");
        let v = TokenVerifier::new(&crate::keys::parse_key_list("p", &signer.public_key()).expect("p")).expect("v");
        assert!(signer.mint("x", &[Role::Service], Duration::from_secs(36_500 * 86_400)).is_err());
        assert!(signer.mint("x", &[Role::Service], MAX_TOKEN_LIFETIME).is_ok());
        // A 100-year token signed by hand with the real key: still refused.
        let now = chrono::Utc::now().timestamp();
        let claims = Claims {
            sub: "x".into(),
            roles: vec![Role::Service],
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
            iat: now,
            exp: now + 36_500 * 86_400,
            sid: None,
        };
        let mut h = Header::new(Algorithm::EdDSA);
        h.kid = Some(entry.kid.clone());
        let century = jsonwebtoken::encode(&h, &claims, &signer.key).expect("encode");
        match v.verify(&century) {
            Err(Error::Unauthenticated(m)) => assert!(m.contains("lifetime"), "{m}"),
            other => panic!("a 100-year token was accepted: {other:?}"),
        }
    }

    #[test]
    fn roles_parse_by_name() {
        assert_eq!("hr".parse::<Role>(), Ok(Role::Hr));
        assert!("root".parse::<Role>().is_err());
    }
}
