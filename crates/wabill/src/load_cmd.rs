//! `wabill load`: drives a running `wabill serve` from a second process over loopback HTTP, to
//! measure batched durable ingest (BENCHMARKS.md). A minimal HTTP/1.1 client on keep-alive
//! connections, one per worker thread: the point is to measure the server, not a client stack.
//!
//! Its stream names synthetic WABAs (`W1` ... `W50`), so it writes only into a service whose
//! database holds nothing yet, unless `--force`; it counts what the service stored, found
//! duplicate and rejected, and fails when anything was rejected; `--mode check` on a service that
//! already holds events sends no stream and checks the messages of the charges stored
//! (decisions.md D140).

use anyhow::{bail, Context, Result};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use wabill_gen::GenConfig;

#[derive(clap::Args, Debug)]
pub struct LoadArgs {
    /// Address of the running service.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub addr: SocketAddr,
    /// An API key allowed to send events (admin or sender).
    #[arg(long, env = "WABILL_KEY", hide_env_values = true)]
    pub key: String,
    /// Event lines to send (generated with `wabill gen`'s generator).
    #[arg(long, default_value_t = 1_000_000)]
    pub events: u64,
    /// Events per request.
    #[arg(long, default_value_t = 10_000)]
    pub batch: usize,
    /// Concurrent connections.
    #[arg(long, default_value_t = 2)]
    pub connections: usize,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// `ingest`: send the stream as `POST /v1/events` batches. `check`: `--checks` send checks
    /// (`POST /v1/sends/check`) for the messages of the service's stored charges, after
    /// storing the stream first when the service holds no event yet.
    #[arg(long, value_parser = ["ingest", "check"], default_value = "ingest")]
    pub mode: String,
    /// Send checks to make in `check` mode.
    #[arg(long, default_value_t = 100_000)]
    pub checks: usize,
    /// Days the stream spans, ending today (UTC): the days of history behind the service's
    /// working set, which holds only the last week.
    #[arg(long, default_value_t = 30)]
    pub days: u32,
    /// After an ingest, do not wait for re-rating to bring the charges up to date (by default
    /// the time it takes is printed, from the service's `wabill_rerate_lag_events`).
    #[arg(long)]
    pub no_wait: bool,
    /// Write the synthetic stream even when the service's database already holds events or
    /// tenant data (by default `load` refuses: its WABAs `W1` ... `W50` would mix with them).
    #[arg(long)]
    pub force: bool,
}

/// Exit code: the service's database holds data and `--force` was not given; nothing was sent.
const EXIT_NOT_FRESH: i32 = 2;
/// Exit code: the service rejected events of the stream (counted and explained on stderr).
const EXIT_REJECTED: i32 = 3;

/// How long to wait for re-rating to catch up before giving up on it.
const CATCH_UP_LIMIT: Duration = Duration::from_secs(600);

/// The day `days` days before today (UTC), `YYYY-MM-DD`.
fn days_ago(days: u32) -> String {
    let now = wabill_engine::clock::system_now();
    wabill_formats::time::format_instant(now - i64::from(days) * 86_400_000)[..10].to_string()
}

