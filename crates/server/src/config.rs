//! The service's settings and where they come from: flags, else `WABILL_*` environment
//! variables (both read by the command line), else a configuration file (`--config FILE`), else
//! defaults. The file is JSON whose keys are the flags' names (`db`, `listen`, `app-secret`,
//! `verify-token`, `rates`, `max-body-bytes`, `rerate-memory-mb`, `header-timeout-secs`,
//! `idle-timeout-secs`, `request-timeout-secs`, `max-connections`, `rate-limit-per-sec`,
//! `rate-limit-burst`, `secrets-key`, `alert-allow-networks`, `calculator`; `_` may replace `-`); an unknown key is an error,
//! so that a typo never silently falls back to a default.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Default database: a SQLite file in the working directory.
pub const DEFAULT_DB: &str = "wabill.sqlite";
/// Default listen address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

/// Settings from one source; `None` where that source says nothing. Its `Debug` shows no
/// secret (the app secret, the verify token, the secrets key, a database password).
#[derive(Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Settings {
    pub db: Option<String>,
    pub listen: Option<String>,
    #[serde(alias = "app_secret")]
    pub app_secret: Option<String>,
    #[serde(alias = "verify_token")]
    pub verify_token: Option<String>,
    pub rates: Option<String>,
    #[serde(alias = "max_body_bytes")]
    pub max_body_bytes: Option<usize>,
    #[serde(alias = "rerate_memory_mb")]
    pub rerate_memory_mb: Option<usize>,
    #[serde(alias = "header_timeout_secs")]
    pub header_timeout_secs: Option<u64>,
    #[serde(alias = "idle_timeout_secs")]
    pub idle_timeout_secs: Option<u64>,
    #[serde(alias = "request_timeout_secs")]
    pub request_timeout_secs: Option<u64>,
    #[serde(alias = "max_connections")]
    pub max_connections: Option<usize>,
    /// Requests per second per API key; 0: no limit.
    #[serde(alias = "rate_limit_per_sec")]
    pub rate_limit_per_sec: Option<u32>,
    #[serde(alias = "rate_limit_burst")]
    pub rate_limit_burst: Option<u32>,
    /// Keys alert secrets are sealed under (64 hex digits each, comma-separated).
    #[serde(alias = "secrets_key")]
    pub secrets_key: Option<String>,
    /// Networks beyond the public internet alerts may be sent to (CIDRs, comma-separated).
    #[serde(alias = "alert_allow_networks")]
    pub alert_allow_networks: Option<String>,
    /// The public calculator (`POST /v1/estimate`, the console's calculator page); on by default.
    pub calculator: Option<bool>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading the configuration file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("configuration file {path}: {why}")]
    Syntax { path: String, why: String },
    #[error("{key}: {why}")]
    Value { key: &'static str, why: String },
}

/// Settings with every value decided. Its `Debug` shows no secret, as [`Settings`]'.
#[derive(Clone, PartialEq, Eq)]
pub struct Resolved {
    pub db: String,
    pub listen: SocketAddr,
    /// Comma-separated in the source: two during a rotation.
    pub app_secrets: Vec<Vec<u8>>,
    pub verify_token: String,
    pub rates: Option<PathBuf>,
    pub max_body_bytes: usize,
    /// What re-rating may keep of the months it rated (see [`wabill_engine::months`]), in bytes.
    pub rerate_memory_bytes: usize,
    pub limits: crate::limits::Limits,
    /// `None`: no rate limit.
    pub rate_limit: Option<(u32, u32)>,
    /// `None`: no key, and alert settings with a secret are refused (decisions.md D86).
    pub secrets: Option<wabill_engine::secrets::SecretKeys>,
    /// Where alerts may go beyond public addresses (decisions.md D87).
    pub alert_networks: wabill_engine::destinations::AllowedNetworks,
    /// The public calculator is on (decisions.md D170).
    pub calculator: bool,
}

