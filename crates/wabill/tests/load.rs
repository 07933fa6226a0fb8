//! `wabill load` against a real `wabill serve`: it writes its synthetic WABAs only into a
//! fresh database unless forced, counts what the service stored, found duplicate and rejected,
//! fails on rejections, and checks the stream the service holds (decisions.md D140).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_wabill"))
        .args(args)
        .env_remove("WABILL_KEY")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).to_string()
}

fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("wabill-load-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// One request on its own connection: the status and the body (not chunked: the routes used
/// here answer with a length).
fn http(addr: &str, method: &str, path: &str, key: &str, body: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {key}\r\n\
         Content-Type: application/x-ndjson\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let (head, rest) = raw.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, rest.to_string())
}

struct Server {
    child: Child,
    addr: String,
    dir: PathBuf,
    key: String,
}

impl Server {
    /// `wabill serve` on the database `db` of `dir` (prepared by `setup` first), with an admin
    /// key created as an operator does.
    fn start(dir: &Path, setup: impl FnOnce(&str)) -> Server {
        let db = dir.join("wabill.sqlite").to_str().unwrap().to_string();
        let out = run(&[
            "keys", "create", "--name", "load", "--role", "admin", "--db", &db,
        ]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        let key = text(&out.stdout).trim().to_string();
        setup(&db);
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr = format!("127.0.0.1:{port}");
        let child = Command::new(env!("CARGO_BIN_EXE_wabill"))
            .args(["serve", "--db", &db, "--listen", &addr])
            .env("WABILL_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("serve.log")).unwrap())
            .spawn()
            .unwrap();
        let server = Server {
            child,
            addr,
            dir: dir.to_path_buf(),
            key,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(&server.addr).is_err() {
            assert!(Instant::now() < deadline, "the service never listened");
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }

    /// `wabill load` against this service, with its key.
    fn load(&self, args: &[&str]) -> Output {
        let mut all = vec!["load", "--addr", &self.addr, "--key", &self.key];
        all.extend_from_slice(args);
        run(&all)
    }

    /// Events the service has stored (`wabill_events_stored_seq`).
    fn stored(&self) -> u64 {
        let (status, body) = http(&self.addr, "GET", "/metrics", "", "");
        assert_eq!(status, 200);
        body.lines()
            .find_map(|l| l.strip_prefix("wabill_events_stored_seq "))
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The counts of the line `N events sent: S stored, D duplicates, R rejected`.
fn counts(stdout: &str) -> (u64, u64, u64, u64) {
    let line = stdout
        .lines()
        .find(|l| l.contains(" events sent: "))
        .unwrap_or_else(|| panic!("no counts: {stdout}"));
    let n: Vec<u64> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter(|w| !w.is_empty())
        .map(|w| w.parse().unwrap())
        .collect();
    assert_eq!(n.len(), 4, "{line}");
    (n[0], n[1], n[2], n[3])
}

#[test]
fn load_refuses_a_database_holding_other_events_unless_forced() {
    let server = Server::start(&tmpdir("events"), |_| {});
    // A platform's own WABA, already in the database.
    let own = "{\"kind\":\"account\",\"waba\":\"109876543210\",\"timezone\":\"UTC\",\"currency\":\"USD\"}\n\
               {\"kind\":\"inbound\",\"id\":\"wamid.X1\",\"at\":\"2026-11-02T10:00:00Z\",\"waba\":\"109876543210\",\"phone\":\"15550001111\",\"user\":\"5511988887777\"}";
    let (status, body) = http(&server.addr, "POST", "/v1/events", &server.key, own);
    assert_eq!(status, 200, "{body}");
    let before = server.stored();
    assert_eq!(before, 2);

    let out = server.load(&["--events", "2000", "--days", "5", "--no-wait"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("[database_not_fresh]"), "{stderr}");
    assert!(
        stderr.contains(&format!("{before} stored events")),
        "{stderr}"
    );
    assert!(
        stderr.contains("--force") && stderr.contains("Nothing was sent"),
        "{stderr}"
    );
    assert_eq!(server.stored(), before, "nothing was written");

    // Forced, it writes, and its counts are the service's.
    let out = server.load(&["--events", "2000", "--days", "5", "--force"]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(stderr.contains("--force: writing"), "{stderr}");
    let (sent, stored, duplicates, rejected) = counts(&stdout);
    assert_eq!(rejected, 0, "{stdout}");
    assert_eq!(stored + duplicates, sent, "{stdout}");
    assert!(duplicates > 0, "the generator repeats some lines: {stdout}");
    assert_eq!(server.stored(), before + stored, "{stdout}");
}

#[test]
fn load_refuses_a_database_holding_tenants_unless_forced() {
    let setup = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/tenant.json");
    let server = Server::start(&tmpdir("tenants"), |db| {
        let out = run(&["tenants", "put", setup.to_str().unwrap(), "--db", db]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    });
    assert_eq!(server.stored(), 0, "no event, only a tenant owning W1");
    let out = server.load(&["--events", "1000", "--days", "3", "--no-wait"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("tenant data (audit log: tenant.put)"),
        "{stderr}"
    );
    assert_eq!(server.stored(), 0);
}

#[test]
fn load_counts_rejections_fails_on_them_and_checks_the_stream_it_stored() {
    let server = Server::start(&tmpdir("rejections"), |_| {});
    let out = server.load(&["--events", "3000", "--days", "5"]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    let (sent, stored, _, rejected) = counts(&stdout);
    assert_eq!(rejected, 0);
    assert_eq!(server.stored(), stored);
    assert!(sent > 3000, "the accounts and the events");

    // The same ids over other days: another stream, whose events conflict with those stored.
    let out = server.load(&["--events", "3000", "--days", "9", "--force", "--no-wait"]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(3), "{stdout}{stderr}");
    let (sent, stored_again, duplicates, rejected) = counts(&stdout);
    assert!(rejected > 0, "{stdout}");
    assert_eq!(stored_again + duplicates + rejected, sent, "{stdout}");
    assert!(
        stderr.contains(&format!(
            "[events_rejected] the service rejected {rejected} of the {sent} events"
        )),
        "{stderr}"
    );
    // Grouped by reason, each with its count, and the counts add up.
    let grouped: u64 = stderr
        .lines()
        .filter_map(|l| l.trim_start().split_once(" x field '"))
        .map(|(n, _)| n.parse::<u64>().unwrap())
        .sum();
    assert_eq!(grouped, rejected, "{stderr}");
    assert!(
        stderr.contains("is already stored with different content"),
        "{stderr}"
    );

    // Send checks on a service that holds events: no stream is sent, whatever the parameters;
    // the checks are those of the stored charges.
    let held = server.stored();
    let out = server.load(&[
        "--mode", "check", "--events", "500", "--days", "2", "--checks", "300",
    ]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(
        stderr.contains(&format!(
            "the service already stores {held} events: no stream is sent; checking 300 messages"
        )),
        "{stderr}"
    );
    assert!(stdout.starts_with("300 send checks in "), "{stdout}");
    assert_eq!(server.stored(), held, "a check writes nothing");
}

#[test]
fn check_mode_on_a_fresh_database_stores_the_stream_then_checks_it() {
    let server = Server::start(&tmpdir("check"), |_| {});
    let out = server.load(&[
        "--mode", "check", "--events", "2000", "--days", "5", "--checks", "200",
    ]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    let (_, stored, _, rejected) = counts(&stdout);
    assert_eq!(rejected, 0);
    assert_eq!(server.stored(), stored);
    assert!(stdout.contains("200 send checks in "), "{stdout}");
}
