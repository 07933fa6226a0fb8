//! Secrets kept at rest sealed (decisions.md D86). An alert's signing secret must be kept,
//! since the service signs with it, but a copy of the database (a backup, a replica, a stolen
//! disk) must not give it away: it is stored sealed with XChaCha20-Poly1305 under a key from
//! the configuration (`secrets-key`, `WABILL_SECRETS_KEY`, 64 hex digits), bound to the tenant
//! it belongs to (a sealed value moved to another tenant's row does not open).
//!
//! A sealed value is `v1.<key id>.<hex of nonce and ciphertext>`; the key id is the first four
//! bytes of SHA-256 of the key, so that several keys may be configured during a rotation (the
//! first seals, every one opens) and a value sealed under a key no longer configured is named as
//! such.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use sha2::{Digest, Sha256};

const PREFIX: &str = "v1.";
const NONCE_BYTES: usize = 24;

/// Why a stored secret cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("the secret is stored sealed and no secrets key is configured (secrets-key)")]
    NoKey,
    #[error("the secret is sealed under key {0}, which is not among the configured secrets keys")]
    UnknownKey(String),
    #[error("the stored secret does not open: it is damaged or belongs to another tenant")]
    Damaged,
}

/// The configured secrets keys: the first seals, all open.
#[derive(Clone)]
pub struct SecretKeys {
    keys: Vec<([u8; 32], String)>,
}

impl PartialEq for SecretKeys {
    fn eq(&self, other: &SecretKeys) -> bool {
        self.keys == other.keys
    }
}

impl Eq for SecretKeys {}

impl std::fmt::Debug for SecretKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the keys themselves.
        let ids: Vec<&str> = self.keys.iter().map(|(_, id)| id.as_str()).collect();
        f.debug_struct("SecretKeys").field("ids", &ids).finish()
    }
}

fn key_id(key: &[u8; 32]) -> String {
    hex::encode(&Sha256::digest(key)[..4])
}

impl SecretKeys {
    /// Keys from their hex text (64 digits each), comma-separated; at least one.
    pub fn parse(text: &str) -> Result<SecretKeys, String> {
        let mut keys = Vec::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let bytes = hex::decode(part)
                .ok()
                .and_then(|b| <[u8; 32]>::try_from(b).ok())
                .ok_or_else(|| {
                    "a secrets key is 64 hex digits (32 random bytes: `openssl rand -hex 32`)"
                        .to_string()
                })?;
            keys.push(bytes);
        }
        if keys.is_empty() {
            return Err("no secrets key given".into());
        }
        Ok(SecretKeys::new(keys))
    }

    /// Keys from their bytes; the first seals.
    pub fn new(keys: Vec<[u8; 32]>) -> SecretKeys {
        assert!(!keys.is_empty(), "at least one secrets key");
        SecretKeys {
            keys: keys.into_iter().map(|k| (k, key_id(&k))).collect(),
        }
    }

    /// `plain`, sealed for `owner` (the tenant id) under the first key.
    pub fn seal(&self, owner: &str, plain: &str) -> String {
        let (key, id) = &self.keys[0];
        let mut nonce = [0u8; NONCE_BYTES];
        getrandom::fill(&mut nonce).expect("the system's randomness is available");
        let cipher = XChaCha20Poly1305::new(key.into());
        let sealed = cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plain.as_bytes(),
                    aad: owner.as_bytes(),
                },
            )
            .expect("sealing cannot fail");
        let mut out = Vec::with_capacity(NONCE_BYTES + sealed.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        format!("{PREFIX}{id}.{}", hex::encode(out))
    }

    /// A tag over `message` for `purpose` under the first key: `<key id>.<hex of HMAC-SHA256>`.
    /// Each purpose signs under a key of its own (the HMAC of the purpose under the secrets key),
    /// so that a tag made for one use never passes for another.
    pub fn tag(&self, purpose: &str, message: &str) -> String {
        let (key, id) = &self.keys[0];
        format!("{id}.{}", hex::encode(mac(key, purpose, message)))
    }

    /// Whether `tag` is [`SecretKeys::tag`] of `message` for `purpose` under one of the keys
    /// (a tag made before a rotation holds while its key is still configured). Compared in
    /// constant time.
    pub fn verify_tag(&self, purpose: &str, message: &str, tag: &str) -> bool {
        let Some((id, hex_mac)) = tag.split_once('.') else {
            return false;
        };
        let Ok(given) = hex::decode(hex_mac) else {
            return false;
        };
        self.keys.iter().filter(|(_, k)| k == id).any(|(key, _)| {
            use subtle::ConstantTimeEq;
            bool::from(mac(key, purpose, message).as_slice().ct_eq(&given))
        })
    }

    /// Opens what [`SecretKeys::seal`] sealed for `owner`.
    pub fn open(&self, owner: &str, stored: &str) -> Result<String, SecretError> {
        open_with(Some(self), owner, stored)
    }
}

