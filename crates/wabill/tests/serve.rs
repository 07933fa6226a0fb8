//! The real binary as an operator runs it: `wabill serve` over real HTTP on a SQLite file,
//! killed with SIGKILL in the middle of a stream of batches and restarted, must have kept every
//! batch it acknowledged and converge to what `wabill rate` says of the same events; and
//! `wabill reconcile`, the command-line twin of the reconciliation route.

use serde_json::Value;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn wabill() -> Command {
    Command::new(env!("CARGO_BIN_EXE_wabill"))
}

fn run(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = wabill()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).unwrap();
    }
    drop(input);
    child.wait_with_output().unwrap()
}

fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("wabill-serve-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A minimal HTTP/1.1 exchange (one request per connection): the status and the body.
fn http(
    addr: &str,
    method: &str,
    path: &str,
    key: &str,
    body: &str,
) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(20)))?;
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {key}\r\n\
         Content-Type: application/x-ndjson\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(req.as_bytes())?;
    s.write_all(body.as_bytes())?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw).to_string();
    let (head, rest) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| std::io::Error::other(format!("no complete answer: {text:?}")))?;
    let status: u16 = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("no status line: {head:?}")))?;
    let chunked = head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    let body = if chunked {
        let mut out = String::new();
        let mut rest = rest;
        while let Some((size, tail)) = rest.split_once("\r\n") {
            let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
            if n == 0 {
                break;
            }
            out.push_str(&tail[..n]);
            rest = &tail[n + 2..];
        }
        out
    } else {
        rest.to_string()
    };
    Ok((status, body))
}

struct Server {
    child: Child,
    addr: String,
}

impl Server {
    fn start(args: &[&str], addr: String, log: &Path) -> Server {
        Server::start_with_env(args, &[], addr, log)
    }