/// How a secret is shown: whether it is set, never what it is.
fn shown(set: bool) -> &'static str {
    if set {
        "<set>"
    } else {
        "<none>"
    }
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("db", &self.db.as_deref().map(wabill_store::redact_url))
            .field("listen", &self.listen)
            .field("app_secret", &shown(self.app_secret.is_some()))
            .field("verify_token", &shown(self.verify_token.is_some()))
            .field("rates", &self.rates)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("rerate_memory_mb", &self.rerate_memory_mb)
            .field("header_timeout_secs", &self.header_timeout_secs)
            .field("idle_timeout_secs", &self.idle_timeout_secs)
            .field("request_timeout_secs", &self.request_timeout_secs)
            .field("max_connections", &self.max_connections)
            .field("rate_limit_per_sec", &self.rate_limit_per_sec)
            .field("rate_limit_burst", &self.rate_limit_burst)
            .field("secrets_key", &shown(self.secrets_key.is_some()))
            .field("alert_allow_networks", &self.alert_allow_networks)
            .field("calculator", &self.calculator)
            .finish()
    }
}

impl std::fmt::Debug for Resolved {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resolved")
            .field("db", &wabill_store::redact_url(&self.db))
            .field("listen", &self.listen)
            .field("app_secrets", &format!("<{} set>", self.app_secrets.len()))
            .field("verify_token", &shown(!self.verify_token.is_empty()))
            .field("rates", &self.rates)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("rerate_memory_bytes", &self.rerate_memory_bytes)
            .field("limits", &self.limits)
            .field("rate_limit", &self.rate_limit)
            // SecretKeys' own Debug shows key ids only.
            .field("secrets", &self.secrets)
            .field("alert_networks", &self.alert_networks)
            .field("calculator", &self.calculator)
            .finish()
    }
}