pub fn run(args: &LoadArgs) -> Result<i32> {
    anyhow::ensure!(args.days > 0, "--days must be at least 1");
    let cfg = GenConfig {
        seed: args.seed,
        events: args.events,
        start: days_ago(args.days),
        days: args.days,
        ..GenConfig::default()
    };
    let held = held_data(args)?;
    if args.mode == "check" && held.events > 0 {
        // Send checks write nothing: they run on whatever the service holds, the stream an
        // earlier `load` stored included, without sending another one.
        let bodies = stored_checks(args)?;
        eprintln!(
            "the service already stores {} events: no stream is sent; checking {} messages of its stored charges",
            held.events,
            bodies.len()
        );
        return checks(args, &bodies);
    }
    if let Some(why) = held.refusal() {
        if !args.force {
            eprintln!(
                "error: [database_not_fresh] the service at {} holds {why}; `wabill load` writes a \
                 synthetic stream of WABAs W1 to W{} into its database, where they would mix with \
                 that data and be billed with it (an earlier load's stream differs too, by its \
                 dates: its events would be rejected). Start the service on a fresh database \
                 (`wabill serve --db load.sqlite`), or pass --force to write anyway. Nothing was sent.",
                args.addr, cfg.wabas
            );
            return Ok(EXIT_NOT_FRESH);
        }
        eprintln!("note: --force: writing the stream although the service holds {why}");
    }
    let mut stream = Vec::new();
    wabill_gen::generate(&cfg, &mut stream)?;
    let text = String::from_utf8(stream)?;
    let lines: Vec<&str> = text.lines().collect();
    if args.mode == "check" {
        let tally = store_quietly(args, &lines)?;
        if !tally.report(lines.len())? {
            return Ok(EXIT_REJECTED);
        }
        caught_up(args.addr, Instant::now())?;
        let bodies = stored_checks(args)?;
        return checks(args, &bodies);
    }
    let batches: Vec<String> = lines
        .chunks(args.batch.max(1))
        .map(|c| c.join("\n"))
        .collect();
    eprintln!(
        "{} lines in {} requests over {} connections",
        lines.len(),
        batches.len(),
        args.connections
    );
    let next = AtomicUsize::new(0);
    let started = Instant::now();
    let results: Vec<(Vec<Duration>, Tally)> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..args.connections.max(1))
            .map(|_| {
                s.spawn(|| -> Result<(Vec<Duration>, Tally)> {
                    let mut conn = Conn::open(args.addr)?;
                    let mut lat = Vec::new();
                    let mut tally = Tally::default();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(body) = batches.get(i) else {
                            return Ok((lat, tally));
                        };
                        let t = Instant::now();
                        let (status, resp) = conn.post("/v1/events", &args.key, body.as_bytes())?;
                        lat.push(t.elapsed());
                        tally.add(i * args.batch.max(1), status, &resp)?;
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("worker panicked"))
            .collect::<Result<_>>()
    })?;
    let elapsed = started.elapsed().as_secs_f64();
    let mut tally = Tally::default();
    let mut latencies = Vec::new();
    for (lat, t) in results {
        latencies.push(lat);
        tally.merge(t);
    }
    let mut all: Vec<Duration> = latencies.into_iter().flatten().collect();
    all.sort();
    let pct = |p: f64| all[((all.len() as f64 - 1.0) * p) as usize].as_secs_f64() * 1e3;
    outln!(
        "{} events in {:.2} s = {:.0} events/s acknowledged (stored durably); request latency p50 {:.1} ms, p99 {:.1} ms",
        lines.len(),
        elapsed,
        lines.len() as f64 / elapsed,
        pct(0.5),
        pct(0.99)
    );
    if !tally.report(lines.len())? {
        return Ok(EXIT_REJECTED);
    }
    if !args.no_wait {
        let waited = caught_up(args.addr, Instant::now())?;
        outln!(
            "charges up to date {:.1} s after the last acknowledgement (wabill_rerate_lag_events 0)",
            waited.as_secs_f64()
        );
    }
    Ok(0)
}

