//! Key material in kefu's text form, `KID:BASE64URL` (several separated by
//! commas), so a key fits an environment variable or a Kubernetes Secret.
//!
//! - token signing key: the 32-byte Ed25519 seed (held only by whoever mints
//!   tokens: the gateway, `kefu up`, `kefu admin token`);
//! - token public keys: the 32-byte Ed25519 public keys (held by every service);
//! - data keys: 32-byte AES-256 keys; the first listed encrypts new data, the
//!   others still decrypt older rows (rotation).
use std::{fs, io::Write, path::Path};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use rand::RngCore;

/// One key with its id.
#[derive(Clone)]
pub struct KeyEntry {
    pub kid: String,
    pub bytes: [u8; 32],
}

impl std::fmt::Debug for KeyEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key bytes.
        f.debug_struct("KeyEntry").field("kid", &self.kid).finish_non_exhaustive()
    }
}

impl KeyEntry {
    pub fn generate(kid_prefix: &str) -> Self {
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        let kid = format!("{kid_prefix}-{}", chrono::Utc::now().format("%Y%m%d%H%M%S"));
        Self { kid, bytes }
    }

    pub fn encode(&self) -> String {
        format!("{}:{}", self.kid, URL_SAFE_NO_PAD.encode(self.bytes))
    }
}

/// Parses `KID:BASE64URL[,KID:BASE64URL...]`. `what` names the setting in errors.
pub fn parse_key_list(what: &str, text: &str) -> anyhow::Result<Vec<KeyEntry>> {
    let mut out = Vec::new();
    for (i, item) in text.split(',').map(str::trim).filter(|s| !s.is_empty()).enumerate() {
        let (kid, b64) =
            item.split_once(':').ok_or_else(|| anyhow::anyhow!("{what}: entry {} is not KID:BASE64URL", i + 1))?;
        if kid.is_empty() || kid.len() > 64 {
            anyhow::bail!("{what}: entry {} has an empty or over-long key id", i + 1);
        }
        let raw = URL_SAFE_NO_PAD
            .decode(b64.trim_end_matches('='))
            .map_err(|_| anyhow::anyhow!("{what}: key {kid:?} is not base64url"))?;
        let bytes: [u8; 32] = raw
            .try_into()
            .map_err(|v: Vec<u8>| anyhow::anyhow!("{what}: key {kid:?} has {} bytes, expected 32", v.len()))?;
        if out.iter().any(|k: &KeyEntry| k.kid == kid) {
            anyhow::bail!("{what}: key id {kid:?} appears twice");
        }
        out.push(KeyEntry { kid: kid.to_owned(), bytes });
    }
    if out.is_empty() {
        anyhow::bail!("{what}: no key given");
    }
    Ok(out)
}

/// Reads a key file, or creates it with a fresh key (mode 0600) when missing.
pub fn load_or_create(path: &Path, kid_prefix: &str) -> anyhow::Result<String> {
    if path.exists() {
        return Ok(fs::read_to_string(path)?.trim().to_owned());
    }
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir)?;
    }
    let text = KeyEntry::generate(kid_prefix).encode();
    let mut opts = fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(text.as_bytes())?;
    f.write_all(b"\n")?;
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_errors_name_the_setting() {
        let k = KeyEntry::generate("t");
        let parsed = parse_key_list("KEFU_X", &k.encode()).expect("parses");
        assert_eq!(parsed[0].bytes, k.bytes);
        let err = parse_key_list("KEFU_X", "a:AAAA").unwrap_err().to_string();
        assert!(err.contains("KEFU_X") && err.contains("expected 32"), "{err}");
        assert!(parse_key_list("KEFU_X", "").is_err());
        assert!(parse_key_list("KEFU_X", "nokid").is_err());
        let twice = format!("{},{}", k.encode(), k.encode());
        assert!(parse_key_list("KEFU_X", &twice).unwrap_err().to_string().contains("twice"));
        assert!(!format!("{k:?}").contains(&URL_SAFE_NO_PAD.encode(k.bytes)));
    }
}
