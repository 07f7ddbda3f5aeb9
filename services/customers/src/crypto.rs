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

#[derive(serde::Serialize, serde::Deserialize)]
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

/// The `key_id` of data sealed with its customer's own data key.
pub const CUSTOMER_KEY: &str = "customer-key";

fn dek_aad(customer_id: &str) -> String {
    format!("kefu.customers.data_key:{customer_id}")
}

/// A customer's own data key, unwrapped.
pub struct CustomerKey(Aes256Gcm);

impl CustomerKey {
    pub fn seal(&self, aad: &str, plaintext: &[u8]) -> anyhow::Result<Sealed> {
        let mut nonce = [0u8; 12];
        OsRng.fill_bytes(&mut nonce);
        let ct = self
            .0
            .encrypt(Nonce::from_slice(&nonce), Payload { msg: plaintext, aad: aad.as_bytes() })
            .map_err(|_| anyhow::anyhow!("encryption failed"))?;
        Ok(Sealed { key_id: CUSTOMER_KEY.into(), nonce: STANDARD.encode(nonce), ciphertext: STANDARD.encode(ct) })
    }

    pub fn open(&self, aad: &str, sealed: &Sealed) -> anyhow::Result<Vec<u8>> {
        open_with(&self.0, aad, sealed)
    }
}

fn open_with(cipher: &Aes256Gcm, aad: &str, sealed: &Sealed) -> anyhow::Result<Vec<u8>> {
    let nonce = STANDARD.decode(&sealed.nonce)?;
    if nonce.len() != 12 {
        anyhow::bail!("stored nonce has the wrong length");
    }
    let ct = STANDARD.decode(&sealed.ciphertext)?;
    cipher
        .decrypt(Nonce::from_slice(&nonce), Payload { msg: &ct, aad: aad.as_bytes() })
        .map_err(|_| anyhow::anyhow!("ciphertext does not authenticate (tampered, or bound to another record)"))
}

impl DataKeyring {
    /// The key-encryption key that wraps new data keys.
    pub fn active_id(&self) -> &str {
        &self.active
    }

    /// A fresh data key for `customer_id`, and its wrapped form to store.
    pub fn new_customer_key(&self, customer_id: &str) -> anyhow::Result<(CustomerKey, Sealed)> {
        let mut key = [0u8; 32];
        OsRng.fill_bytes(&mut key);
        let wrapped = self.seal(&dek_aad(customer_id), &key)?;
        Ok((CustomerKey(Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&key))), wrapped))
    }

    /// Unwraps a stored customer data key.
    pub fn customer_key(&self, customer_id: &str, wrapped: &Sealed) -> anyhow::Result<CustomerKey> {
        let key = self.open(&dek_aad(customer_id), wrapped)?;
        if key.len() != 32 {
            anyhow::bail!("the stored data key of customer {customer_id} has the wrong length");
        }
        Ok(CustomerKey(Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&key))))
    }

    /// A customer data key wrapped again under the active key-encryption key.
    pub fn rewrap(&self, customer_id: &str, wrapped: &Sealed) -> anyhow::Result<Sealed> {
        let key = self.open(&dek_aad(customer_id), wrapped)?;
        self.seal(&dek_aad(customer_id), &key)
    }

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
        open_with(cipher, aad, sealed)
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

    #[test]
    fn a_customer_key_is_bound_to_its_customer_and_survives_rewrapping() {
        let old = KeyEntry::generate("old");
        let ring1 = DataKeyring::new(std::slice::from_ref(&old)).unwrap();
        let (key, wrapped) = ring1.new_customer_key("c1").unwrap();
        let sealed = key.seal("profile:c1", b"6222021234567890").unwrap();
        assert!(ring1.customer_key("c2", &wrapped).is_err(), "a wrapped key moved to another customer does not open");

        let new = KeyEntry::generate("new");
        let ring2 = DataKeyring::new(&[new.clone(), old]).unwrap();
        let rewrapped = ring2.rewrap("c1", &wrapped).unwrap();
        assert_eq!(rewrapped.key_id, ring2.active_id());
        // Once every key is rewrapped the old key-encryption key can go.
        let only_new = DataKeyring::new(&[new]).unwrap();
        assert!(only_new.customer_key("c1", &wrapped).is_err());
        let reopened = only_new.customer_key("c1", &rewrapped).unwrap();
        assert_eq!(reopened.open("profile:c1", &sealed).unwrap(), b"6222021234567890");
    }
}
