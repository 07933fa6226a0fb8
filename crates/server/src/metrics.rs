//! Counters for `/metrics`, in Prometheus' text format.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;

/// (route, status) → (count, total seconds).
type Requests = std::collections::BTreeMap<(&'static str, u16), (u64, f64)>;

#[derive(Default)]
pub struct Metrics {
    ingested: AtomicU64,
    duplicates: AtomicU64,
    rejected: AtomicU64,
    rated: AtomicU64,
    webhook_unauthorized: AtomicU64,
    /// (route, status class) → (count, total seconds).
    requests: Mutex<Requests>,
    checks_memory: AtomicU64,
    checks_store: AtomicU64,
    working_pairs: AtomicU64,
    working_lines: AtomicU64,
    rerate_months: AtomicU64,
    rerate_bytes: AtomicU64,
}

impl Metrics {
    pub fn add_ingested(&self, stored: u64, duplicates: u64, rejected: u64) {
        self.ingested.fetch_add(stored, Relaxed);
        self.duplicates.fetch_add(duplicates, Relaxed);
        self.rejected.fetch_add(rejected, Relaxed);
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
    pub fn observe(&self, route: &'static str, status: u16, seconds: f64) {
        let mut r = self.requests.lock().expect("metrics lock");
        let e = r.entry((route, status)).or_default();
        e.0 += 1;
        e.1 += seconds;
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
        let _ = writeln!(s, "# HELP wabill_http_requests_total Requests by route and status.\n# TYPE wabill_http_requests_total counter");
        let r = self.requests.lock().expect("metrics lock");
        for ((route, status), (n, _)) in r.iter() {
            let _ = writeln!(
                s,
                "wabill_http_requests_total{{route=\"{route}\",status=\"{status}\"}} {n}"
            );
        }
        let _ = writeln!(s, "# HELP wabill_http_request_seconds_sum Time spent answering, by route.\n# TYPE wabill_http_request_seconds_sum counter");
        for ((route, status), (_, secs)) in r.iter() {
            let _ = writeln!(s, "wabill_http_request_seconds_sum{{route=\"{route}\",status=\"{status}\"}} {secs:.6}");
        }
        s
    }
}