    fn start_with_env(args: &[&str], env: &[(&str, &str)], addr: String, log: &Path) -> Server {
        let child = wabill()
            .arg("serve")
            .args(args)
            .envs(env.iter().copied())
            .env("WABILL_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log).unwrap())
            .spawn()
            .unwrap();
        // Owned at once, so that the process is killed and reaped whatever happens next.
        let server = Server { child, addr };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if matches!(http(&server.addr, "GET", "/healthz", "", ""), Ok((200, _))) {
                return server;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "wabill serve did not answer on {}: {}",
            server.addr,
            std::fs::read_to_string(log).unwrap_or_default()
        );
    }

    /// SIGKILL: no shutdown handler runs, nothing is flushed.
    fn kill(self) {
        let pid = self.child.id().to_string();
        let done = Command::new("kill").args(["-9", &pid]).status().unwrap();
        assert!(done.success());
        // Drop reaps it.
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A new admin key in the database file `db`, as `wabill keys create` prints it.
fn admin_key(db: &str) -> String {
    let out = run(
        &[
            "keys", "create", "--name", "ops", "--role", "admin", "--db", db,
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(0));
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// Every stored charge, all pages, one JSON value each.
fn served_charges(addr: &str, key: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut after = String::new();
    loop {
        let (status, body) = http(
            addr,
            "GET",
            &format!("/v1/charges?limit=10000{after}"),
            key,
            "",
        )
        .unwrap();
        assert_eq!(status, 200, "{body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        out.extend(v["charges"].as_array().unwrap().iter().cloned());
        match v["next"].as_str() {
            Some(n) => after = format!("&after={n}"),
            None => return out,
        }
    }
}

/// What `wabill rate` prints for these lines.
fn rated(lines: &str) -> Vec<Value> {
    let out = run(&["rate", "-"], Some(lines));
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Polls the charges until they equal one of the expected sets (re-rating runs in the
/// background), and returns which.
fn settles_to(addr: &str, key: &str, expected: &[&Vec<Value>]) -> usize {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let got = served_charges(addr, key);
        if let Some(i) = expected.iter().position(|e| **e == got) {
            return i;
        }
        assert!(
            Instant::now() < deadline,
            "the service never settled to the batch result: {} charges, expected {:?}",
            got.len(),
            expected.iter().map(|e| e.len()).collect::<Vec<_>>()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn acknowledged_batches_survive_sigkill_and_converge_to_wabill_rate() {
    let dir = tmpdir("durability");
    let db = dir.join("wabill.sqlite");
    let db_s = db.to_str().unwrap().to_string();
    let key = admin_key(&db_s);

    let stream = run(
        &[
            "gen",
            "--seed",
            "3",
            "--events",
            "5000",
            "--wabas",
            "4",
            "--users",
            "300",
            "--start",
            "2025-10-20",
            "--days",
            "20",
        ],
        None,
    );
    let stream = String::from_utf8(stream.stdout).unwrap();
    let lines: Vec<&str> = stream.lines().collect();
    let batches: Vec<String> = lines.chunks(100).map(|c| c.join("\n")).collect();
    assert!(batches.len() >= 40);

    // First start: everything from a configuration file.
    let port = free_port();
    let config = dir.join("wabill.json");
    std::fs::write(
        &config,
        format!(r#"{{"db": {db_s:?}, "listen": "127.0.0.1:{port}"}}"#),
    )
    .unwrap();
    let server = Server::start(
        &["--config", config.to_str().unwrap()],
        format!("127.0.0.1:{port}"),
        &dir.join("serve-1.log"),
    );

    // A sustained stream of batches from another thread; a batch counts as acknowledged only
    // once its 200 has been read.
    let acked = Arc::new(Mutex::new(Vec::<usize>::new()));
    let sender = {
        let (acked, batches, addr, key) = (
            acked.clone(),
            batches.clone(),
            server.addr.clone(),
            key.clone(),
        );
        std::thread::spawn(move || {
            for (i, b) in batches.iter().enumerate() {
                match http(&addr, "POST", "/v1/events", &key, b) {
                    Ok((200, body)) => {
                        let v: Value = serde_json::from_str(&body).unwrap();
                        assert_eq!(v["rejected"], 0, "{body}");
                        acked.lock().unwrap().push(i);
                    }
                    _ => return,
                }
                std::thread::sleep(Duration::from_millis(15));
            }
        })
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while acked.lock().unwrap().len() < 12 {
        assert!(Instant::now() < deadline, "the stream is too slow");
        std::thread::sleep(Duration::from_millis(2));
    }
    server.kill();
    sender.join().unwrap();
    let acked: Vec<usize> = acked.lock().unwrap().clone();
    let n = acked.len();
    assert_eq!(
        acked,
        (0..n).collect::<Vec<_>>(),
        "batches are sent in order"
    );
    assert!(n < batches.len(), "killed mid-stream");

    // Restart on the same file, configured by flags this time.
    let port = free_port();
    let server = Server::start(
        &["--db", &db_s, "--listen", &format!("127.0.0.1:{port}")],
        format!("127.0.0.1:{port}"),
        &dir.join("serve-2.log"),
    );
    // Without any new event, the restarted service re-rates what the kill left unrated: its
    // charges become those of the acknowledged events (plus the batch in flight at the kill,
    // if it was committed without its answer getting out).
    let acked_only = rated(&batches[..n].join("\n"));
    let with_in_flight = rated(&batches[..=n].join("\n"));
    settles_to(&server.addr, &key, &[&acked_only, &with_in_flight]);

    // Every acknowledged batch is stored: sent again, it is all duplicates.
    for b in &batches[..n] {
        let (status, body) = http(&server.addr, "POST", "/v1/events", &key, b).unwrap();
        assert_eq!(status, 200, "{body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["stored"], 0, "an acknowledged batch was lost: {body}");
        assert_eq!(v["rejected"], 0, "{body}");
        assert_eq!(v["duplicates"], b.lines().count(), "{body}");
    }
    // The rest of the stream, then everything is acknowledged and equals the batch rating.
    for b in &batches[n..] {
        let (status, body) = http(&server.addr, "POST", "/v1/events", &key, b).unwrap();
        assert_eq!(status, 200, "{body}");
    }
    let everything = rated(&stream);
    settles_to(&server.addr, &key, &[&everything]);
    server.kill();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn load_waits_until_the_charges_are_final() {
    let dir = tmpdir("load");
    let db = dir.join("wabill.sqlite");
    let db_s = db.to_str().unwrap().to_string();
    let key = admin_key(&db_s);
    let port = free_port();
    let server = Server::start(
        &["--db", &db_s, "--listen", &format!("127.0.0.1:{port}")],
        format!("127.0.0.1:{port}"),
        &dir.join("serve.log"),
    );
    let load = run(
        &[
            "load",
            "--addr",
            &server.addr,
            "--key",
            &key,
            "--events",
            "4000",
            "--batch",
            "500",
            "--days",
            "10",
        ],
        None,
    );
    let stdout = String::from_utf8_lossy(&load.stdout);
    assert_eq!(
        load.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&load.stderr)
    );
    assert!(stdout.contains("events/s acknowledged"), "{stdout}");
    assert!(
        stdout.contains("charges up to date"),
        "the load waits for re-rating: {stdout}"
    );
    // Once it says so, the stored charges are final: what `wabill rate` gives for the stream
    // it sent (its generator, seed 1, the last 10 days), read at once, without polling.
    let now_ms = wabill_engine::clock::system_now();
    let start = wabill_formats::time::format_instant(now_ms - 10 * 86_400_000)[..10].to_string();
    let stream = run(
        &["gen", "--events", "4000", "--start", &start, "--days", "10"],
        None,
    );
    let expected = rated(&String::from_utf8(stream.stdout).unwrap());
    assert!(expected.len() > 500);
    assert_eq!(served_charges(&server.addr, &key), expected);
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn reconcile_prints_disagreements_and_totals_and_exits_0() {
    let account = r#"{"kind":"account","waba":"W1","timezone":"UTC","currency":"USD","primary_country":"BR"}"#;
    let m1 = r#"{"kind":"outbound","id":"m1","at":"2025-11-05T10:00:00Z","waba":"W1","phone":"15550001111","user":"5511988887777","type":"template","category":"marketing"}"#;
    let m2 = r#"{"kind":"outbound","id":"m2","at":"2025-11-05T11:00:00Z","waba":"W1","phone":"15550001111","user":"5511988887777","type":"template","category":"marketing"}"#;
    let hook = r#"{"object":"whatsapp_business_account","entry":[{"id":"W1","changes":[{"field":"messages","value":{"metadata":{"display_phone_number":"15550001111"},"statuses":[{"id":"m1","status":"delivered","timestamp":"1762336802","recipient_id":"5511988887777","pricing":{"billable":true,"pricing_model":"PMP","type":"regular","category":"utility"}},{"id":"m2","status":"delivered","timestamp":"1762340402","recipient_id":"5511988887777","pricing":{"billable":true,"pricing_model":"PMP","type":"regular","category":"marketing"}},{"id":"m9","status":"sent","timestamp":"1762340402","recipient_id":"5511988887777","pricing":{"billable":true,"pricing_model":"PMP","type":"regular","category":"marketing"}},{"id":"m8","status":"sent","timestamp":"1762340402","pricing":{"billable":true,"pricing_model":"PMP","type":"regular","category":"marketing"}}]}}]}]}"#;
    let dir = tmpdir("reconcile");
    let events = dir.join("events.jsonl");
    let hooks = dir.join("webhooks.jsonl");
    std::fs::write(&events, format!("{account}\n{m1}\n{m2}\n")).unwrap();
    std::fs::write(&hooks, format!("{hook}\n")).unwrap();
    let out = run(
        &[
            "reconcile",
            events.to_str().unwrap(),
            hooks.to_str().unwrap(),
        ],
        None,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let lines: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // m1: the platform said marketing, Meta bills utility: charged as utility (decisions.md
    // D112), so the charge agrees with Meta and the platform's category is listed. m9 has no
    // outbound event and is rated from its status (D110); m8's status names no recipient, so
    // only Meta priced it.
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(lines[0]["id"], "m8");
    assert_eq!(lines[0]["wabill"], Value::Null);
    assert_eq!(lines[1]["id"], "m1");
    assert_eq!(lines[1]["differences"][0]["field"], "platform_category");
    assert_eq!(lines[1]["differences"][0]["platform"], "marketing");
    assert_eq!(lines[1]["differences"][0]["meta"], "utility");
    assert!(
        stderr.contains("compared 3 message(s): 3 agree, 0 disagree; 0 charged by wabill only, 1 priced by Meta only"),
        "{stderr}"
    );
    let table = run(
        &[
            "reconcile",
            "--format",
            "table",
            events.to_str().unwrap(),
            hooks.to_str().unwrap(),
        ],
        None,
    );
    let table = String::from_utf8(table.stdout).unwrap();
    assert!(
        table.lines().any(|l| l.starts_with("m1")
            && l.contains("platform_category")
            && l.contains("marketing")
            && l.contains("utility")),
        "{table}"
    );

    // Bad input and unratable messages fail like `wabill rate`.
    let bad = run(&["reconcile", "-"], Some("not json\n"));
    assert_eq!(bad.status.code(), Some(2));
    let unratable = run(&["reconcile", "-"], Some(&format!("{m1}\n")));
    assert_eq!(unratable.status.code(), Some(3));
    let _ = std::fs::remove_dir_all(&dir);
}

/// The limits reach the service from flags and the environment: a half-sent request is
/// dropped after `--header-timeout-secs`, and a key over `WABILL_RATE_LIMIT_PER_SEC` gets 429.
#[test]
fn serve_takes_its_limits_from_flags_and_environment() {
    let dir = tmpdir("limits");
    let db = dir.join("wabill.sqlite").display().to_string();
    let key = admin_key(&db);
    let addr = format!("127.0.0.1:{}", free_port());
    let server = Server::start_with_env(
        &["--db", &db, "--listen", &addr, "--header-timeout-secs", "1"],
        &[
            ("WABILL_RATE_LIMIT_PER_SEC", "1"),
            ("WABILL_RATE_LIMIT_BURST", "3"),
        ],
        addr.clone(),
        &dir.join("serve.log"),
    );
    let mut slow = TcpStream::connect(&addr).unwrap();
    slow.write_all(b"GET /heal").unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let t = Instant::now();
    let mut buf = [0u8; 64];
    let n = slow.read(&mut buf).unwrap_or(0);
    assert_eq!(n, 0, "closed without an answer");
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    let statuses: Vec<u16> = (0..10)
        .map(|_| http(&addr, "GET", "/v1/charges", &key, "").unwrap().0)
        .collect();
    assert!(statuses.contains(&429), "{statuses:?}");
    assert_eq!(http(&addr, "GET", "/readyz", "", "").unwrap().0, 200);
    drop(server);
}

#[test]
fn serve_logs_one_json_line_per_request_on_stderr_and_nothing_on_stdout() {
    let dir = tmpdir("requests-log");
    let db = dir.join("wabill.sqlite").display().to_string();
    let key = admin_key(&db);
    let addr = format!("127.0.0.1:{}", free_port());
    let (out, err) = (dir.join("stdout"), dir.join("stderr"));
    let mut child = wabill()
        .args(["serve", "--db", &db, "--listen", &addr])
        .env("WABILL_LOG", "info")
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !matches!(http(&addr, "GET", "/healthz", "", ""), Ok((200, _))) {
        assert!(Instant::now() < deadline, "wabill serve did not answer");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        http(&addr, "GET", "/v1/tenants/secret-tenant", &key, "")
            .unwrap()
            .0,
        404
    );
    assert_eq!(http(&addr, "GET", "/v1/charges", "", "").unwrap().0, 401);
    assert_eq!(
        http(&addr, "DELETE", "/no/such/route", "", "").unwrap().0,
        404
    );
    // Lines are written as requests are answered; give the last one a moment.
    std::thread::sleep(Duration::from_millis(200));
    let _ = child.kill();
    let _ = child.wait();

    assert_eq!(
        std::fs::read_to_string(&out).unwrap(),
        "",
        "stdout stays empty"
    );
    let log = std::fs::read_to_string(&err).unwrap();
    let requests: Vec<Value> = log
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["fields"]["message"] == "request")
        .collect();
    let seen: Vec<(String, String, u64)> = requests
        .iter()
        .map(|v| {
            let f = &v["fields"];
            assert!(f["duration_ms"].as_f64().unwrap() >= 0.0, "{v}");
            (
                f["method"].as_str().unwrap().to_string(),
                f["route"].as_str().unwrap().to_string(),
                f["status"].as_u64().unwrap(),
            )
        })
        .collect();
    let tail = &seen[seen.len() - 4..];
    assert_eq!(tail[0], ("GET".into(), "/healthz".into(), 200), "{log}");
    assert_eq!(
        &tail[1..],
        &[
            ("GET".into(), "/v1/tenants/{id}".into(), 404),
            ("GET".into(), "/v1/charges".into(), 401),
            ("DELETE".into(), "-".into(), 404),
        ],
        "{log}"
    );
    assert!(
        !log.contains("secret-tenant") && !log.contains(&key),
        "the log names route templates, never paths or keys: {log}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Issue 15 with the real binary: `wabill serve --rates DIR` given call lines and Meta's calls
/// envelopes (through `POST /v1/events`, shuffled, in batches, repeated) among messages lists
/// the call lines `wabill rate --rates DIR` prints for the same lines, and the messages a
/// call's window makes free are free in both. DIR is the bundled data with a test-only calling
/// card (no public source gives Meta's, decisions.md D124).
#[test]
fn serve_rates_calls_as_wabill_rate_does() {
    let dir = tmpdir("calls");
    let rates = dir.join("rates");
    std::fs::create_dir_all(&rates).unwrap();
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data");
    for f in ["rates.csv", "markets.csv", "rate_gaps.csv"] {
        std::fs::copy(data.join(f), rates.join(f)).unwrap();
    }
    std::fs::write(
        rates.join("call_rates.csv"),
        "effective_from,currency,market,tier_min,tier_max,rate_per_minute,source\n\
         2026-01-01,USD,Brazil,0,3,0.0500,test-only\n\
         2026-01-01,USD,Brazil,4,,0.0300,test-only\n\
         2026-01-01,USD,India,,,0.0100,test-only\n",
    )
    .unwrap();
    let account =
        r#"{"kind":"account","waba":"W1","portfolio":"B1","timezone":"UTC","currency":"USD"}"#;
    let mut lines = vec![account.to_string()];
    let users = ["5511988887777", "5511988880000", "919876543210"];
    for n in 0..24u64 {
        let user = users[(n % 3) as usize];
        let start = 1_777_000_000 + n * 3_600;
        let duration = 20 + n * 17;
        if n % 2 == 0 {
            lines.push(format!(
                r#"{{"kind":"call","id":"wacid.{n}","waba":"W1","phone":"15550001111","user":"{user}","direction":"{}","start":{start},"end":{},"duration":{duration},"outcome":"completed"}}"#,
                if n % 4 == 0 { "business_initiated" } else { "user_initiated" },
                start + duration
            ));
        } else {
            let envelope = |item: String| {
                format!(
                    r#"{{"object":"whatsapp_business_account","entry":[{{"id":"W1","changes":[{{"field":"calls","value":{{"messaging_product":"whatsapp","metadata":{{"display_phone_number":"15550001111","phone_number_id":"1"}},"calls":[{item}]}}}}]}}]}}"#
                )
            };
            lines.push(envelope(format!(
                r#"{{"id":"wacid.{n}","to":"{user}","from":"15550001111","event":"connect","timestamp":"{start}","direction":"BUSINESS_INITIATED"}}"#
            )));
            lines.push(envelope(format!(
                r#"{{"id":"wacid.{n}","to":"{user}","from":"15550001111","event":"terminate","timestamp":"{}","direction":"BUSINESS_INITIATED","status":"COMPLETED","start_time":"{start}","end_time":"{}","duration":{duration}}}"#,
                start + duration + 1,
                start + duration
            )));
        }
        // A utility template an hour after each call: free in the window a call opened.
        lines.push(format!(
            r#"{{"kind":"outbound","id":"wamid.{n}","at":{},"waba":"W1","phone":"15550001111","user":"{user}","type":"template","category":"utility"}}"#,
            start + 1_800
        ));
        lines.push(format!(
            r#"{{"kind":"status","id":"wamid.{n}","at":{},"status":"delivered"}}"#,
            start + 1_805
        ));
    }
    let text = lines.join("\n") + "\n";
    let input = dir.join("in.jsonl");
    std::fs::write(&input, &text).unwrap();
    let out = run(
        &[
            "rate",
            "--rates",
            rates.to_str().unwrap(),
            input.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let all: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let (expected_calls, expected_messages): (Vec<Value>, Vec<Value>) =
        all.into_iter().partition(|v| v["unit"] == "call");
    assert_eq!(expected_calls.len(), 24);
    assert!(
        expected_calls.iter().any(|c| c["tier"] == "4:MAX"),
        "{expected_calls:?}"
    );
    assert!(
        expected_messages.iter().any(|m| m["billable"] == false),
        "a window opened by a call makes a template free: {expected_messages:?}"
    );

    let db = dir.join("calls.sqlite");
    let db = db.to_str().unwrap();
    let key = admin_key(db);
    let addr = format!("127.0.0.1:{}", free_port());
    let server = Server::start(
        &[
            "--db",
            db,
            "--listen",
            &addr,
            "--rates",
            rates.to_str().unwrap(),
        ],
        addr.clone(),
        &dir.join("serve.log"),
    );
    // Shuffled (a fixed permutation), in batches of five, every fourth line sent twice.
    let mut order: Vec<&String> = lines.iter().collect();
    for i in (1..order.len()).rev() {
        order.swap(i, (i * 7 + 3) % (i + 1));
    }
    let again: Vec<&String> = order.iter().step_by(4).copied().collect();
    order.extend(again);
    for batch in order.chunks(5) {
        let body: Vec<&str> = batch.iter().map(|l| l.as_str()).collect();
        let (status, answer) =
            http(&server.addr, "POST", "/v1/events", &key, &body.join("\n")).unwrap();
        assert_eq!(status, 200, "{answer}");
        let v: Value = serde_json::from_str(&answer).unwrap();
        assert_eq!(v["rejected"], 0, "{answer}");
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, body) = http(
            &server.addr,
            "GET",
            "/v1/charges?unit=call&limit=10000",
            &key,
            "",
        )
        .unwrap();
        assert_eq!(status, 200, "{body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        let got = v["charges"].as_array().unwrap().clone();
        if got == expected_calls && served_charges(&server.addr, &key) == expected_messages {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the service's calls never equalled wabill rate's: {} lines, expected {}",
            got.len(),
            expected_calls.len()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}
