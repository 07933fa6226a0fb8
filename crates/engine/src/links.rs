//! Signed links to an invoice (decisions.md D97): a finance team opens the printable invoice
//! from a link in an e-mail, without an API key. A key that may read the tenant asks for a link;
//! the link names the tenant, the month and an expiry, and carries a tag over the three under
//! the secrets key ([`SecretKeys::tag`]), so that it cannot be altered to another tenant,
//! month or expiry, nor made without the key.

use crate::secrets::SecretKeys;
use wabill_rating::Month;

/// What the tag of an invoice link is made for (a key of its own, see [`SecretKeys::tag`]).
const PURPOSE: &str = "invoice link v1";

/// The longest a link may live: 90 days.
pub const MAX_TTL_S: i64 = 90 * 86_400;
/// How long a link lives when the asker says nothing: 30 days.
pub const DEFAULT_TTL_S: i64 = 30 * 86_400;

fn message(tenant: &str, month: Month, expires_s: i64) -> String {
    format!("{tenant}\n{month}\n{expires_s}")
}

/// The path and query of the link to `tenant`'s invoice of `month`, valid until `expires_s`
/// (Unix seconds).
pub fn invoice_path(keys: &SecretKeys, tenant: &str, month: Month, expires_s: i64) -> String {
    let sig = keys.tag(PURPOSE, &message(tenant, month, expires_s));
    format!("/invoices/{tenant}/{month}?expires={expires_s}&sig={sig}")
}

/// Why a link does not open.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkError {
    /// Altered, made under a key no longer configured, or never made by this service.
    Invalid,
    /// Past its expiry.
    Expired,
}

/// Whether a link's parts open the invoice at `now_ms`.
pub fn check(
    keys: &SecretKeys,
    tenant: &str,
    month: Month,
    expires_s: i64,
    sig: &str,
    now_ms: i64,
) -> Result<(), LinkError> {
    if !keys.verify_tag(PURPOSE, &message(tenant, month, expires_s), sig) {
        return Err(LinkError::Invalid);
    }
    if now_ms >= expires_s.saturating_mul(1000) {
        return Err(LinkError::Expired);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(path: &str) -> (i64, String) {
        let q = path.split_once('?').unwrap().1;
        let (e, s) = q.split_once('&').unwrap();
        (
            e.strip_prefix("expires=").unwrap().parse().unwrap(),
            s.strip_prefix("sig=").unwrap().to_string(),
        )
    }

    #[test]
    fn a_link_opens_its_invoice_until_it_expires_and_nothing_else() {
        let keys = SecretKeys::new(vec![[7; 32]]);
        let m = Month::parse("2026-11").unwrap();
        let path = invoice_path(&keys, "acme", m, 1_800_000_000);
        assert!(path.starts_with("/invoices/acme/2026-11?expires=1800000000&sig="));
        let (e, sig) = parts(&path);
        assert_eq!(check(&keys, "acme", m, e, &sig, 1_799_999_999_999), Ok(()));
        assert_eq!(
            check(&keys, "acme", m, e, &sig, 1_800_000_000_000),
            Err(LinkError::Expired)
        );
        let other = Month::parse("2026-10").unwrap();
        assert_eq!(
            check(&keys, "acme", other, e, &sig, 0),
            Err(LinkError::Invalid)
        );
        assert_eq!(
            check(&keys, "globex", m, e, &sig, 0),
            Err(LinkError::Invalid)
        );
        assert_eq!(
            check(&keys, "acme", m, e + 1, &sig, 0),
            Err(LinkError::Invalid)
        );
        let stranger = SecretKeys::new(vec![[8; 32]]);
        assert_eq!(
            check(&stranger, "acme", m, e, &sig, 0),
            Err(LinkError::Invalid)
        );
    }
}
