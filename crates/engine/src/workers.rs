//! The engine's background work, as `wabill serve` runs it: re-rating dirty months as they
//! appear, and the working set's maintenance. Budget alerts have their own loop
//! ([`crate::alerts::alert_loop`]).

use crate::metrics::Metrics;
use crate::Engine;
use std::sync::Arc;
use std::time::Duration;

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
async fn rest(metrics: &Metrics, up_to: Duration) {
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

/// Lets the working set go of what the clock has left behind, every ten seconds.
pub async fn maintain_loop(engine: Arc<Engine>) {
    loop {
        tokio::time::sleep(Duration::from_secs(10)).await;
        let engine = engine.clone();
        // A sweep locks one shard at a time; off the async workers all the same.
        let _ = tokio::task::spawn_blocking(move || engine.maintain()).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_rest_after_a_pass_lasts_only_while_ingest_arrives() {
        let m = Arc::new(Metrics::default());
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
