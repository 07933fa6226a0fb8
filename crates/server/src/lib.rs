//! wabill's HTTP service (`wabill serve`), and nothing but HTTP: the routes and their handlers,
//! authentication as an extractor, one table of error codes giving each its status and its
//! place in the OpenAPI document, the connection loop with its limits, and the HTTP client of
//! budget alerts. What the service does is `wabill-engine`'s; this crate runs its workers and
//! turns requests into its calls and its answers into responses. The only crate that knows HTTP.

pub mod alert_http;
pub mod api;
pub mod config;
pub mod errors;
pub mod handlers;
pub mod health;
pub mod limits;
pub mod openapi;
pub mod routes;

use std::net::SocketAddr;
use std::sync::Arc;

pub use api::{router, AppState};
use wabill_engine::{alerts, workers};
pub use wabill_engine::{hash_key, Engine};

/// How the service runs.
#[derive(Clone, Debug)]
pub struct ServeConfig {
    pub listen: SocketAddr,
    pub app_secrets: Vec<Vec<u8>>,
    pub verify_token: String,
    /// Largest request body accepted (413 above).
    pub max_body_bytes: usize,
    /// Timeouts and the bound on connections.
    pub limits: limits::Limits,
    /// Requests per second per API key; `None`: no limit.
    pub rate_limit: Option<limits::RateLimit>,
    /// Budget alerts: backoff, timeouts, the secrets keys and the networks allowed.
    pub alerts: wabill_engine::alerts::AlertConfig,
    /// The public calculator (`POST /v1/estimate` and the console's calculator page) is on.
    pub calculator: bool,
}

impl ServeConfig {
    /// Listening on `listen`, with no webhook secret and the default limits.
    pub fn new(listen: SocketAddr) -> ServeConfig {
        ServeConfig {
            listen,
            app_secrets: Vec::new(),
            verify_token: String::new(),
            max_body_bytes: api::MAX_BODY_BYTES,
            limits: limits::Limits::default(),
            rate_limit: None,
            alerts: wabill_engine::alerts::AlertConfig::default(),
            calculator: true,
        }
    }
}

/// Runs the service until Ctrl-C or SIGTERM, then finishes requests in flight and re-rates what
/// is still dirty before returning.
pub async fn serve(engine: Arc<Engine>, config: ServeConfig) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(config.listen).await?;
    serve_on(listener, engine, config, shutdown_signal()).await
}

/// [`serve`] on a bound listener until `shutdown` completes (`config.listen` is not used).
pub async fn serve_on(
    listener: tokio::net::TcpListener,
    engine: Arc<Engine>,
    config: ServeConfig,
    shutdown: impl std::future::Future<Output = ()>,
) -> std::io::Result<()> {
    if config.app_secrets.is_empty() {
        tracing::warn!(
            "no app secret (WABILL_APP_SECRET): POST /webhooks/whatsapp answers 503 to every post"
        );
    }
    let state = Arc::new(AppState {
        max_body_bytes: config.max_body_bytes,
        rate_limit: limits::RateLimiter::new(config.rate_limit),
        alerts: config.alerts.clone(),
        calculator: config.calculator,
        ..AppState::new(
            engine.clone(),
            config.app_secrets.clone(),
            config.verify_token.clone(),
        )
    });
    let worker = tokio::spawn(workers::rerate_loop(engine.clone()));
    let maintenance = tokio::spawn(workers::maintain_loop(engine.clone()));
    let alert_config = config.alerts.clone();
    if let Some(keys) = &alert_config.secrets {
        match alerts::seal_stored_secrets(&**engine.store(), keys).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(sealed = n, "alert secrets stored plain are now sealed"),
            Err(e) => tracing::error!(error = %e, "sealing the stored alert secrets failed"),
        }
    } else {
        tracing::warn!(
            "no secrets key (WABILL_SECRETS_KEY): budget alert settings with a secret are refused"
        );
    }
    let poster =
        alert_http::ReqwestPoster::new(alert_config.timeout, alert_config.networks.clone())
            .map_err(|e| std::io::Error::other(format!("budget alerts: {e}")))?;
    let alerts = tokio::spawn(alerts::alert_loop(
        engine.clone(),
        alert_config,
        Arc::new(poster),
    ));
    tracing::info!(addr = %listener.local_addr()?, "wabill serving");
    limits::serve_connections(listener, router(state), config.limits, shutdown).await;
    worker.abort();
    alerts.abort();
    maintenance.abort();
    if let Err(e) = engine.settle().await {
        tracing::error!(error = %e, "re-rating at shutdown failed; it resumes at the next start");
    }
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}
