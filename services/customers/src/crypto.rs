//! Encryption at rest for sensitive fields: AES-256-GCM under data keys
//! identified by key id. The first key encrypts; every key decrypts, so rows
//! written under an older key stay readable after rotation. The customer id
//! is bound as associated data: a ciphertext moved to another customer does
//! not decrypt.
use std::collections::HashMap;

use aes_gcm::{
    Aes256Gcm, Key, Nonce,
    aead::{Aead, KeyInit, OsRng, Payload, rand_core::RngCore},
};
use base64::{Engine, engine::general_purpose::STANDARD};
use kefu_kit::keys::KeyEntry;

pub struct Sealed {
    pub key_id: String,
    pub nonce: String,
    pub ciphertext: String,
}

pub struct DataKeyring {
    active: String,
    keys: HashMap<String, Aes256Gcm>,
}

impl std::fmt::Debug for DataKeyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataKeyring").field("active", &self.active).finish_non_exhaustive()
    }
}

impl DataKeyring {
    pub fn new(entries: &[KeyEntry]) -> anyhow::Result<Self> {
        let first = entries.first().ok_or_else(|| anyhow::anyhow!("KEFU_DATA_KEYS: no key given"))?;
        let keys =
            entries.iter().map(|e| (e.kid.clone(), Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&e.bytes)))).collect();
        Ok(Self { active: first.kid.clone(), keys })
    }

    pub fn seal(&self, aad: &str, plaintext: &[u8]) -> anyhow::Result<Sealed> {
        let cipher = self.keys.get(&self.active).ok_or_else(|| anyhow::anyhow!("active data key missing"))?;
        let mut nonce = [0u8; 12];
        OsRng.fill_bytes(&mut nonce);
        let ct = cipher
            .encrypt(Nonce::from_slice(&nonce), Payload { msg: plaintext, aad: aad.as_bytes() })
            .map_err(|_| anyhow::anyhow!("encryption failed"))?;
        Ok(Sealed { key_id: self.active.clone(), nonce: STANDARD.encode(nonce), ciphertext: STANDARD.encode(ct) })
    }

    pub fn open(&self, aad: &str, sealed: &Sealed) -> anyhow::Result<Vec<u8>> {
        let cipher = self.keys.get(&sealed.key_id).ok_or_else(|| {
            anyhow::anyhow!("data key {:?} is not configured (was it removed from KEFU_DATA_KEYS?)", sealed.key_id)
        })?;
        let nonce = STANDARD.decode(&sealed.nonce)?;
        if nonce.len() != 12 {
            anyhow::bail!("stored nonce has the wrong length");
        }
        let ct = STANDARD.decode(&sealed.ciphertext)?;
        cipher
            .decrypt(Nonce::from_slice(&nonce), Payload { msg: &ct, aad: aad.as_bytes() })
            .map_err(|_| anyhow::anyhow!("ciphertext does not authenticate (tampered, or bound to another record)"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_keeps_old_rows_readable_and_aad_binds_the_record() {
        let old = KeyEntry::generate("old");
        let ring1 = DataKeyring::new(std::slice::from_ref(&old)).unwrap();
        let sealed = ring1.seal("c1", b"6222021234567890").unwrap();
        assert!(!sealed.ciphertext.contains("6222"));

        let new = KeyEntry::generate("new");
        let ring2 = DataKeyring::new(&[new, old]).unwrap();
        assert_eq!(ring2.open("c1", &sealed).unwrap(), b"6222021234567890");
        assert_eq!(ring2.seal("c1", b"x").unwrap().key_id, ring2.active);
        assert!(ring2.open("c2", &sealed).is_err());

        let only_new = DataKeyring::new(&[KeyEntry::generate("other")]).unwrap();
        assert!(only_new.open("c1", &sealed).unwrap_err().to_string().contains("not configured"));
    }
}
