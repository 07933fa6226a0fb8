//! Budget alerts delivered (decisions.md D42). Per tenant: thresholds (a
//! percentage of the month's included budget, or an absolute spend in the tenant's currency),
//! a webhook URL and a signing secret. After re-rating, or on a timer, each tenant's month is
//! evaluated: its spend is read from the draft invoice (the billing core), `alerts_due` says
//! which thresholds are newly reached, and those are recorded in the store first, one row per
//! (tenant, month, threshold), so that each is emitted once even across restarts. Pending
//! alerts are then POSTed, signed like Meta signs its webhooks
//! (`X-Wabill-Signature-256: sha256=<hex HMAC-SHA256 of the body>`), and retried with
//! exponential backoff until a 2xx answer or the last attempt.
//!
//! The POST itself goes through the [`AlertPoster`] port: the HTTP crate's client (reqwest over
//! rustls, certificates checked against the bundled webpki roots) for `http://` and `https://`
//! URLs, with the configured timeout per attempt.

use crate::destinations::AllowedNetworks;
use crate::secrets::{is_sealed, open_with, SecretKeys};
use crate::tenants::{self, TenantError};
use serde_json::json;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use wabill_billing::{alerts_due, AlertState, Invoice, LineKind, Threshold};
use wabill_formats::time::format_instant;
use wabill_rating::time::local_date;
use wabill_rating::Decimal;
use wabill_store::{AlertAttempt, AlertSettingsRow, NewAlert, Store, StoreError};

/// How alerts are evaluated and delivered.
#[derive(Clone, Debug)]
pub struct AlertConfig {
    /// Wait after the first failed attempt; doubled after each further one.
    pub backoff_base: Duration,
    /// The longest wait between two attempts.
    pub backoff_max: Duration,
    /// Attempts before an alert is given up (`failed`).
    pub max_attempts: u32,
    /// Connecting, sending and reading the answer of one attempt.
    pub timeout: Duration,
    /// How often due deliveries are looked for.
    pub tick: Duration,
    /// How often tenants are evaluated when nothing was re-rated.
    pub evaluate_every: Duration,
    /// The keys signing secrets are sealed under at rest (`None`: no key configured; a new
    /// secret is then refused, decisions.md D86).
    pub secrets: Option<SecretKeys>,
    /// The networks beyond the public internet alerts may be sent to (decisions.md D87).
    pub networks: AllowedNetworks,
}

impl Default for AlertConfig {
    fn default() -> Self {
        AlertConfig {
            backoff_base: Duration::from_secs(1),
            backoff_max: Duration::from_secs(600),
            max_attempts: 12,
            timeout: Duration::from_secs(10),
            tick: Duration::from_secs(1),
            evaluate_every: Duration::from_secs(60),
            secrets: None,
            networks: AllowedNetworks::default(),
        }
    }
}

impl AlertConfig {
    /// When to try again after the `attempts`-th failed attempt, or `None` to give up.
    pub fn next_attempt(&self, attempts: u32, now_ms: i64) -> Option<i64> {
        if attempts >= self.max_attempts {
            return None;
        }
        let factor = 1u32 << attempts.saturating_sub(1).min(20);
        let wait = self
            .backoff_base
            .saturating_mul(factor)
            .min(self.backoff_max);
        Some(now_ms + wait.as_millis() as i64)
    }
}

/// Alert settings as given (`PUT /v1/tenants/{id}/alerts/settings`, JSON).
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct SettingsBody {
    url: String,
    /// Omitted: the stored secret is kept.
    #[serde(default)]
    secret: Option<String>,
    thresholds: Vec<Threshold>,
}

/// A webhook URL, split and checked: `http` or `https`, a host, no credentials.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpUrl {
    /// `true` for `https://`.
    pub tls: bool,
    pub host: String,
    pub port: u16,
    /// Path and query, starting with `/`.
    pub path: String,
}

impl HttpUrl {
    /// The URL as sent (scheme in lower case, port always written).
    pub fn to_url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        if self.host.contains(':') {
            format!("{scheme}://[{}]:{}{}", self.host, self.port, self.path)
        } else {
            format!("{scheme}://{}:{}{}", self.host, self.port, self.path)
        }
    }
}

