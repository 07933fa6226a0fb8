//! Meta's webhook handshake and payload signature (`X-Hub-Signature-256`).
//!
//! Meta signs the raw request body with HMAC-SHA256 keyed by the app secret and sends
//! `sha256=<lowercase hex>`. The body must be verified as received, before any parsing: Meta
//! computes the signature over its escaped-unicode serialisation, which re-encoding would
//! change. Two secrets may be configured while one is being rotated.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::collections::HashMap;
use wabill_formats::MetaPricing;
use wabill_store::MetaPricingRow;

/// Why a webhook post was refused (answered with 401).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("missing X-Hub-Signature-256 header")]
    Missing,
    #[error("X-Hub-Signature-256 is not 'sha256=' followed by 64 hex digits")]
    Malformed,
    #[error("X-Hub-Signature-256 does not match the body under any configured app secret")]
    Mismatch,
}

/// Checks `header` against HMAC-SHA256(`body`) under each secret, in constant time per secret.
pub fn verify_signature(
    secrets: &[Vec<u8>],
    body: &[u8],
    header: Option<&str>,
) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let hex_sig = header
        .trim()
        .strip_prefix("sha256=")
        .ok_or(SignatureError::Malformed)?;
    let expected = hex::decode(hex_sig).map_err(|_| SignatureError::Malformed)?;
    if expected.len() != 32 {
        return Err(SignatureError::Malformed);
    }
    // Every secret is tried, whatever the outcome of the first, so that timing does not say
    // which one matched.
    let mut ok = false;
    for secret in secrets {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
        mac.update(body);
        ok |= mac.verify_slice(&expected).is_ok();
    }
    if ok {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// The signature header value Meta would send for `body` under `secret` (for tests and tools).
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Meta's verification handshake: `hub.mode=subscribe`, `hub.verify_token`, `hub.challenge`.
/// Returns the challenge to echo when the token matches (compared in constant time).
pub fn verify_subscription<'a>(
    mode: Option<&str>,
    token: Option<&str>,
    challenge: Option<&'a str>,
    expected_token: &str,
) -> Option<&'a str> {
    use subtle::ConstantTimeEq;
    let token_ok: bool = token
        .map(|t| t.as_bytes().ct_eq(expected_token.as_bytes()).into())
        .unwrap_or(false);
    (mode == Some("subscribe") && token_ok && !expected_token.is_empty()).then_some(challenge?)
}

/// The rows to store for the pricing objects one input line carried. The WABA of each comes
/// from the envelope's `entry[].id` that holds the status (MetaPricing does not carry it), so
/// that reconciliation can scope Meta's side by tenant even for messages wabill never saw.
pub fn meta_rows(line: &str, pricing: &[MetaPricing<'_>]) -> Vec<MetaPricingRow> {
    if pricing.is_empty() {
        return Vec::new();
    }
    #[derive(serde::Deserialize)]
    struct Envelope {
        #[serde(default)]
        entry: Vec<Entry>,
    }
    #[derive(serde::Deserialize)]
    struct Entry {
        id: Option<String>,
        #[serde(default)]
        changes: Vec<Change>,
    }
    #[derive(serde::Deserialize)]
    struct Change {
        value: Option<Value>,
    }
    #[derive(serde::Deserialize)]
    struct Value {
        #[serde(default)]
        statuses: Vec<St>,
    }
    #[derive(serde::Deserialize)]
    struct St {
        id: Option<String>,
        status: Option<String>,
    }
    let mut waba_of: HashMap<(String, String), String> = HashMap::new();
    if let Ok(env) = serde_json::from_str::<Envelope>(line) {
        for e in env.entry {
            let Some(waba) = e.id else { continue };
            for st in e
                .changes
                .into_iter()
                .filter_map(|c| c.value)
                .flat_map(|v| v.statuses)
            {
                if let (Some(id), Some(status)) = (st.id, st.status) {
                    waba_of.insert((id, status), waba.clone());
                }
            }
        }
    }
    pricing
        .iter()
        .map(|p| MetaPricingRow {
            id: p.id.to_string(),
            status: p.status.as_str().to_string(),
            at_ms: p.at,
            waba: waba_of
                .get(&(p.id.to_string(), p.status.as_str().to_string()))
                .cloned(),
            billable: p.billable,
            pricing_model: p.pricing_model.as_deref().map(str::to_string),
            category: p.category.as_deref().map(str::to_string),
            pricing_type: p.pricing_type.as_deref().map(str::to_string),
            conversation_id: p.conversation_id.as_deref().map(str::to_string),
            expires_at_ms: p.expires_at,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &[u8] = include_bytes!("../../server/tests/fixtures/webhook_inbound.json");
    /// Computed independently (Python's hmac module) over the fixture's bytes.
    const SIGNATURE: &str =
        "sha256=85a9c073a78e0d4f6a57983b8db70b66b3253e9ae957f40de44c65b8a244cfe8";

    #[test]
    fn accepts_meta_signatures_under_either_secret() {
        let secrets = vec![b"old-secret".to_vec(), b"app-secret-1".to_vec()];
        assert_eq!(verify_signature(&secrets, BODY, Some(SIGNATURE)), Ok(()));
        assert_eq!(sign(b"app-secret-1", BODY), SIGNATURE);
    }

    #[test]
    fn refuses_what_meta_did_not_sign() {
        let secrets = vec![b"app-secret-1".to_vec()];
        let mut tampered = BODY.to_vec();
        tampered[10] ^= 1;
        assert_eq!(
            verify_signature(&secrets, &tampered, Some(SIGNATURE)),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_signature(&[b"other".to_vec()], BODY, Some(SIGNATURE)),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_signature(&secrets, BODY, None),
            Err(SignatureError::Missing)
        );
        assert_eq!(
            verify_signature(&secrets, BODY, Some("sha1=abc")),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            verify_signature(&secrets, BODY, Some("sha256=zz")),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            verify_signature(&[], BODY, Some(SIGNATURE)),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn handshake_echoes_the_challenge_only_for_the_right_token() {
        assert_eq!(
            verify_subscription(Some("subscribe"), Some("tok"), Some("1158201444"), "tok"),
            Some("1158201444")
        );
        assert_eq!(
            verify_subscription(Some("subscribe"), Some("bad"), Some("1"), "tok"),
            None
        );
        assert_eq!(
            verify_subscription(Some("unsubscribe"), Some("tok"), Some("1"), "tok"),
            None
        );
        assert_eq!(
            verify_subscription(Some("subscribe"), None, Some("1"), "tok"),
            None
        );
        assert_eq!(
            verify_subscription(Some("subscribe"), Some(""), Some("1"), ""),
            None
        );
    }
}
