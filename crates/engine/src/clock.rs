//! The service's "now", passed in. The rating core never reads a clock: the engine asks its
//! [`Clock`] where it needs the present (the send check's instant, the working set's horizon, the
//! current months, stamps of finalized invoices and alert settings, the alert worker's rounds),
//! and hands the instant on as a value. Production runs on [`SystemClock`]; tests and the
//! simulation on a [`ManualClock`] or a function. Reading the system time anywhere else is
//! refused by clippy (`disallowed-methods` in clippy.toml).

use std::sync::atomic::{AtomicI64, Ordering};
use wabill_rating::UnixMs;

/// A source of the present instant, in Unix milliseconds.
pub trait Clock: Send + Sync + 'static {
    fn now_ms(&self) -> UnixMs;
}

/// The system clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> UnixMs {
        #[allow(clippy::disallowed_methods)] // The one place the wall clock is read.
        let now = std::time::SystemTime::now();
        now.duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64)
    }
}

/// A clock that moves only when told to (tests, the simulation).
#[derive(Debug, Default)]
pub struct ManualClock(AtomicI64);

impl ManualClock {
    pub fn new(at_ms: UnixMs) -> ManualClock {
        ManualClock(AtomicI64::new(at_ms))
    }

    pub fn set(&self, at_ms: UnixMs) {
        self.0.store(at_ms, Ordering::SeqCst);
    }

    pub fn advance(&self, by_ms: i64) {
        self.0.fetch_add(by_ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> UnixMs {
        self.0.load(Ordering::SeqCst)
    }
}

/// A function is a clock (a fixed instant in a test).
impl<F: Fn() -> UnixMs + Send + Sync + 'static> Clock for F {
    fn now_ms(&self) -> UnixMs {
        self()
    }
}

/// The system clock's present, for callers outside the engine that stamp what they write (the
/// command line).
pub fn system_now() -> UnixMs {
    SystemClock.now_ms()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_told() {
        let c = ManualClock::new(1_000);
        assert_eq!(c.now_ms(), 1_000);
        c.advance(500);
        assert_eq!(c.now_ms(), 1_500);
        c.set(42);
        assert_eq!(c.now_ms(), 42);
        let f = || 7;
        assert_eq!(Clock::now_ms(&f), 7);
        assert!(SystemClock.now_ms() > 1_700_000_000_000);
    }
}