/// Reads an `http://host[:port][/path]` or `https://host[:port][/path]` URL.
pub fn parse_http_url(url: &str) -> Result<HttpUrl, String> {
    let (tls, rest) = match (url.get(..7), url.get(..8)) {
        (_, Some(p)) if p.eq_ignore_ascii_case("https://") => (true, &url[8..]),
        (Some(p), _) if p.eq_ignore_ascii_case("http://") => (false, &url[7..]),
        _ => return Err(format!("'{url}' is not an http:// or https:// URL")),
    };
    let (authority, path) = match rest.find(['/', '?']) {
        Some(i) if rest.as_bytes()[i] == b'/' => (&rest[..i], rest[i..].to_string()),
        Some(i) => (&rest[..i], format!("/{}", &rest[i..])),
        None => (rest, "/".to_string()),
    };
    if authority.is_empty()
        || authority.contains('@')
        || path.chars().any(|c| c.is_whitespace() || c == '#')
    {
        return Err(format!(
            "'{url}' has no host, credentials, a fragment or a space"
        ));
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let end = v6
            .find(']')
            .ok_or_else(|| format!("'{url}': unclosed '['"))?;
        let port = &v6[end + 1..];
        (v6[..end].to_string(), port.strip_prefix(':').unwrap_or(""))
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), p),
            None => (authority.to_string(), ""),
        }
    };
    let port = if port.is_empty() {
        if tls {
            443
        } else {
            80
        }
    } else {
        port.parse()
            .map_err(|_| format!("'{url}': '{port}' is not a port"))?
    };
    if host.is_empty() {
        return Err(format!("'{url}' has no host"));
    }
    let parsed = HttpUrl {
        tls,
        host,
        port,
        path,
    };
    // What the client will be given must read back as the same URL.
    url::Url::parse(&parsed.to_url()).map_err(|e| format!("'{url}': {e}"))?;
    Ok(parsed)
}

/// A future the [`AlertPoster`] returns.
pub type PostFuture<'a> = Pin<Box<dyn Future<Output = Result<u16, String>> + Send + 'a>>;

/// How a signed alert leaves the service: one POST, answered by a status code or failed with a
/// reason. The engine decides what to send, when, signed with what, and what an answer means;
/// the HTTP crate implements this port over its client (decisions.md D91).
pub trait AlertPoster: Send + Sync {
    /// POSTs `body` (JSON) to `url` with `headers`, within `timeout`.
    fn post<'a>(
        &'a self,
        url: &'a HttpUrl,
        headers: &'a [(&'a str, &'a str)],
        body: &'a [u8],
        timeout: Duration,
    ) -> PostFuture<'a>;
}

/// Records a tenant's alert settings (`body`, JSON: url, thresholds, and the signing secret,
/// which may be omitted to keep the stored one) at `now_ms`, and returns what was stored.
/// Refusals are [`TenantError::Invalid`] naming the field, or the tenant's own errors.
pub async fn put_settings(
    store: &dyn Store,
    config: &AlertConfig,
    tenant: &str,
    body: &[u8],
    now_ms: i64,
) -> Result<AlertSettingsRow, TenantError> {
    let invalid = |why: String| TenantError::Invalid(why);
    let parsed: SettingsBody =
        serde_json::from_slice(body).map_err(|e| invalid(format!("not alert settings: {e}")))?;
    tenants::load(store, tenant).await?;
    let url = parse_http_url(&parsed.url).map_err(|e| invalid(format!("url: {e}")))?;
    if let Some(why) = config.networks.refuse_host(&url.host) {
        return Err(invalid(format!("url: {why}")));
    }
    if parsed.thresholds.is_empty() {
        return Err(invalid("thresholds: at least one is needed".into()));
    }
    if let Some(t) = parsed.thresholds.iter().find(|t| match t {
        Threshold::Percent(d) | Threshold::Spend(d) => !d.is_positive(),
    }) {
        return Err(invalid(format!(
            "thresholds: '{}' is not positive",
            t.key()
        )));
    }
    let plain = match parsed.secret {
        Some(s) if s.is_empty() => return Err(invalid("secret: empty".into())),
        Some(s) => s,
        None => match store.alert_settings(tenant).await? {
            // Kept as stored: sealed, or plain from before sealing existed (sealed below).
            Some(old) => old.secret,
            None => return Err(invalid("secret: needed the first time".into())),
        },
    };
    let secret = if is_sealed(&plain) {
        plain
    } else {
        config
            .secrets
            .as_ref()
            .ok_or(TenantError::NoSecretsKey)?
            .seal(tenant, &plain)
    };
    let mut thresholds = parsed.thresholds;
    thresholds.sort();
    thresholds.dedup();
    let row = AlertSettingsRow {
        tenant: tenant.to_string(),
        thresholds: serde_json::to_string(&thresholds).expect("thresholds serialize"),
        url: parsed.url,
        secret,
        updated_at_ms: now_ms,
    };
    store.put_alert_settings(&row).await?;
    Ok(row)
}

/// Seals every alert secret still stored plain (from before sealing existed) under the first
/// configured key; returns how many were sealed. Run when the service starts with a key.
pub async fn seal_stored_secrets(store: &dyn Store, keys: &SecretKeys) -> Result<u64, StoreError> {
    let mut sealed = 0;
    for row in store.all_alert_settings().await? {
        if is_sealed(&row.secret) {
            continue;
        }
        let secret = keys.seal(&row.tenant, &row.secret);
        store
            .put_alert_settings(&AlertSettingsRow { secret, ..row })
            .await?;
        sealed += 1;
    }
    Ok(sealed)
}

