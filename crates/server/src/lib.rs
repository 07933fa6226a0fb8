//! wabill's HTTP service (`wabill serve`): Meta's webhooks and wabill events in, stored
//! durably before they are acknowledged, re-rated by the pure rating core into charges that
//! equal `wabill rate`'s, served back by API. The only crate that knows HTTP.

pub mod api;
pub mod engine;
pub mod meta;
pub mod metrics;

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
        engine: engine.clone(),
        app_secrets: config.app_secrets.clone(),
        verify_token: config.verify_token.clone(),
    });
    let worker = tokio::spawn(rerate_loop(engine.clone()));
    let listener = tokio::net::TcpListener::bind(config.listen).await?;
    tracing::info!(addr = %listener.local_addr()?, "wabill serving");
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    worker.abort();
    if let Err(e) = engine.settle().await {
        tracing::error!(error = %e, "re-rating at shutdown failed; it resumes at the next start");
    }
    Ok(())
}

/// Re-rates dirty months as they appear, at most every 100 ms, retrying after store errors.
pub async fn rerate_loop(engine: Arc<Engine>) {
    loop {
        let _ = tokio::time::timeout(Duration::from_secs(1), engine.notified()).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        if let Err(e) = engine.rerate_dirty().await {
            tracing::error!(error = %e, "re-rating failed; retrying");
            tokio::time::sleep(Duration::from_secs(1)).await;
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
