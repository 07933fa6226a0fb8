//! `wabill serve` and `wabill keys`: the service and its API keys. Configuration comes from
//! flags, else `WABILL_*` environment variables, else the `--config` file, else defaults
//! (`wabill_server::config`).

use anyhow::{Context, Result};
use std::path::PathBuf;
use std::sync::Arc;
use wabill_engine::{hash_key, Engine};
use wabill_server::config::{Resolved, Settings};
use wabill_server::ServeConfig;
use wabill_store::{NewApiKey, Role};

#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// A JSON configuration file whose keys are these flags' names (flags and environment
    /// variables win over it).
    #[arg(long, env = "WABILL_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Database: a SQLite file (created and migrated on first start) or postgres://...
    /// [default: wabill.sqlite]
    #[arg(long, env = "WABILL_DB")]
    pub db: Option<String>,
    /// Address to listen on. [default: 127.0.0.1:8080]
    #[arg(long, env = "WABILL_LISTEN")]
    pub listen: Option<String>,
    /// Meta app secret(s) for X-Hub-Signature-256, comma-separated (two during a rotation).
    /// Without one, the webhook route refuses every post.
    #[arg(long, env = "WABILL_APP_SECRET", hide_env_values = true)]
    pub app_secret: Option<String>,
    /// Token Meta's webhook verification handshake must present.
    #[arg(long, env = "WABILL_VERIFY_TOKEN", hide_env_values = true)]
    pub verify_token: Option<String>,
    /// Rate data directory instead of the bundled data (see `wabill rates import`).
    #[arg(long, env = "WABILL_RATES", value_name = "DIR")]
    pub rates: Option<PathBuf>,
    /// Largest request body accepted, in bytes (413 above). [default: 16777216]
    #[arg(long, env = "WABILL_MAX_BODY_BYTES")]
    pub max_body_bytes: Option<usize>,
    /// Memory re-rating may keep of the months it rated, in MiB: above it, the least recently
    /// rated months are read from the database again when next needed. [default: 256]
    #[arg(long, env = "WABILL_RERATE_MEMORY_MB", value_name = "MIB")]
    pub rerate_memory_mb: Option<usize>,
    /// Seconds from a request's first byte to the end of its headers; beyond, the connection
    /// is closed. [default: 10]
    #[arg(long, env = "WABILL_HEADER_TIMEOUT_SECS", value_name = "SECS")]
    pub header_timeout_secs: Option<u64>,
    /// Seconds a connection may stay open with no request and no traffic. [default: 60]
    #[arg(long, env = "WABILL_IDLE_TIMEOUT_SECS", value_name = "SECS")]
    pub idle_timeout_secs: Option<u64>,
    /// Seconds from a request's headers to its answer, the body included (408 beyond).
    /// [default: 60]
    #[arg(long, env = "WABILL_REQUEST_TIMEOUT_SECS", value_name = "SECS")]
    pub request_timeout_secs: Option<u64>,
    /// Connections open at once; more wait until one closes. [default: 512]
    #[arg(long, env = "WABILL_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// Requests per second per API key (429 beyond); 0 or unset: no limit.
    #[arg(long, env = "WABILL_RATE_LIMIT_PER_SEC")]
    pub rate_limit_per_sec: Option<u32>,
    /// Requests a key may send at once under the rate limit. [default: the rate]
    #[arg(long, env = "WABILL_RATE_LIMIT_BURST")]
    pub rate_limit_burst: Option<u32>,
    /// Key(s) budget alert secrets are sealed under at rest: 64 hex digits (`openssl rand -hex
    /// 32`), comma-separated during a rotation (the first seals, all open). Without one, alert
    /// settings with a secret are refused.
    #[arg(long, env = "WABILL_SECRETS_KEY", hide_env_values = true)]
    pub secrets_key: Option<String>,
    /// Networks besides the public internet budget alerts may be sent to, comma-separated
    /// CIDRs or addresses (`127.0.0.0/8,10.1.2.3`). [default: none: loopback, private and
    /// link-local addresses are refused]
    #[arg(long, env = "WABILL_ALERT_ALLOW_NETWORKS", value_name = "CIDRS")]
    pub alert_allow_networks: Option<String>,
    /// The public calculator: `POST /v1/estimate` and the console's calculator page, without an
    /// API key; `false` turns them off (404). [default: true]
    #[arg(long, env = "WABILL_CALCULATOR", value_name = "BOOL")]
    pub calculator: Option<bool>,
}

impl ServeArgs {
    /// Flags and environment (clap already let flags win), then the file, then defaults.
    fn resolve(&self) -> Result<Resolved> {
        let command_line = Settings {
            db: self.db.clone(),
            listen: self.listen.clone(),
            app_secret: self.app_secret.clone(),
            verify_token: self.verify_token.clone(),
            rates: self.rates.as_ref().map(|p| p.display().to_string()),
            max_body_bytes: self.max_body_bytes,
            rerate_memory_mb: self.rerate_memory_mb,
            header_timeout_secs: self.header_timeout_secs,
            idle_timeout_secs: self.idle_timeout_secs,
            request_timeout_secs: self.request_timeout_secs,
            max_connections: self.max_connections,
            rate_limit_per_sec: self.rate_limit_per_sec,
            rate_limit_burst: self.rate_limit_burst,
            secrets_key: self.secrets_key.clone(),
            alert_allow_networks: self.alert_allow_networks.clone(),
            calculator: self.calculator,
        };
        let file = match &self.config {
            Some(path) => Settings::from_file(path)?,
            None => Settings::default(),
        };
        Ok(command_line.over(file).resolve()?)
    }
}

