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
pub mod health;
pub mod hot;
pub mod limits;
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
    /// Timeouts and the bound on connections.
    pub limits: limits::Limits,
    /// Requests per second per API key; `None`: no limit.
    pub rate_limit: Option<limits::RateLimit>,
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

/// Re-rates dirty months as they appear. Notifications are coalesced for a moment, and after a
/// pass that took `t` the worker rests up to as long again: re-rating a month reads all of
/// it, so under sustained ingest it would otherwise take a core from the ingest path. Charges
/// lag by a few passes at most and converge once ingest pauses; the rest ends as soon as
/// ingest has stopped ([`rest`]), so that the last pass follows the last batch at once.
pub async fn rerate_loop(engine: Arc<Engine>) {
    loop {
        let _ = tokio::time::timeout(Duration::from_secs(1), engine.notified()).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        let started = tokio::time::Instant::now();
        match engine.rerate_dirty().await {
            Ok(_) => rest(&engine.metrics, started.elapsed()).await,
            Err(e) => {
                tracing::error!(error = %e, "re-rating failed; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

/// No ingest for this long means ingest has stopped, for [`rest`].
const INGEST_IDLE: Duration = Duration::from_millis(500);

/// Waits `up_to`, or less: until no ingest call has been answered for [`INGEST_IDLE`]. The rest
/// leaves the cores to ingest while it arrives; when none does there is nothing to leave them
/// to.
async fn rest(metrics: &metrics::Metrics, up_to: Duration) {
    let until = tokio::time::Instant::now() + up_to;
    let mut seen = metrics.ingest_calls();
    loop {
        let left = until.saturating_duration_since(tokio::time::Instant::now());
        if left.is_zero() {
            return;
        }
        tokio::time::sleep(left.min(INGEST_IDLE)).await;
        let now = metrics.ingest_calls();
        if now == seen {
            return;
        }
        seen = now;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_rest_after_a_pass_lasts_only_while_ingest_arrives() {
        let m = Arc::new(metrics::Metrics::default());
        // No ingest: the rest ends after one idle gap, not after ten seconds.
        let t = tokio::time::Instant::now();
        rest(&m, Duration::from_secs(10)).await;
        assert_eq!(t.elapsed(), INGEST_IDLE);

        // Ingest every 50 ms: the whole rest.
        let feeder = {
            let m = m.clone();
            tokio::spawn(async move {
                loop {
                    m.add_ingested(1, 0, 0);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            })
        };
        let t = tokio::time::Instant::now();
        rest(&m, Duration::from_secs(10)).await;
        assert_eq!(t.elapsed(), Duration::from_secs(10));

        // Ingest that stops half way: the rest ends one idle gap after it.
        feeder.abort();
        let m2 = m.clone();
        let feeder = tokio::spawn(async move {
            for _ in 0..100 {
                m2.add_ingested(1, 0, 0);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
        let t = tokio::time::Instant::now();
        rest(&m, Duration::from_secs(10)).await;
        let took = t.elapsed();
        assert!(
            took >= Duration::from_secs(5) && took <= Duration::from_secs(5) + 2 * INGEST_IDLE,
            "{took:?}"
        );
        feeder.await.unwrap();
    }
}
