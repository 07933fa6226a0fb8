//! `wabill load`: drives a running `wabill serve` from a second process over loopback HTTP, to
//! measure batched durable ingest (BENCHMARKS.md). A minimal HTTP/1.1 client on keep-alive
//! connections, one per worker thread: the point is to measure the server, not a client stack.

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
    /// `ingest`: send the stream as `POST /v1/events` batches. `check`: send the stream first,
    /// then `--checks` send checks (`POST /v1/sends/check`) for its users.
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
}

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
    let mut stream = Vec::new();
    wabill_gen::generate(&cfg, &mut stream)?;
    let text = String::from_utf8(stream)?;
    let lines: Vec<&str> = text.lines().collect();
    if args.mode == "check" {
        return checks(args, &lines);
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
    let latencies: Vec<Vec<Duration>> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..args.connections.max(1))
            .map(|_| {
                s.spawn(|| -> Result<Vec<Duration>> {
                    let mut conn = Conn::open(args.addr)?;
                    let mut lat = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(body) = batches.get(i) else {
                            return Ok(lat);
                        };
                        let t = Instant::now();
                        let (status, resp) = conn.post("/v1/events", &args.key, body.as_bytes())?;
                        lat.push(t.elapsed());
                        if status != 200 {
                            bail!(
                                "request {i}: HTTP {status}: {}",
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
        "{} events in {:.2} s = {:.0} events/s acknowledged (stored durably); request latency p50 {:.1} ms, p99 {:.1} ms",
        lines.len(),
        elapsed,
        lines.len() as f64 / elapsed,
        pct(0.5),
        pct(0.99)
    );
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
        let text = String::from_utf8_lossy(&body);
        let lag: u64 = text
            .lines()
            .find_map(|l| l.strip_prefix("wabill_rerate_lag_events "))
            .context("the service exports no wabill_rerate_lag_events (an older version?)")?
            .trim()
            .parse()
            .context("wabill_rerate_lag_events is not a count")?;
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

/// Stores the stream quietly, then times send checks for (WABA, phone, user) triples of its
/// outbound messages, as a platform asks before each send: as of now (the service's clock),
/// with the stream's last week in the service's working set.
fn checks(args: &LoadArgs, lines: &[&str]) -> Result<i32> {
    let mut conn = Conn::open(args.addr)?;
    for chunk in lines.chunks(args.batch.max(1)) {
        let (status, resp) = conn.post("/v1/events", &args.key, chunk.join("\n").as_bytes())?;
        if status != 200 {
            bail!(
                "storing the stream: HTTP {status}: {}",
                String::from_utf8_lossy(&resp)
            );
        }
    }
    let mut bodies = Vec::new();
    for l in lines.iter().filter(|l| l.contains(r#""kind":"outbound""#)) {
        let v: serde_json::Value = serde_json::from_str(l)?;
        let kind = match v["category"].as_str() {
            Some(c) => format!(r#""type":"template","category":"{c}""#),
            None => r#""type":"text""#.to_string(),
        };
        bodies.push(format!(
            r#"{{"waba":{},"phone":{},"user":{},{kind}}}"#,
            v["waba"], v["phone"], v["user"]
        ));
    }
    anyhow::ensure!(!bodies.is_empty(), "the stream has no outbound messages");
    let next = AtomicUsize::new(0);
    let started = Instant::now();
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
                        if status != 200 && status != 422 {
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
    Ok(0)
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
                }
            }
        }
        let mut resp = vec![0; len];
        self.reader.read_exact(&mut resp)?;
        Ok((status, resp))
    }
}