impl Settings {
    /// Reads a configuration file.
    pub fn from_file(path: &Path) -> Result<Settings, ConfigError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: shown.clone(),
            source,
        })?;
        Settings::from_json(&shown, &text)
    }

    /// Reads a configuration file's text; `path` names it in errors.
    pub fn from_json(path: &str, text: &str) -> Result<Settings, ConfigError> {
        serde_json::from_str(text).map_err(|e| ConfigError::Syntax {
            path: path.to_string(),
            why: e.to_string(),
        })
    }

    /// These settings, with `lower`'s where these say nothing.
    pub fn over(self, lower: Settings) -> Settings {
        Settings {
            db: self.db.or(lower.db),
            listen: self.listen.or(lower.listen),
            app_secret: self.app_secret.or(lower.app_secret),
            verify_token: self.verify_token.or(lower.verify_token),
            rates: self.rates.or(lower.rates),
            max_body_bytes: self.max_body_bytes.or(lower.max_body_bytes),
            rerate_memory_mb: self.rerate_memory_mb.or(lower.rerate_memory_mb),
            header_timeout_secs: self.header_timeout_secs.or(lower.header_timeout_secs),
            idle_timeout_secs: self.idle_timeout_secs.or(lower.idle_timeout_secs),
            request_timeout_secs: self.request_timeout_secs.or(lower.request_timeout_secs),
            max_connections: self.max_connections.or(lower.max_connections),
            rate_limit_per_sec: self.rate_limit_per_sec.or(lower.rate_limit_per_sec),
            rate_limit_burst: self.rate_limit_burst.or(lower.rate_limit_burst),
            secrets_key: self.secrets_key.or(lower.secrets_key),
            alert_allow_networks: self.alert_allow_networks.or(lower.alert_allow_networks),
            calculator: self.calculator.or(lower.calculator),
        }
    }

    /// The values, with defaults where no source gave one.
    pub fn resolve(self) -> Result<Resolved, ConfigError> {
        let listen = self.listen.as_deref().unwrap_or(DEFAULT_LISTEN);
        let listen = listen.parse().map_err(|e| ConfigError::Value {
            key: "listen",
            why: format!("'{listen}' is not an address like 127.0.0.1:8080: {e}"),
        })?;
        let max_body_bytes = self.max_body_bytes.unwrap_or(crate::api::MAX_BODY_BYTES);
        if max_body_bytes == 0 {
            return Err(ConfigError::Value {
                key: "max-body-bytes",
                why: "must be at least 1".into(),
            });
        }
        let at_least_one = |key: &'static str, v: Option<u64>, default: std::time::Duration| match v
        {
            Some(0) => Err(ConfigError::Value {
                key,
                why: "must be at least 1 (seconds)".into(),
            }),
            Some(s) => Ok(std::time::Duration::from_secs(s)),
            None => Ok(default),
        };
        let limits = crate::limits::Limits {
            header_timeout: at_least_one(
                "header-timeout-secs",
                self.header_timeout_secs,
                crate::limits::DEFAULT_HEADER_TIMEOUT,
            )?,
            idle_timeout: at_least_one(
                "idle-timeout-secs",
                self.idle_timeout_secs,
                crate::limits::DEFAULT_IDLE_TIMEOUT,
            )?,
            request_timeout: at_least_one(
                "request-timeout-secs",
                self.request_timeout_secs,
                crate::limits::DEFAULT_REQUEST_TIMEOUT,
            )?,
            max_connections: match self.max_connections {
                Some(0) => {
                    return Err(ConfigError::Value {
                        key: "max-connections",
                        why: "must be at least 1".into(),
                    })
                }
                Some(n) => n,
                None => crate::limits::DEFAULT_MAX_CONNECTIONS,
            },
        };
        let rate_limit = match (self.rate_limit_per_sec, self.rate_limit_burst) {
            (None | Some(0), Some(_)) => {
                return Err(ConfigError::Value {
                    key: "rate-limit-burst",
                    why: "needs rate-limit-per-sec".into(),
                })
            }
            (None | Some(0), None) => None,
            (Some(_), Some(0)) => {
                return Err(ConfigError::Value {
                    key: "rate-limit-burst",
                    why: "must be at least 1".into(),
                })
            }
            // A second's worth at once by default.
            (Some(r), burst) => Some((r, burst.unwrap_or(r))),
        };
        let secrets =
            match self.secrets_key.as_deref().map(str::trim) {
                None | Some("") => None,
                Some(text) => Some(wabill_engine::secrets::SecretKeys::parse(text).map_err(
                    |why| ConfigError::Value {
                        key: "secrets-key",
                        why,
                    },
                )?),
            };
        let alert_networks = wabill_engine::destinations::AllowedNetworks::parse(
            self.alert_allow_networks.as_deref().unwrap_or(""),
        )
        .map_err(|why| ConfigError::Value {
            key: "alert-allow-networks",
            why,
        })?;
        Ok(Resolved {
            calculator: self.calculator.unwrap_or(true),
            limits,
            rate_limit,
            secrets,
            alert_networks,
            db: self.db.unwrap_or_else(|| DEFAULT_DB.to_string()),
            listen,
            app_secrets: self
                .app_secret
                .as_deref()
                .unwrap_or("")
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| s.as_bytes().to_vec())
                .collect(),
            verify_token: self.verify_token.unwrap_or_default(),
            rates: self.rates.map(PathBuf::from),
            max_body_bytes,
            rerate_memory_bytes: self
                .rerate_memory_mb
                .map_or(wabill_engine::months::DEFAULT_BUDGET_BYTES, |mb| mb << 20),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_shows_no_secret() {
        let key = "ab".repeat(32);
        let s = Settings {
            db: Some("postgres://wabill:hunter2@db.example/wabill".into()),
            app_secret: Some("app-secret-xyz, app-secret-old".into()),
            verify_token: Some("verify-tok-123".into()),
            secrets_key: Some(key.clone()),
            ..Settings::default()
        };
        let resolved = s.clone().resolve().unwrap();
        for shown in [
            format!("{s:?}"),
            format!("{resolved:?}"),
            format!("{resolved:#?}"),
        ] {
            for secret in [
                "hunter2",
                "app-secret-xyz",
                "app-secret-old",
                "verify-tok-123",
                &key,
            ] {
                assert!(!shown.contains(secret), "{secret} in {shown}");
            }
            assert!(shown.contains("db.example"), "{shown}");
        }
    }

    #[test]
    fn flags_and_environment_win_over_the_file_which_wins_over_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wabill.json");
        std::fs::write(
            &path,
            r#"{"db":"file.sqlite","listen":"127.0.0.1:9000","app-secret":"a, b","verify_token":"tok"}"#,
        )
        .unwrap();
        let file = Settings::from_file(&path).unwrap();
        let command_line = Settings {
            listen: Some("127.0.0.1:9100".into()),
            ..Settings::default()
        };
        let r = command_line.over(file).resolve().unwrap();
        assert_eq!(r.db, "file.sqlite");
        assert_eq!(r.listen.to_string(), "127.0.0.1:9100");
        assert_eq!(r.app_secrets, vec![b"a".to_vec(), b"b".to_vec()]);
        assert_eq!(r.verify_token, "tok");
        assert_eq!(r.max_body_bytes, crate::api::MAX_BODY_BYTES);
        assert_eq!(
            r.rerate_memory_bytes,
            wabill_engine::months::DEFAULT_BUDGET_BYTES
        );
        assert_eq!(r.limits, crate::limits::Limits::default());
        assert_eq!(r.rate_limit, None);
        let defaults = Settings::default().resolve().unwrap();
        assert_eq!(
            (defaults.db.as_str(), defaults.listen.to_string().as_str()),
            (DEFAULT_DB, DEFAULT_LISTEN)
        );
        assert!(defaults.app_secrets.is_empty());
        assert!(defaults.calculator, "the calculator is on by default");
        let off = Settings::from_json("f", r#"{"calculator":false}"#).unwrap();
        assert!(!off.clone().resolve().unwrap().calculator);
        let on = Settings {
            calculator: Some(true),
            ..Settings::default()
        };
        assert!(on.over(off).resolve().unwrap().calculator);
    }

    #[test]
    fn limits_come_from_the_file_and_zero_is_refused() {
        let file = Settings::from_json(
            "wabill.json",
            r#"{"header-timeout-secs":2,"idle_timeout_secs":3,"request-timeout-secs":4,"max-connections":5,"rate-limit-per-sec":6}"#,
        )
        .unwrap();
        let r = file.resolve().unwrap();
        assert_eq!(
            r.limits,
            crate::limits::Limits {
                header_timeout: std::time::Duration::from_secs(2),
                idle_timeout: std::time::Duration::from_secs(3),
                request_timeout: std::time::Duration::from_secs(4),
                max_connections: 5,
            }
        );
        assert_eq!(r.rate_limit, Some((6, 6)));
        for (json, key) in [
            (r#"{"header-timeout-secs":0}"#, "header-timeout-secs"),
            (r#"{"max-connections":0}"#, "max-connections"),
            (r#"{"rate-limit-burst":3}"#, "rate-limit-burst"),
            (
                r#"{"rate-limit-per-sec":1,"rate-limit-burst":0}"#,
                "rate-limit-burst",
            ),
        ] {
            let e = Settings::from_json("f", json)
                .unwrap()
                .resolve()
                .unwrap_err()
                .to_string();
            assert!(e.starts_with(key), "{json}: {e}");
        }
    }

    #[test]
    fn a_typo_in_the_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wabill.json");
        std::fs::write(&path, r#"{"datbase":"x"}"#).unwrap();
        let e = Settings::from_file(&path).unwrap_err().to_string();
        assert!(e.contains("unknown field `datbase`"), "{e}");
        let bad = Settings {
            listen: Some("nowhere".into()),
            ..Settings::default()
        };
        assert!(bad
            .resolve()
            .unwrap_err()
            .to_string()
            .starts_with("listen:"));
    }
}
