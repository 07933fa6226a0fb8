//! wabill's HTTP service (`wabill serve`): Meta's webhooks and wabill events in, stored
//! durably before they are acknowledged, re-rated by the pure rating core into charges that
//! equal `wabill rate`'s, served back by API, with send checks, usage shaped like Meta's
//! analytics, reconciliation against Meta's webhook pricing, tenant invoices, budget alert
//! webhooks and an OpenAPI document. The only
//! crate that knows HTTP.

pub mod alerts;
pub mod api;
pub mod check;
pub mod config;
pub mod engine;
pub mod errors;
pub mod hot;
pub mod meta;
pub mod metrics;
pub mod months;
pub mod openapi;
pub mod reconcile;
pub mod routes;
pub mod tenants;
pub mod usage;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

pub use api::{hash_key, router, AppState};
pub use engine::Engine;

/// How the service runs.
#[derive(Clone, Debug)]
pub struct ServeConfig {
    pub listen: SocketAddr,
    pub app_secrets: Vec<Vec<u8>>,
    pub verify_token: String,
    /// Largest request body accepted (413 above).
    pub max_body_bytes: usize,
}

/// Runs the service until Ctrl-C or SIGTERM, then finishes requests in flight and re-rates what
/// is still dirty before returning.
pub async fn serve(engine: Arc<Engine>, config: ServeConfig) -> std::io::Result<()> {
    if config.app_secrets.is_empty() {
        tracing::warn!(
            "no app secret (WABILL_APP_SECRET): POST /webhooks/whatsapp answers 503 to every post"
        );
    }
    let state = Arc::new(AppState {
        max_body_bytes: config.max_body_bytes,
        ..AppState::new(
            engine.clone(),
            config.app_secrets.clone(),
            config.verify_token.clone(),
        )
    });
    let worker = tokio::spawn(rerate_loop(engine.clone()));
    let maintenance = tokio::spawn({
        let engine = engine.clone();
        async move {
            loop {
                tokio::time::sleep(Duration::from_secs(10)).await;
                let engine = engine.clone();
                // A sweep locks one shard at a time; off the async workers all the same.
                let _ = tokio::task::spawn_blocking(move || engine.maintain()).await;
            }
        }
    });
    let alerts = tokio::spawn(alerts::alert_loop(
        engine.clone(),
        alerts::AlertConfig::default(),
    ));
    let listener = tokio::net::TcpListener::bind(config.listen).await?;
    tracing::info!(addr = %listener.local_addr()?, "wabill serving");
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    worker.abort();
    alerts.abort();
    maintenance.abort();
    if let Err(e) = engine.settle().await {
        tracing::error!(error = %e, "re-rating at shutdown failed; it resumes at the next start");
    }
    Ok(())
}

/// Re-rates dirty months as they appear. Notifications are coalesced for a moment, and after a
/// pass that took `t` the worker rests at least as long again: re-rating a month reads all of
/// it, so under sustained ingest it would otherwise take a core from the ingest path. Charges
/// lag by a few passes at most and converge once ingest pauses.
pub async fn rerate_loop(engine: Arc<Engine>) {
    loop {
        let _ = tokio::time::timeout(Duration::from_secs(1), engine.notified()).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        let started = std::time::Instant::now();
        match engine.rerate_dirty().await {
            Ok(_) => tokio::time::sleep(started.elapsed()).await,
            Err(e) => {
                tracing::error!(error = %e, "re-rating failed; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
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
