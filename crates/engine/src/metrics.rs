//! Counters for `/metrics`, in Prometheus' text format.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;

/// (route, status) → requests answered.
type Requests = std::collections::BTreeMap<(&'static str, u16), u64>;

/// Upper bounds, in seconds, of the request duration histogram's buckets (`+Inf` is implied):
/// from a send check answered from memory (well under a millisecond) to a batch of 10,000
/// events or a large export (seconds).
pub const DURATION_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// A route's request durations: a count per bucket (not cumulative; the last is `+Inf`), and
/// their sum.
#[derive(Default, Clone)]
struct Durations {
    buckets: [u64; DURATION_BUCKETS.len() + 1],
    sum: f64,
}

#[derive(Default)]
pub struct Metrics {
    ingested: AtomicU64,
    duplicates: AtomicU64,
    rejected: AtomicU64,
    rated: AtomicU64,
    webhook_unauthorized: AtomicU64,
    requests: Mutex<(
        Requests,
        std::collections::BTreeMap<&'static str, Durations>,
    )>,
    checks_memory: AtomicU64,
    checks_store: AtomicU64,
    working_pairs: AtomicU64,
    working_lines: AtomicU64,
    rerate_months: AtomicU64,
    rerate_bytes: AtomicU64,
    stored_seq: AtomicU64,
    rated_seq: AtomicU64,
    rounds_ok: AtomicU64,
    rounds_failed: AtomicU64,
    unratable: AtomicU64,
    /// Ingest calls answered (any outcome): whether ingest is still arriving.
    ingest_calls: AtomicU64,
}

impl Metrics {
    pub fn add_ingested(&self, stored: u64, duplicates: u64, rejected: u64) {
        self.ingest_calls.fetch_add(1, Relaxed);
        self.ingested.fetch_add(stored, Relaxed);
        self.duplicates.fetch_add(duplicates, Relaxed);
        self.rejected.fetch_add(rejected, Relaxed);
    }
    /// Ingest calls answered so far: it changes while ingest keeps arriving.
    pub fn ingest_calls(&self) -> u64 {
        self.ingest_calls.load(Relaxed)
    }
    pub fn add_rejected(&self, n: u64) {
        self.rejected.fetch_add(n, Relaxed);
    }
    pub fn add_rated(&self, n: u64) {
        self.rated.fetch_add(n, Relaxed);
    }
    pub fn add_unauthorized_webhook(&self) {
        self.webhook_unauthorized.fetch_add(1, Relaxed);
    }
    /// A send check answered from the working set in memory (`true`) or from the store.
    pub fn add_check(&self, from_memory: bool) {
        match from_memory {
            true => self.checks_memory.fetch_add(1, Relaxed),
            false => self.checks_store.fetch_add(1, Relaxed),
        };
    }
    /// Send checks answered so far from memory and from the store.
    pub fn checks(&self) -> (u64, u64) {
        (
            self.checks_memory.load(Relaxed),
            self.checks_store.load(Relaxed),
        )
    }
    /// The size of the send check's working set.
    pub fn set_working_set(&self, pairs: u64, lines: u64) {
        self.working_pairs.store(pairs, Relaxed);
        self.working_lines.store(lines, Relaxed);
    }
    /// What re-rating keeps of the months it rated.
    pub fn set_rerate_memory(&self, months: u64, bytes: u64) {
        self.rerate_months.store(months, Relaxed);
        self.rerate_bytes.store(bytes, Relaxed);
    }
    /// The highest seq known to be stored (it only rises).
    pub fn stored_upto(&self, seq: u64) {
        self.stored_seq.fetch_max(seq, Relaxed);
    }
    /// The re-rating watermark: every event up to it is reflected in the stored charges.
    pub fn set_rated_seq(&self, seq: u64) {
        self.rated_seq.store(seq, Relaxed);
    }
    /// A re-rating round ended, and how.
    pub fn add_round(&self, ok: bool) {
        match ok {
            true => self.rounds_ok.fetch_add(1, Relaxed),
            false => self.rounds_failed.fetch_add(1, Relaxed),
        };
    }
    /// Messages the last re-rating of their months could not price.
    pub fn set_unratable(&self, n: u64) {
        self.unratable.store(n, Relaxed);
    }
    pub fn observe(&self, route: &'static str, status: u16, seconds: f64) {
        let bucket = DURATION_BUCKETS
            .iter()
            .position(|&le| seconds <= le)
            .unwrap_or(DURATION_BUCKETS.len());
        let mut r = self.requests.lock().expect("metrics lock");
        *r.0.entry((route, status)).or_default() += 1;
        let d = r.1.entry(route).or_default();
        d.buckets[bucket] += 1;
        d.sum += seconds;
    }

    pub fn render(&self) -> String {
        let mut s = String::new();
        let counter = |s: &mut String, name: &str, help: &str, v: u64| {
            let _ = writeln!(s, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}");
        };
        counter(
            &mut s,
            "wabill_events_ingested_total",
            "Events stored.",
            self.ingested.load(Relaxed),
        );
        counter(
            &mut s,
            "wabill_events_duplicate_total",
            "Events received again and counted once.",
            self.duplicates.load(Relaxed),
        );
        counter(
            &mut s,
            "wabill_events_rejected_total",
            "Events refused (malformed or conflicting).",
            self.rejected.load(Relaxed),
        );
        counter(
            &mut s,
            "wabill_charges_rated_total",
            "Charge rows written by re-rating.",
            self.rated.load(Relaxed),
        );
        counter(
            &mut s,
            "wabill_webhook_unauthorized_total",
            "Webhook posts refused for their signature.",
            self.webhook_unauthorized.load(Relaxed),
        );
        let _ = writeln!(
            s,
            "# HELP wabill_send_checks_total Send checks answered, by where the pair's events \
             and counters were read.\n# TYPE wabill_send_checks_total counter\n\
             wabill_send_checks_total{{source=\"memory\"}} {}\n\
             wabill_send_checks_total{{source=\"store\"}} {}",
            self.checks_memory.load(Relaxed),
            self.checks_store.load(Relaxed)
        );
        let gauge = |s: &mut String, name: &str, help: &str, v: u64| {
            let _ = writeln!(s, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
        };
        gauge(
            &mut s,
            "wabill_working_set_pairs",
            "(business phone, user) pairs with a message in the send check's working set.",
            self.working_pairs.load(Relaxed),
        );
        gauge(
            &mut s,
            "wabill_working_set_lines",
            "Event lines held in the send check's working set.",
            self.working_lines.load(Relaxed),
        );
        gauge(
            &mut s,
            "wabill_rerate_memory_months",
            "(portfolio, month) sets re-rating keeps in memory between rounds.",
            self.rerate_months.load(Relaxed),
        );
        gauge(
            &mut s,
            "wabill_rerate_memory_bytes",
            "Estimated bytes of the event lines and charges re-rating keeps in memory.",
            self.rerate_bytes.load(Relaxed),
        );
        let stored = self.stored_seq.load(Relaxed);
        let rated = self.rated_seq.load(Relaxed);
        gauge(
            &mut s,
            "wabill_events_stored_seq",
            "Highest sequence number of the events stored.",
            stored,
        );
        gauge(
            &mut s,
            "wabill_rated_seq",
            "Re-rating watermark: every event up to this sequence number is reflected in the \
             stored charges.",
            rated,
        );
        gauge(
            &mut s,
            "wabill_rerate_lag_events",
            "Events stored whose charges re-rating has not yet brought up to date.",
            stored.saturating_sub(rated),
        );
        gauge(
            &mut s,
            "wabill_unratable_messages",
            "Messages the last re-rating of their months could not price (GET /v1/unratable).",
            self.unratable.load(Relaxed),
        );
        let _ = writeln!(
            s,
            "# HELP wabill_rerate_rounds_total Re-rating rounds, by result.\n\
             # TYPE wabill_rerate_rounds_total counter\n\
             wabill_rerate_rounds_total{{result=\"ok\"}} {}\n\
             wabill_rerate_rounds_total{{result=\"failed\"}} {}",
            self.rounds_ok.load(Relaxed),
            self.rounds_failed.load(Relaxed)
        );
        let r = self.requests.lock().expect("metrics lock");
        let _ = writeln!(s, "# HELP wabill_http_requests_total Requests by route and status.\n# TYPE wabill_http_requests_total counter");
        for ((route, status), n) in r.0.iter() {
            let _ = writeln!(
                s,
                "wabill_http_requests_total{{route=\"{route}\",status=\"{status}\"}} {n}"
            );
        }
        let _ = writeln!(s, "# HELP wabill_http_request_duration_seconds Time spent answering, by route.\n# TYPE wabill_http_request_duration_seconds histogram");
        for (route, d) in r.1.iter() {
            let mut cumulative = 0;
            for (i, n) in d.buckets.iter().enumerate() {
                cumulative += n;
                let le = DURATION_BUCKETS
                    .get(i)
                    .map_or_else(|| "+Inf".to_string(), |b| b.to_string());
                let _ = writeln!(
                    s,
                    "wabill_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"{le}\"}} {cumulative}"
                );
            }
            let _ = writeln!(
                s,
                "wabill_http_request_duration_seconds_sum{{route=\"{route}\"}} {:.6}\n\
                 wabill_http_request_duration_seconds_count{{route=\"{route}\"}} {cumulative}",
                d.sum
            );
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(text: &str, series: &str) -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
            .unwrap_or_else(|| panic!("{series} missing in\n{text}"))
            .parse()
            .expect("a count")
    }

    #[test]
    fn request_durations_fall_into_cumulative_buckets() {
        let m = Metrics::default();
        for secs in [0.0002, 0.0005, 0.003, 0.2, 30.0] {
            m.observe("/v1/sends/check", 200, secs);
        }
        m.observe("/v1/events", 400, 0.04);
        let text = m.render();
        let bucket = |le: &str| {
            value(
                &text,
                &format!(
                    "wabill_http_request_duration_seconds_bucket{{route=\"/v1/sends/check\",le=\"{le}\"}}"
                ),
            )
        };
        // A duration equal to a bound counts in that bucket (Prometheus' `le`).
        assert_eq!(bucket("0.0005"), 2);
        assert_eq!(bucket("0.001"), 2);
        assert_eq!(bucket("0.005"), 3);
        assert_eq!(bucket("0.25"), 4);
        assert_eq!(bucket("10"), 4);
        assert_eq!(bucket("+Inf"), 5);
        assert_eq!(
            value(
                &text,
                "wabill_http_request_duration_seconds_count{route=\"/v1/sends/check\"}"
            ),
            5
        );
        assert_eq!(
            value(
                &text,
                "wabill_http_request_duration_seconds_bucket{route=\"/v1/events\",le=\"0.025\"}"
            ),
            0
        );
        assert_eq!(
            value(
                &text,
                "wabill_http_requests_total{route=\"/v1/events\",status=\"400\"}"
            ),
            1
        );
        assert!(text.contains(
            "wabill_http_request_duration_seconds_sum{route=\"/v1/sends/check\"} 30.203700"
        ));
    }

    #[test]
    fn the_lag_is_what_is_stored_beyond_the_watermark() {
        let m = Metrics::default();
        m.stored_upto(120);
        m.stored_upto(90); // a slower ingest reporting an earlier seq does not lower it
        m.set_rated_seq(100);
        let text = m.render();
        assert_eq!(value(&text, "wabill_events_stored_seq"), 120);
        assert_eq!(value(&text, "wabill_rerate_lag_events"), 20);
        m.set_rated_seq(120);
        assert_eq!(value(&m.render(), "wabill_rerate_lag_events"), 0);
    }
}