/// Polls the service's `/metrics` until re-rating has caught up with every stored event, and
/// answers how long after `since` that was.
fn caught_up(addr: SocketAddr, since: Instant) -> Result<Duration> {
    let mut conn = Conn::open(addr)?;
    loop {
        let (status, body) = conn.request("GET", "/metrics", None, b"")?;
        if status != 200 {
            bail!("GET /metrics: HTTP {status}");
        }
        let lag = metric(&String::from_utf8_lossy(&body), "wabill_rerate_lag_events")?;
        if lag == 0 {
            return Ok(since.elapsed());
        }
        if since.elapsed() > CATCH_UP_LIMIT {
            bail!(
                "re-rating is still {lag} events behind after {} s",
                CATCH_UP_LIMIT.as_secs()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Stores the stream in order, one batch at a time, and counts what the service made of it.
fn store_quietly(args: &LoadArgs, lines: &[&str]) -> Result<Tally> {
    let mut conn = Conn::open(args.addr)?;
    let mut tally = Tally::default();
    let batch = args.batch.max(1);
    for (i, chunk) in lines.chunks(batch).enumerate() {
        let (status, resp) = conn.post("/v1/events", &args.key, chunk.join("\n").as_bytes())?;
        tally
            .add(i * batch, status, &resp)
            .context("storing the stream")?;
    }
    Ok(tally)
}

/// Send check bodies for the messages of the service's stored charges (WABA, phone, user and
/// category, a free-form message for a service charge), as many as `--checks` asks at most, in
/// the order the service lists them: the stream the service holds is the one checked.
fn stored_checks(args: &LoadArgs) -> Result<Vec<String>> {
    let mut conn = Conn::open(args.addr)?;
    let mut bodies = Vec::new();
    let mut after = String::new();
    while bodies.len() < args.checks {
        let path = format!("/v1/charges?limit=10000{after}");
        let (status, body) = conn.request("GET", &path, Some(&args.key), b"")?;
        if status != 200 {
            bail!(
                "GET {path}: HTTP {status}: {}",
                String::from_utf8_lossy(&body)
            );
        }
        let page: serde_json::Value =
            serde_json::from_slice(&body).with_context(|| format!("GET {path}: not JSON"))?;
        for charge in page["charges"].as_array().into_iter().flatten() {
            if charge.get("unit").is_some_and(|u| u != "message") {
                continue;
            }
            let (Some(phone), Some(user)) = (charge["phone"].as_str(), charge["user"].as_str())
            else {
                continue;
            };
            // The template category the charge was billed under; a free-form message for a
            // service or free entry point charge (its category is no template's).
            let template = match charge["category"].as_str() {
                Some("marketing" | "marketing_lite") => Some("marketing"),
                Some("utility") => Some("utility"),
                Some("authentication" | "authentication_international") => Some("authentication"),
                _ => None,
            };
            let kind = match template {
                Some(c) => format!(r#""type":"template","category":"{c}""#),
                None => r#""type":"text""#.to_string(),
            };
            bodies.push(format!(
                r#"{{"waba":{},"phone":"{phone}","user":"{user}",{kind}}}"#,
                charge["waba"]
            ));
        }
        match page["next"].as_str() {
            Some(next) => after = format!("&after={next}"),
            None => break,
        }
    }
    anyhow::ensure!(
        !bodies.is_empty(),
        "the service holds no charged messages to check (is re-rating behind? GET /metrics, wabill_rerate_lag_events)"
    );
    bodies.truncate(args.checks);
    Ok(bodies)
}

/// Times `--checks` send checks (`POST /v1/sends/check`), cycling through `bodies`, as a
/// platform asks before each send: as of now (the service's clock), with the stream's last week
/// in the service's working set.
fn checks(args: &LoadArgs, bodies: &[String]) -> Result<i32> {
    let next = AtomicUsize::new(0);
    let started = Instant::now();
    let unpriced = AtomicUsize::new(0);
    let latencies: Vec<Vec<Duration>> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..args.connections.max(1))
            .map(|_| {
                s.spawn(|| -> Result<Vec<Duration>> {
                    let mut conn = Conn::open(args.addr)?;
                    let mut lat = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= args.checks {
                            return Ok(lat);
                        }
                        let body = &bodies[i % bodies.len()];
                        let t = Instant::now();
                        let (status, resp) =
                            conn.post("/v1/sends/check", &args.key, body.as_bytes())?;
                        lat.push(t.elapsed());
                        if status == 422 {
                            unpriced.fetch_add(1, Ordering::Relaxed);
                        } else if status != 200 {
                            bail!(
                                "check {i}: HTTP {status}: {}",
                                String::from_utf8_lossy(&resp)
                            );
                        }
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("worker panicked"))
            .collect::<Result<_>>()
    })?;
    let elapsed = started.elapsed().as_secs_f64();
    let mut all: Vec<Duration> = latencies.into_iter().flatten().collect();
    all.sort();
    let pct = |p: f64| all[((all.len() as f64 - 1.0) * p) as usize].as_secs_f64() * 1e3;
    outln!(
        "{} send checks in {:.2} s = {:.0} requests/s over {} connections; latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        all.len(),
        elapsed,
        all.len() as f64 / elapsed,
        args.connections,
        pct(0.5),
        pct(0.99),
        pct(1.0)
    );
    let unpriced = unpriced.into_inner();
    if unpriced > 0 {
        eprintln!(
            "note: {unpriced} check(s) answered 422: the rate data has no price for them (GET /v1/unratable)"
        );
    }
    Ok(0)
}

/// What the service answered to the stream's batches: its counts, and the rejections grouped
/// by why.
#[derive(Default)]
struct Tally {
    stored: u64,
    duplicates: u64,
    rejected: u64,
    /// (field, reason without its values) -> (how many, the stream's line of the first one,
    /// 1-based, and its reason as the service gave it).
    reasons: std::collections::BTreeMap<(String, String), (u64, usize, String)>,
}

/// A reason with its quoted values (`'wamid.0f5c'`) left out, so that the rejections of one
/// kind are counted together.
fn without_values(reason: &str) -> String {
    let mut out = String::with_capacity(reason.len());
    let mut quoted = false;
    for c in reason.chars() {
        if c == '\'' {
            if !quoted {
                out.push_str("'…'");
            }
            quoted = !quoted;
        } else if !quoted {
            out.push(c);
        }
    }
    out
}

impl Tally {
    /// Adds one answer to a batch whose first line is the stream's line `first` (0-based).
    fn add(&mut self, first: usize, status: u16, body: &[u8]) -> Result<()> {
        let text = String::from_utf8_lossy(body);
        if status != 200 {
            bail!("the batch from line {}: HTTP {status}: {text}", first + 1);
        }
        let v: serde_json::Value = serde_json::from_slice(body)
            .with_context(|| format!("the batch from line {}: not JSON: {text}", first + 1))?;
        let count = |name: &str| -> Result<u64> {
            v[name].as_u64().with_context(|| {
                format!(
                    "the batch from line {}: no count {name:?}: {text}",
                    first + 1
                )
            })
        };
        self.stored += count("stored")?;
        self.duplicates += count("duplicates")?;
        self.rejected += count("rejected")?;
        for e in v["errors"].as_array().into_iter().flatten() {
            let field = e["field"].as_str().unwrap_or("-").to_string();
            let reason = e["reason"].as_str().unwrap_or("");
            let line = first + e["index"].as_u64().unwrap_or(0) as usize + 1;
            let entry = self
                .reasons
                .entry((field, without_values(reason)))
                .or_insert((0, line, reason.to_string()));
            entry.0 += 1;
            if line < entry.1 {
                (entry.1, entry.2) = (line, reason.to_string());
            }
        }
        Ok(())
    }

    fn merge(&mut self, other: Tally) {
        self.stored += other.stored;
        self.duplicates += other.duplicates;
        self.rejected += other.rejected;
        for (k, (n, line, example)) in other.reasons {
            let entry = self.reasons.entry(k).or_insert((0, line, example.clone()));
            entry.0 += n;
            if line < entry.1 {
                (entry.1, entry.2) = (line, example);
            }
        }
    }

    /// Prints the counts (stdout) and, when events were rejected, why (stderr); answers whether
    /// nothing was rejected. A generated stream is valid: every rejection is unexpected.
    fn report(&self, sent: usize) -> Result<bool> {
        outln!(
            "{sent} events sent: {} stored, {} duplicates, {} rejected",
            self.stored,
            self.duplicates,
            self.rejected
        );
        if self.rejected == 0 {
            return Ok(true);
        }
        eprintln!(
            "error: [events_rejected] the service rejected {} of the {sent} events; by reason:",
            self.rejected
        );
        let mut reasons: Vec<_> = self.reasons.iter().collect();
        reasons.sort_by(|a, b| b.1 .0.cmp(&a.1 .0).then(a.0.cmp(b.0)));
        for ((field, reason), (n, line, example)) in reasons.iter().take(20) {
            eprintln!(
                "  {n} x field '{field}': {reason} (the first: the stream's line {line}: {example})"
            );
        }
        if reasons.len() > 20 {
            eprintln!("  ... and {} other reasons", reasons.len() - 20);
        }
        Ok(false)
    }
}

/// What the service's database holds already, as far as the key may see.
struct Held {
    /// Events stored (`wabill_events_stored_seq` of `/metrics`).
    events: u64,
    /// Audit entries of tenant data (set-ups, licences, invoices, alert settings): the kinds of
    /// data that name WABAs without any event. `None` when the key may not read the audit log.
    tenant_actions: Option<Vec<String>>,
}

impl Held {
    /// Why the database is not fresh, or `None` when it is.
    fn refusal(&self) -> Option<String> {
        let mut why = Vec::new();
        if self.events > 0 {
            why.push(format!("{} stored events", self.events));
        }
        if let Some(actions) = self.tenant_actions.as_ref().filter(|a| !a.is_empty()) {
            why.push(format!("tenant data (audit log: {})", actions.join(", ")));
        }
        (!why.is_empty()).then(|| why.join(" and "))
    }
}

/// Reads what the service holds: its stored events from `/metrics`, and, with an admin key,
/// whether the audit log records tenant data (API keys are expected: the load's own).
fn held_data(args: &LoadArgs) -> Result<Held> {
    let mut conn = Conn::open(args.addr)?;
    let (status, body) = conn.request("GET", "/metrics", None, b"")?;
    if status != 200 {
        bail!("GET /metrics: HTTP {status}");
    }
    let events = metric(&String::from_utf8_lossy(&body), "wabill_events_stored_seq")?;
    let mut actions = Vec::new();
    let mut after = 0i64;
    loop {
        let path = format!("/v1/audit?after={after}&limit=1000");
        let (status, body) = conn.request("GET", &path, Some(&args.key), b"")?;
        if status == 403 {
            eprintln!("note: this key may not read the audit log: tenant data is not checked");
            return Ok(Held {
                events,
                tenant_actions: None,
            });
        }
        if status != 200 {
            bail!(
                "GET {path}: HTTP {status}: {}",
                String::from_utf8_lossy(&body)
            );
        }
        let page: serde_json::Value = serde_json::from_slice(&body)?;
        let entries = page["entries"].as_array().cloned().unwrap_or_default();
        for e in &entries {
            let action = e["action"].as_str().unwrap_or_default();
            if !action.starts_with("key.") && !actions.iter().any(|a| a == action) {
                actions.push(action.to_string());
            }
            after = after.max(e["id"].as_i64().unwrap_or(after));
        }
        if entries.len() < 1000 {
            return Ok(Held {
                events,
                tenant_actions: Some(actions),
            });
        }
    }
}

/// The value of an unlabelled metric of a Prometheus text.
fn metric(text: &str, name: &str) -> Result<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|rest| rest.strip_prefix(' ')))
        .with_context(|| format!("the service exports no {name} (an older version?)"))?
        .trim()
        .parse()
        .with_context(|| format!("{name} is not a count"))
}

/// One keep-alive HTTP/1.1 connection.
struct Conn {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    addr: SocketAddr,
}

impl Conn {
    fn open(addr: SocketAddr) -> Result<Conn> {
        let s = TcpStream::connect(addr).with_context(|| format!("connecting to {addr}"))?;
        s.set_nodelay(true)?;
        Ok(Conn {
            reader: BufReader::new(s.try_clone()?),
            writer: s,
            addr,
        })
    }

    fn post(&mut self, path: &str, key: &str, body: &[u8]) -> Result<(u16, Vec<u8>)> {
        self.request("POST", path, Some(key), body)
    }

    fn request(
        &mut self,
        method: &str,
        path: &str,
        key: Option<&str>,
        body: &[u8],
    ) -> Result<(u16, Vec<u8>)> {
        let auth = key.map_or_else(String::new, |k| format!("Authorization: Bearer {k}\r\n"));
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\n{auth}Content-Type: application/x-ndjson\r\nContent-Length: {}\r\n\r\n",
            self.addr,
            body.len()
        );
        // One write, so that a request is one segment on the wire, as a client library sends it.
        let mut request = Vec::with_capacity(head.len() + body.len());
        request.extend_from_slice(head.as_bytes());
        request.extend_from_slice(body);
        self.writer.write_all(&request)?;
        let mut status_line = String::new();
        self.reader.read_line(&mut status_line)?;
        let status: u16 = status_line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .with_context(|| format!("bad status line {status_line:?}"))?;
        let mut len = 0usize;
        let mut chunked = false;
        loop {
            let mut h = String::new();
            self.reader.read_line(&mut h)?;
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    len = v.trim().parse()?;
                } else if k.eq_ignore_ascii_case("transfer-encoding") {
                    chunked = v.trim().eq_ignore_ascii_case("chunked");
                }
            }
        }
        if !chunked {
            let mut resp = vec![0; len];
            self.reader.read_exact(&mut resp)?;
            return Ok((status, resp));
        }
        // A streamed answer: chunks of `SIZE-in-hex CRLF data CRLF`, then `0 CRLF CRLF`.
        let mut resp = Vec::new();
        loop {
            let mut size = String::new();
            self.reader.read_line(&mut size)?;
            let size = size.trim_end();
            let hex = size.split(';').next().unwrap_or_default().trim();
            let n = usize::from_str_radix(hex, 16)
                .with_context(|| format!("bad chunk size {size:?}"))?;
            if n == 0 {
                // Trailers, if any, end with an empty line.
                loop {
                    let mut t = String::new();
                    self.reader.read_line(&mut t)?;
                    if t.trim_end().is_empty() {
                        return Ok((status, resp));
                    }
                }
            }
            let start = resp.len();
            resp.resize(start + n, 0);
            self.reader.read_exact(&mut resp[start..])?;
            let mut crlf = [0u8; 2];
            self.reader.read_exact(&mut crlf)?;
        }
    }
}