/// The month's spend and included budget, from the tenant's invoice of the month: the budget
/// summary's usage at cost under a budget plan, else the sum of the usage lines, messages and
/// calls (as billed).
pub fn spend_of(inv: &Invoice) -> (Decimal, Option<Decimal>) {
    match &inv.budget {
        Some(b) => (b.used, Some(b.included)),
        None => (
            inv.lines
                .iter()
                .filter(|l| matches!(l.kind, LineKind::Usage | LineKind::CallUsage))
                .fold(Decimal::ZERO, |sum, l| sum + l.amount),
            None,
        ),
    }
}

fn thresholds_of(row: &AlertSettingsRow) -> Result<Vec<Threshold>, StoreError> {
    serde_json::from_str(&row.thresholds).map_err(|e| StoreError::Corrupt {
        table: "alert_settings",
        key: row.tenant.clone(),
        why: e.to_string(),
    })
}

/// Evaluates every tenant with alert settings at `now_ms` (each in its own calendar's month)
/// and records the alerts newly due. Returns how many were recorded. A tenant whose invoice
/// cannot be computed (no plan, a missing FX rate) is skipped and logged.
pub async fn evaluate(store: &dyn Store, now_ms: i64) -> Result<u64, StoreError> {
    let mut recorded = 0;
    for settings in store.all_alert_settings().await? {
        let id = settings.tenant.as_str();
        let thresholds = thresholds_of(&settings)?;
        let setup = match tenants::load(store, id).await {
            Ok((_, s)) => s,
            Err(TenantError::Store(e)) => return Err(e),
            Err(e) => {
                tracing::warn!(tenant = id, error = %e, "budget alerts: no set-up");
                continue;
            }
        };
        let month = local_date(setup.tenant.timezone, now_ms).month();
        let inv = match tenants::month_invoice(store, id, month, None).await {
            Ok(inv) => inv,
            Err(TenantError::Store(e)) => return Err(e),
            Err(e) => {
                tracing::warn!(tenant = id, %month, error = %e, "budget alerts: no invoice");
                continue;
            }
        };
        let (spend, budget) = spend_of(&inv);
        let month_text = month.to_string();
        let stored = store.alerts(id).await?;
        let mut fired: Vec<Threshold> = thresholds
            .iter()
            .copied()
            .filter(|t| {
                stored
                    .iter()
                    .any(|a| a.month == month_text && a.threshold == t.key())
            })
            .collect();
        fired.sort();
        let state = AlertState {
            month: Some(month),
            fired,
        };
        let (due, _) = alerts_due(&thresholds, budget, &state, month, spend);
        if due.is_empty() {
            continue;
        }
        let rows: Vec<NewAlert> = due
            .iter()
            .map(|a| {
                let payload = json!({
                    "tenant": id,
                    "month": month_text,
                    "key": a.key(),
                    "threshold": a.threshold,
                    "spend": a.spend.to_string(),
                    "budget": a.budget.map(|b| b.to_string()),
                    "currency": setup.tenant.currency.as_str(),
                    "at": format_instant(now_ms),
                });
                NewAlert {
                    tenant: id.to_string(),
                    month: month_text.clone(),
                    threshold: a.threshold.key(),
                    payload: payload.to_string(),
                    created_at_ms: now_ms,
                }
            })
            .collect();
        recorded += store.record_alerts(&rows).await?;
    }
    Ok(recorded)
}