#[derive(clap::Subcommand, Debug)]
pub enum KeysCommand {
    /// Create an API key; it is printed once and only its SHA-256 is stored.
    Create {
        #[arg(long)]
        name: String,
        #[arg(long, value_parser = ["admin", "reader", "sender"])]
        role: String,
        /// A WABA the key may use (reader and sender keys; repeat for several).
        #[arg(long = "waba")]
        wabas: Vec<String>,
        #[arg(long, env = "WABILL_DB", default_value = "wabill.sqlite")]
        db: String,
    },
    /// List keys (never the keys themselves).
    List {
        #[arg(long, env = "WABILL_DB", default_value = "wabill.sqlite")]
        db: String,
    },
    /// Revoke a key by id.
    Revoke {
        id: i64,
        #[arg(long, env = "WABILL_DB", default_value = "wabill.sqlite")]
        db: String,
    },
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

pub fn serve(args: &ServeArgs) -> Result<i32> {
    let config = args.resolve()?;
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("WABILL_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .json()
        .with_writer(std::io::stderr)
        .init();
    let tariff = Arc::new(crate::tariff::load(config.rates.as_deref())?);
    if config.app_secrets.is_empty() {
        eprintln!(
            "warning: no WABILL_APP_SECRET: the webhook route refuses every post until one is set"
        );
    }
    runtime()?.block_on(async {
        let store = wabill_store::open(&config.db)
            .await
            .with_context(|| format!("opening the database {}", config.db))?;
        let store: Arc<dyn wabill_store::Store> = Arc::from(store);
        let engine = Engine::new(store.clone(), tariff, Default::default()).await?;
        engine
            .set_month_memory_budget(config.rerate_memory_bytes)
            .await;
        wabill_server::serve(
            engine,
            ServeConfig {
                listen: config.listen,
                app_secrets: config.app_secrets.clone(),
                verify_token: config.verify_token.clone(),
                max_body_bytes: config.max_body_bytes,
                limits: config.limits,
                rate_limit: config.rate_limit.map(|(per_second, burst)| {
                    wabill_server::limits::RateLimit {
                        per_second: f64::from(per_second),
                        burst,
                    }
                }),
                alerts: wabill_engine::alerts::AlertConfig {
                    secrets: config.secrets.clone(),
                    networks: config.alert_networks.clone(),
                    ..Default::default()
                },
                calculator: config.calculator,
            },
        )
        .await
        .context("serving")?;
        store.close().await?;
        Ok(0)
    })
}

pub fn keys(cmd: &KeysCommand) -> Result<i32> {
    runtime()?.block_on(async {
        match cmd {
            KeysCommand::Create {
                name,
                role,
                wabas,
                db,
            } => {
                let store = wabill_store::open(db).await?;
                let mut raw = [0u8; 24];
                getrandom::fill(&mut raw).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
                let key = format!("wbk_{}", hex::encode(raw));
                let role = Role::parse(role).expect("clap checked the role");
                let row = store
                    .create_key(&NewApiKey {
                        name: name.clone(),
                        role,
                        tenant_wabas: wabas.clone(),
                        key_hash: hash_key(&key),
                    })
                    .await?;
                let target = format!("{} {}", row.id, row.name);
                crate::tenants_cmd::audit_cli(
                    &*store,
                    wabill_engine::audit::action::KEY_CREATE,
                    &target,
                )
                .await?;
                outln!("{key}");
                eprintln!(
                    "created key {} ({}, {}); it is shown only now",
                    row.id,
                    row.name,
                    row.role.as_str()
                );
            }
            KeysCommand::List { db } => {
                let store = wabill_store::open(db).await?;
                for k in store.list_keys().await? {
                    outln!(
                        "{}\t{}\t{}\t{}\t{}",
                        k.id,
                        k.name,
                        k.role.as_str(),
                        k.tenant_wabas.join(","),
                        if k.revoked_at_ms.is_some() {
                            "revoked"
                        } else {
                            "active"
                        }
                    );
                }
            }
            KeysCommand::Revoke { id, db } => {
                let store = wabill_store::open(db).await?;
                if store.revoke_key(*id).await? {
                    crate::tenants_cmd::audit_cli(
                        &*store,
                        wabill_engine::audit::action::KEY_REVOKE,
                        &id.to_string(),
                    )
                    .await?;
                    eprintln!("revoked key {id}");
                } else {
                    anyhow::bail!("key {id} does not exist or was already revoked");
                }
            }
        }
        Ok(0)
    })
}