fn mac(key: &[u8; 32], purpose: &str, message: &str) -> [u8; 32] {
    use hmac::{Hmac, Mac};
    let mut derive = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("any key length");
    derive.update(b"wabill tag key: ");
    derive.update(purpose.as_bytes());
    let purpose_key = derive.finalize().into_bytes();
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(&purpose_key).expect("any key length");
    m.update(message.as_bytes());
    m.finalize().into_bytes().into()
}

/// Whether a stored value is sealed (else it is a plain value from before sealing).
pub fn is_sealed(stored: &str) -> bool {
    stored.starts_with(PREFIX)
}

/// The secret a stored value holds: opened when sealed, as it is when stored plain before
/// sealing existed (such values are sealed at the next start with a key, [`crate::alerts::seal_stored_secrets`]).
pub fn open_with(
    keys: Option<&SecretKeys>,
    owner: &str,
    stored: &str,
) -> Result<String, SecretError> {
    let Some(rest) = stored.strip_prefix(PREFIX) else {
        return Ok(stored.to_string());
    };
    let keys = keys.ok_or(SecretError::NoKey)?;
    let (id, body) = rest.split_once('.').ok_or(SecretError::Damaged)?;
    let (key, _) = keys
        .keys
        .iter()
        .find(|(_, k)| k == id)
        .ok_or_else(|| SecretError::UnknownKey(id.to_string()))?;
    let bytes = hex::decode(body).map_err(|_| SecretError::Damaged)?;
    if bytes.len() < NONCE_BYTES {
        return Err(SecretError::Damaged);
    }
    let (nonce, sealed) = bytes.split_at(NONCE_BYTES);
    let plain = XChaCha20Poly1305::new(key.into())
        .decrypt(
            XNonce::from_slice(nonce),
            Payload {
                msg: sealed,
                aad: owner.as_bytes(),
            },
        )
        .map_err(|_| SecretError::Damaged)?;
    String::from_utf8(plain).map_err(|_| SecretError::Damaged)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(b: u8) -> SecretKeys {
        SecretKeys::new(vec![[b; 32]])
    }

    #[test]
    fn a_tag_holds_for_its_purpose_message_and_keys_only() {
        let k = keys(1);
        let t = k.tag("link", "acme\n2026-11\n1800000000");
        assert!(k.verify_tag("link", "acme\n2026-11\n1800000000", &t));
        assert!(!k.verify_tag("link", "acme\n2026-12\n1800000000", &t));
        assert!(!k.verify_tag("other", "acme\n2026-11\n1800000000", &t));
        assert!(!keys(2).verify_tag("link", "acme\n2026-11\n1800000000", &t));
        // After a rotation (a new first key), the old key's tags hold while it is configured.
        let rotated = SecretKeys::new(vec![[2; 32], [1; 32]]);
        assert!(rotated.verify_tag("link", "acme\n2026-11\n1800000000", &t));
        let mut bad = t.clone();
        bad.pop();
        bad.push(if t.ends_with('0') { '1' } else { '0' });
        assert!(!k.verify_tag("link", "acme\n2026-11\n1800000000", &bad));
        assert!(!k.verify_tag("link", "acme\n2026-11\n1800000000", "garbage"));
    }

    #[test]
    fn a_sealed_secret_opens_for_its_owner_under_its_key_only() {
        let k = keys(1);
        let sealed = k.seal("acme", "s3cret");
        assert!(is_sealed(&sealed));
        assert!(!sealed.contains("s3cret"));
        assert_ne!(sealed, k.seal("acme", "s3cret"), "a fresh nonce each time");
        assert_eq!(k.open("acme", &sealed).unwrap(), "s3cret");
        assert_eq!(k.open("globex", &sealed), Err(SecretError::Damaged));
        assert!(matches!(
            keys(2).open("acme", &sealed),
            Err(SecretError::UnknownKey(_))
        ));
        assert_eq!(open_with(None, "acme", &sealed), Err(SecretError::NoKey));
        let mut bad = sealed.clone();
        bad.pop();
        bad.push(if sealed.ends_with('0') { '1' } else { '0' });
        assert_eq!(k.open("acme", &bad), Err(SecretError::Damaged));
        // A plain value from before sealing reads as it is.
        assert_eq!(open_with(None, "acme", "plain").unwrap(), "plain");
    }

    #[test]
    fn during_a_rotation_the_first_key_seals_and_every_key_opens() {
        let old = keys(1);
        let sealed_old = old.seal("acme", "a");
        let both = SecretKeys::new(vec![[2; 32], [1; 32]]);
        assert_eq!(both.open("acme", &sealed_old).unwrap(), "a");
        let sealed_new = both.seal("acme", "b");
        assert_eq!(keys(2).open("acme", &sealed_new).unwrap(), "b");
        assert!(old.open("acme", &sealed_new).is_err());
    }

    #[test]
    fn keys_are_64_hex_digits_and_never_printed() {
        let k = SecretKeys::parse(&format!("{}, {}", "ab".repeat(32), "01".repeat(32))).unwrap();
        assert!(!format!("{k:?}").contains(&"ab".repeat(32)));
        for bad in ["", "abc", &"zz".repeat(32), &"ab".repeat(31)] {
            assert!(SecretKeys::parse(bad).is_err(), "{bad}");
        }
    }
}