/// Sends the alerts due at `now_ms`, once each; returns how many were delivered now.
pub async fn deliver(
    store: &dyn Store,
    config: &AlertConfig,
    poster: &dyn AlertPoster,
    now_ms: i64,
) -> Result<u64, StoreError> {
    let mut delivered = 0;
    let mut settings: HashMap<String, Option<AlertSettingsRow>> = HashMap::new();
    for alert in store.alerts_due(now_ms, 100).await? {
        if !settings.contains_key(&alert.tenant) {
            let s = store.alert_settings(&alert.tenant).await?;
            settings.insert(alert.tenant.clone(), s);
        }
        let Some(s) = &settings[&alert.tenant] else {
            continue;
        };
        let target = parse_http_url(&s.url).and_then(|url| {
            // The policy may have changed since the URL was set: checked at every attempt.
            match config.networks.refuse_host(&url.host) {
                Some(why) => Err(why),
                None => Ok(url),
            }
        });
        let secret = open_with(config.secrets.as_ref(), &alert.tenant, &s.secret);
        let outcome = match (target, secret) {
            (Err(e), _) => Err(e),
            (_, Err(e)) => Err(e.to_string()),
            (Ok(url), Ok(secret)) => {
                let signature = crate::meta::sign(secret.as_bytes(), alert.payload.as_bytes());
                let key = format!("{}/{}", alert.month, alert.threshold);
                let headers = [
                    ("X-Wabill-Signature-256", signature.as_str()),
                    ("X-Wabill-Alert", key.as_str()),
                ];
                poster
                    .post(&url, &headers, alert.payload.as_bytes(), config.timeout)
                    .await
            }
        };
        let ok = matches!(outcome, Ok(200..=299));
        let error = match outcome {
            Ok(200..=299) => None,
            Ok(code) => Some(format!("HTTP {code}")),
            Err(e) => Some(e),
        };
        let attempts = alert.attempts + 1;
        if let Some(e) = &error {
            tracing::warn!(tenant = %alert.tenant, month = %alert.month,
                threshold = %alert.threshold, attempts, error = %e, "budget alert not delivered");
        }
        store
            .record_alert_attempt(&AlertAttempt {
                tenant: alert.tenant.clone(),
                month: alert.month.clone(),
                threshold: alert.threshold.clone(),
                at_ms: now_ms,
                delivered: ok,
                error,
                next_attempt_at_ms: config.next_attempt(attempts, now_ms),
            })
            .await?;
        delivered += u64::from(ok);
    }
    Ok(delivered)
}

/// One round: evaluate every tenant, then deliver what is due.
pub async fn run_once(
    store: &dyn Store,
    config: &AlertConfig,
    poster: &dyn AlertPoster,
    now_ms: i64,
) -> Result<u64, StoreError> {
    evaluate(store, now_ms).await?;
    deliver(store, config, poster, now_ms).await
}

/// The service's alert worker: evaluates after each re-rating pass that changed something (and
/// every `evaluate_every` otherwise), and delivers what is due every `tick`.
pub async fn alert_loop(
    engine: Arc<crate::Engine>,
    config: AlertConfig,
    poster: Arc<dyn AlertPoster>,
) {
    let mut last_evaluation: Option<std::time::Instant> = None;
    loop {
        let rerated = tokio::time::timeout(config.tick, engine.rerated())
            .await
            .is_ok();
        let store = &**engine.store();
        let stale = match last_evaluation {
            None => true,
            Some(t) => t.elapsed() >= config.evaluate_every,
        };
        if rerated || stale {
            last_evaluation = Some(std::time::Instant::now());
            if let Err(e) = evaluate(store, engine.clock.now_ms()).await {
                tracing::error!(error = %e, "budget alerts: evaluation failed; retrying");
            }
        }
        if let Err(e) = deliver(store, &config, &*poster, engine.clock.now_ms()).await {
            tracing::error!(error = %e, "budget alerts: delivery failed; retrying");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap_then_gives_up() {
        let c = AlertConfig {
            backoff_base: Duration::from_secs(1),
            backoff_max: Duration::from_secs(5),
            max_attempts: 5,
            ..AlertConfig::default()
        };
        let waits: Vec<Option<i64>> = (1..=5).map(|n| c.next_attempt(n, 0)).collect();
        assert_eq!(
            waits,
            [Some(1000), Some(2000), Some(4000), Some(5000), None]
        );
    }

    #[test]
    fn http_and_https_urls() {
        assert_eq!(
            parse_http_url("http://127.0.0.1:8080/hooks/a?x=1").unwrap(),
            HttpUrl {
                tls: false,
                host: "127.0.0.1".into(),
                port: 8080,
                path: "/hooks/a?x=1".into()
            }
        );
        assert_eq!(
            parse_http_url("HTTP://example.com").unwrap(),
            HttpUrl {
                tls: false,
                host: "example.com".into(),
                port: 80,
                path: "/".into()
            }
        );
        assert_eq!(parse_http_url("http://[::1]:9/h").unwrap().host, "::1");
        let https = parse_http_url("HTTPS://hooks.example.com/w?a=1").unwrap();
        assert_eq!(
            https,
            HttpUrl {
                tls: true,
                host: "hooks.example.com".into(),
                port: 443,
                path: "/w?a=1".into()
            }
        );
        assert_eq!(https.to_url(), "https://hooks.example.com:443/w?a=1");
        assert_eq!(
            parse_http_url("https://[::1]:8443").unwrap().to_url(),
            "https://[::1]:8443/"
        );
        for bad in [
            "ftp://x",
            "https://",
            "https://u:p@h/",
            "https://h/#frag",
            "ws://h/",
            "http://",
            "http://u:p@h/",
            "http://h:99999/",
            "x",
        ] {
            assert!(parse_http_url(bad).is_err(), "{bad}");
        }
    }
}
