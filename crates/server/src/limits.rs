//! What one client may hold of the service: connections (a bound on how many are open at
//! once), time (a request head must arrive in full within the header timeout, a kept-alive
//! connection with nothing to do is closed after the idle timeout, and a request gets its
//! answer within the request timeout) and, per API key, requests per second (a token bucket).
//! The connection loop here replaces `axum::serve`, which has no timeouts and no bound
//! (decisions.md D82-D84).

use crate::errors::{problem_retry, ErrorCode};
use axum::body::Body;
use axum::http::{header, Request};
use axum::response::{IntoResponse, Response};
use axum::Router;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{watch, Notify, Semaphore};
use tower::ServiceExt;

/// Default [`Limits::header_timeout`].
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Default [`Limits::idle_timeout`].
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Default [`Limits::request_timeout`].
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// Default [`Limits::max_connections`].
pub const DEFAULT_MAX_CONNECTIONS: usize = 512;

/// The connection limits of the service.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// From the first byte of a request to the end of its head (request line and headers):
    /// beyond it the connection is closed.
    pub header_timeout: Duration,
    /// A connection with no request in flight and no byte in either direction for this long is
    /// closed (a fresh connection that sends nothing too).
    pub idle_timeout: Duration,
    /// From a request's head to its answer, the body's reading included: beyond it the answer
    /// is `408 request_timeout` and the connection is closed. The work under way is not
    /// abandoned: an ingest that commits still marks what it stored.
    pub request_timeout: Duration,
    /// Connections open at once; further ones wait in the listen queue until one closes.
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            header_timeout: DEFAULT_HEADER_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
        }
    }
}

/// Accepts connections and serves `app` on them within `limits` until `shutdown` completes;
/// then lets each connection finish its request in flight (for at most the request timeout)
/// and returns.
pub async fn serve_connections(
    listener: tokio::net::TcpListener,
    app: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let (stop, stopping) = watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        let slot = tokio::select! {
            s = slots.clone().acquire_owned() => s.expect("never closed"),
            _ = &mut shutdown => break,
        };
        let stream = tokio::select! {
            r = listener.accept() => match r {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors, most likely: wait for some to close.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let stopping = stopping.clone();
        tokio::spawn(async move {
            connection(stream, app, limits, stopping).await;
            drop(slot);
        });
    }
    drop(listener);
    let _ = stop.send(true);
    let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    let _ = tokio::time::timeout(
        limits.request_timeout + Duration::from_secs(1),
        slots.acquire_many(all),
    )
    .await;
}

/// What a connection is doing, in milliseconds since it was accepted.
struct ConnState {
    opened: Instant,
    in_flight: AtomicUsize,
    /// The last byte read or written, or the end of the last request.
    active_ms: AtomicU64,
    /// The first byte of a request head not yet complete; [`NONE`] when there is none.
    head_from_ms: AtomicU64,
    /// Wakes the watchdog when a head starts (its deadline is earlier than the idle one).
    changed: Notify,
}

const NONE: u64 = u64::MAX;

impl ConnState {
    fn now_ms(&self) -> u64 {
        self.opened.elapsed().as_millis() as u64
    }

    /// When the connection is to be closed if nothing changes; `None` while a request is in
    /// flight (the request timeout bounds it).
    fn deadline(&self, limits: &Limits) -> Option<Instant> {
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return None;
        }
        let head = self.head_from_ms.load(Ordering::Acquire);
        let (from, limit) = if head != NONE {
            (head, limits.header_timeout)
        } else {
            (self.active_ms.load(Ordering::Acquire), limits.idle_timeout)
        };
        Some(self.opened + Duration::from_millis(from) + limit)
    }
}

async fn connection(
    stream: tokio::net::TcpStream,
    app: Router,
    limits: Limits,
    mut stopping: watch::Receiver<bool>,
) {
    let state = Arc::new(ConnState {
        opened: Instant::now(),
        in_flight: AtomicUsize::new(0),
        active_ms: AtomicU64::new(0),
        head_from_ms: AtomicU64::new(NONE),
        changed: Notify::new(),
    });
    let io = hyper_util::rt::TokioIo::new(Watched {
        io: stream,
        state: state.clone(),
    });
    let service = {
        let state = state.clone();
        hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
            let app = app.clone();
            let state = state.clone();
            async move {
                state.in_flight.fetch_add(1, Ordering::AcqRel);
                state.head_from_ms.store(NONE, Ordering::Release);
                let resp = answer_within(app, req.map(Body::new), limits.request_timeout).await;
                state.active_ms.store(state.now_ms(), Ordering::Release);
                state.in_flight.fetch_sub(1, Ordering::AcqRel);
                Ok::<_, std::convert::Infallible>(resp)
            }
        })
    };
    let conn = hyper::server::conn::http1::Builder::new()
        .keep_alive(true)
        .serve_connection(io, service);
    tokio::pin!(conn);
    let mut draining = false;
    loop {
        let deadline = state.deadline(&limits);
        let sleep = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(d.into()).await,
                // In flight: look again after a while (the end of a request moves the deadline).
                None => tokio::time::sleep(limits.idle_timeout.min(Duration::from_secs(1))).await,
            }
        };
        tokio::select! {
            r = conn.as_mut() => {
                if let Err(e) = r {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                return;
            }
            _ = sleep => {
                if state.deadline(&limits).is_some_and(|d| d <= Instant::now()) {
                    // Dropping the connection closes the socket.
                    return;
                }
            }
            _ = state.changed.notified() => {}
            _ = stopping.changed(), if !draining => {
                draining = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    }
}

/// The router's answer, or `408 request_timeout` when it takes longer than `limit`. The
/// request runs on a task of its own, so that a timeout never cancels a store write half way.
async fn answer_within(app: Router, req: Request<Body>, limit: Duration) -> Response {
    let mut task = tokio::spawn(async move {
        match app.oneshot(req).await {
            Ok(resp) => resp,
            Err(never) => match never {},
        }
    });
    match tokio::time::timeout(limit, &mut task).await {
        Ok(Ok(resp)) => resp,
        Ok(Err(e)) => {
            tracing::error!(error = %e, "a request's task failed");
            problem_retry(ErrorCode::InternalError, "the request failed; try again", 1)
        }
        Err(_) => {
            let mut resp = problem_retry(
                ErrorCode::RequestTimeout,
                format!(
                    "no answer within the request timeout of {} s",
                    limit.as_secs_f64()
                ),
                1,
            );
            resp.headers_mut()
                .insert(header::CONNECTION, "close".parse().expect("valid"));
            resp.into_response()
        }
    }
}

/// The connection's socket, noting when bytes pass.
struct Watched<T> {
    io: T,
    state: Arc<ConnState>,
}

impl<T: AsyncRead + Unpin> AsyncRead for Watched<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.io).poll_read(cx, buf);
        if buf.filled().len() > before {
            let s = &self.state;
            let now = s.now_ms();
            s.active_ms.store(now, Ordering::Release);
            if s.in_flight.load(Ordering::Acquire) == 0
                && s.head_from_ms
                    .compare_exchange(NONE, now, Ordering::AcqRel, Ordering::Acquire)
                    .is_ok()
            {
                s.changed.notify_one();
            }
        }
        r
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Watched<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.io).poll_write(cx, buf);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            let now = self.state.now_ms();
            self.state.active_ms.store(now, Ordering::Release);
        }
        r
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// Requests per second per API key: a token bucket of `burst` tokens refilled at
/// `per_second`, one per request. Keys are told apart by their id, so one tenant's traffic
/// never uses another's allowance.
#[derive(Default)]
pub struct RateLimiter {
    /// `None`: no limit.
    rate: Option<RateLimit>,
    buckets: Mutex<rustc_hash::FxHashMap<i64, (f64, Instant)>>,
}

/// A rate limit: `per_second` requests a second on average, `burst` at once.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RateLimit {
    pub per_second: f64,
    pub burst: u32,
}

impl RateLimiter {
    pub fn new(rate: Option<RateLimit>) -> RateLimiter {
        RateLimiter {
            rate,
            buckets: Mutex::default(),
        }
    }

    /// Takes a token for key `id`: `Ok`, or `Err(seconds)` until the next one (at least 1).
    pub fn admit(&self, id: i64) -> Result<(), u64> {
        self.admit_at(id, Instant::now())
    }

    fn admit_at(&self, id: i64, now: Instant) -> Result<(), u64> {
        let Some(rate) = self.rate else {
            return Ok(());
        };
        let burst = f64::from(rate.burst.max(1));
        let mut buckets = self.buckets.lock().expect("not poisoned");
        let (tokens, at) = buckets.entry(id).or_insert((burst, now));
        let refilled = now.saturating_duration_since(*at).as_secs_f64() * rate.per_second;
        *tokens = (*tokens + refilled).min(burst);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            let wait = (1.0 - *tokens) / rate.per_second;
            Err((wait.ceil() as u64).max(1))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_gives_its_burst_then_its_rate_per_key() {
        let l = RateLimiter::new(Some(RateLimit {
            per_second: 2.0,
            burst: 3,
        }));
        let t = Instant::now();
        for _ in 0..3 {
            assert_eq!(l.admit_at(1, t), Ok(()));
        }
        assert_eq!(l.admit_at(1, t), Err(1));
        // Another key has its own bucket.
        assert_eq!(l.admit_at(2, t), Ok(()));
        // Half a second gives one token back (2 a second).
        assert_eq!(l.admit_at(1, t + Duration::from_millis(500)), Ok(()));
        assert_eq!(l.admit_at(1, t + Duration::from_millis(500)), Err(1));
        // Never more than the burst, however long the pause.
        let later = t + Duration::from_secs(3600);
        for _ in 0..3 {
            assert_eq!(l.admit_at(1, later), Ok(()));
        }
        assert!(l.admit_at(1, later).is_err());
        let slow = RateLimiter::new(Some(RateLimit {
            per_second: 0.1,
            burst: 1,
        }));
        assert_eq!(slow.admit_at(1, t), Ok(()));
        assert_eq!(slow.admit_at(1, t), Err(10));
        assert_eq!(RateLimiter::default().admit_at(1, t), Ok(()));
    }
}
