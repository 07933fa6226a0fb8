//! The web console and its calculator, on the real binary: `wabill serve` over real HTTP, its
//! `POST /v1/estimate` answering exactly what `wabill estimate --format json` prints for the same
//! input, the switch that turns the calculator off, the console's files and security headers;
//! and the calculator page in a real browser (headless Chromium through chromedriver), whose
//! total must be `wabill estimate`'s and must come back from the URL alone.

use serde_json::Value;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn wabill() -> Command {
    Command::new(env!("CARGO_BIN_EXE_wabill"))
}

fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("wabill-console-{}-{name}", std::process::id()));
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

/// One HTTP/1.1 exchange (`Connection: close`, no chunked bodies): status, head, body.
fn http(
    addr: &str,
    method: &str,
    path: &str,
    body: &str,
) -> std::io::Result<(u16, String, String)> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(60)))?;
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
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
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("no status line: {head:?}")))?;
    assert!(
        !head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked"),
        "{head}"
    );
    Ok((status, head.to_string(), rest.to_string()))
}

/// The value of header `name` in an answer's head.
fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

struct Server {
    child: Child,
    addr: String,
}

impl Server {
    fn start(dir: &Path, args: &[&str]) -> Server {
        let addr = format!("127.0.0.1:{}", free_port());
        let log = dir.join("serve.log");
        let db = dir.join("console.sqlite");
        let child = wabill()
            .arg("serve")
            .args(["--db", db.to_str().unwrap(), "--listen", &addr])
            .args(args)
            .env("WABILL_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let server = Server { child, addr };
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if matches!(http(&server.addr, "GET", "/healthz", ""), Ok((200, _, _))) {
                return server;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "wabill serve did not answer on {}: {}",
            server.addr,
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `wabill estimate` with `args`, its traffic read from `input` (the request document itself:
/// `--input` reads the `traffic` of a JSON object), printed as JSON.
fn cli_estimate(dir: &Path, request: &Value, args: &[&str]) -> String {
    let file = dir.join("request.json");
    std::fs::write(&file, request.to_string()).unwrap();
    let out = wabill()
        .arg("estimate")
        .args(args)
        .args(["--format", "json", "--input", file.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A request of every kind of option, and the same options as `wabill estimate` flags.
fn sample() -> (Value, Vec<&'static str>) {
    let request = serde_json::json!({
        "month": "2026-11", "currency": "USD", "timezone": "America/Sao_Paulo", "phones": 2,
        "primary_country": "BR", "auth_international": true,
        "utility_in_window": "25%", "entry_point_share": "10%", "compare": true,
        "traffic": [
            {"market": "Brazil", "category": "marketing", "messages": 1200},
            {"market": "Brazil", "category": "utility", "messages": 800},
            {"country": "IN", "category": "authentication", "messages": 500},
            {"market": "Brazil", "category": "service", "messages": 300},
        ],
    });
    let args = vec![
        "--month",
        "2026-11",
        "--currency",
        "USD",
        "--timezone",
        "America/Sao_Paulo",
        "--phones",
        "2",
        "--primary-country",
        "BR",
        "--auth-international",
        "--utility-in-window",
        "25%",
        "--entry-point-share",
        "10%",
        "--compare",
    ];
    (request, args)
}

#[test]
fn the_estimate_route_answers_what_wabill_estimate_prints() {
    let dir = tmpdir("route");
    let server = Server::start(&dir, &[]);
    let (request, args) = sample();
    let (status, head, body) =
        http(&server.addr, "POST", "/v1/estimate", &request.to_string()).unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(header(&head, "content-type")
        .unwrap()
        .starts_with("application/json"));
    let printed = cli_estimate(&dir, &request, &args);
    assert_eq!(
        body, printed,
        "the service's estimate differs from the CLI's"
    );
    let report: Value = serde_json::from_str(&body).unwrap();
    assert!(
        report["compare"]["totals"][0]["amount"].is_string(),
        "{report}"
    );

    // Without compare, and with the defaults, the same holds.
    let plain = serde_json::json!({"month": "2026-11",
        "traffic": [{"market": "Brazil", "category": "marketing", "messages": 1000}]});
    let (status, _, body) = http(&server.addr, "POST", "/v1/estimate", &plain.to_string()).unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, cli_estimate(&dir, &plain, &["--month", "2026-11"]));

    // What the calculator can be asked: the markets of the rate data.
    let (status, _, body) = http(&server.addr, "GET", "/v1/estimate", "").unwrap();
    assert_eq!(status, 200, "{body}");
    let options: Value = serde_json::from_str(&body).unwrap();
    assert!(options["markets"]
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m == "Brazil"));
    assert!(options["currencies"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c == "USD"));
}

#[test]
fn estimate_errors_name_their_field_and_bounds_hold() {
    let dir = tmpdir("errors");
    let server = Server::start(&dir, &[]);
    for (body, status, code, says) in [
        ("{", 400, "invalid_body", "not JSON"),
        (
            r#"{"month":"2026-11","traffic":[{"market":"Atlantis","category":"marketing","messages":1}]}"#,
            400,
            "invalid_request",
            "[unknown_market]",
        ),
        (
            r#"{"month":"2026-11","phones":0,"traffic":[]}"#,
            400,
            "invalid_request",
            "phones",
        ),
        (
            r#"{"month":"2026-11","currency":"XXX","traffic":[{"market":"Brazil","category":"marketing","messages":1}]}"#,
            422,
            "missing_rate",
            "XXX",
        ),
    ] {
        let (got, _, answer) = http(&server.addr, "POST", "/v1/estimate", body).unwrap();
        assert_eq!(got, status, "{body}: {answer}");
        let v: Value = serde_json::from_str(&answer).unwrap();
        assert_eq!(v["error"]["code"], code, "{body}: {answer}");
        let message = v["error"]["message"].as_str().unwrap();
        assert!(message.contains(says), "{body}: {message}");
    }
    // A body above the calculator's own bound is refused before it is read as JSON.
    let big = format!(
        r#"{{"month":"2026-11","traffic":[],"pad":"{}"}}"#,
        "x".repeat(wabill_server::handlers::estimate::MAX_ESTIMATE_BODY_BYTES)
    );
    let (got, _, answer) = http(&server.addr, "POST", "/v1/estimate", &big).unwrap();
    assert_eq!(got, 413, "{answer}");
}

#[test]
fn the_calculator_can_be_turned_off() {
    let dir = tmpdir("off");
    let server = Server::start(&dir, &["--calculator", "false"]);
    let (request, _) = sample();
    let (status, _, body) =
        http(&server.addr, "POST", "/v1/estimate", &request.to_string()).unwrap();
    assert_eq!(status, 404, "{body}");
    assert!(
        body.contains("not_found") && body.contains("calculator"),
        "{body}"
    );
    let (status, _, _) = http(&server.addr, "GET", "/v1/estimate", "").unwrap();
    assert_eq!(status, 404);
}

#[test]
fn the_console_is_served_from_the_binary_with_its_security_headers() {
    let dir = tmpdir("files");
    let server = Server::start(&dir, &[]);
    let (status, head, page) = http(&server.addr, "GET", "/", "").unwrap();
    assert_eq!(status, 200);
    assert!(header(&head, "content-type")
        .unwrap()
        .starts_with("text/html"));
    let csp = header(&head, "content-security-policy").expect("a CSP");
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert_eq!(header(&head, "x-content-type-options"), Some("nosniff"));
    // No inline script: the page loads its script as a file, which is served.
    assert!(
        page.contains(r#"<script src="/console/app.js" defer></script>"#),
        "{page}"
    );
    assert_eq!(page.matches("<script").count(), 1, "{page}");
    assert!(!page.contains("style="), "no inline style under the CSP");
    for (path, kind) in [
        ("/console/app.js", "text/javascript"),
        ("/console/app.css", "text/css"),
    ] {
        let (status, head, body) = http(&server.addr, "GET", path, "").unwrap();
        assert_eq!(status, 200, "{path}");
        assert!(
            header(&head, "content-type").unwrap().starts_with(kind),
            "{path}"
        );
        assert!(header(&head, "content-security-policy").is_some(), "{path}");
        assert!(!body.is_empty(), "{path}");
    }
    // Nothing is fetched from another origin.
    assert!(
        !page.contains("http://") && !page.contains("https://"),
        "{page}"
    );
}

/// A process killed and reaped when dropped.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// Chromium and chromedriver (Debian's `chromium`, `chromium-driver`), or `None` when either is
/// missing outside CI; under `CI=true` a missing browser fails the test (`.ci/run` installs it).
fn browser() -> Option<(&'static str, &'static str)> {
    let present = Path::new(CHROMIUM).exists() && Path::new(CHROMEDRIVER).exists();
    if present {
        return Some((CHROMIUM, CHROMEDRIVER));
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "CI=true: {CHROMIUM} and {CHROMEDRIVER} are required (apt-get install chromium chromium-driver)"
    );
    eprintln!("SKIPPED: the browser test needs {CHROMIUM} and {CHROMEDRIVER}");
    None
}

/// chromedriver on a free port, once it listens.
fn chromedriver(driver: &str, dir: &Path) -> (Reaped, String) {
    let port = free_port();
    let child = Command::new(driver)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("chromedriver.log")).unwrap())
        .spawn()
        .unwrap();
    let reaped = Reaped(child);
    let addr = format!("127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        // It keeps connections open: being accepted is the sign it listens.
        if TcpStream::connect(&addr).is_ok() {
            return (reaped, format!("http://{addr}"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("chromedriver did not answer on {addr}");
}

/// The text of `selector` once it is not empty.
async fn text_when_shown(c: &fantoccini::Client, selector: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(el) = c.find(fantoccini::Locator::Css(selector)).await {
            let t = el.text().await.unwrap_or_default();
            if !t.trim().is_empty() {
                return t.trim().to_string();
            }
        }
        assert!(Instant::now() < deadline, "{selector} stayed empty");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The calculator in headless Chromium: a changed input, submitted with the keyboard, shows the
/// total `wabill estimate` prints for the same input; the page's URL alone, opened afresh,
/// shows it again; screenshots for the README (desktop and phone width).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_calculator_in_a_browser_shows_wabill_estimates_total() {
    let Some((chromium, driver)) = browser() else {
        return;
    };
    let dir = tmpdir("browser");
    let key = reader_key(&dir);
    let server = Server::start(&dir, &[]);
    let (_driver, webdriver) = chromedriver(driver, &dir);
    let profile = dir.join("profile");
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "binary": chromium,
            "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                     "--no-first-run", "--disable-background-networking",
                     "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
                     format!("--user-data-dir={}", profile.display()),
                     "--window-size=1280,1400"],
        }),
    );
    let http = hyper_util::client::legacy::connect::HttpConnector::new();
    let c = fantoccini::ClientBuilder::new(http)
        .capabilities(caps)
        .connect(&webdriver)
        .await
        .expect("a WebDriver session of chromium");
    let result = drive(&c, &server.addr, &dir, &key).await;
    c.close().await.unwrap();
    result.unwrap();
}

/// A reader key of the test's database, as `wabill keys create` prints it.
fn reader_key(dir: &Path) -> String {
    let db = dir.join("console.sqlite");
    let out = wabill()
        .args(["keys", "create", "--name", "console", "--role", "reader"])
        .args(["--waba", "W1", "--db", db.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

async fn drive(
    c: &fantoccini::Client,
    addr: &str,
    dir: &Path,
    key: &str,
) -> Result<(), fantoccini::error::CmdError> {
    use fantoccini::Locator::Css;
    // A shared estimate: every category, a country line, the shares, the comparison.
    let shared = "#/calculator?month=2026-11&currency=USD&tz=UTC&phones=2&uiw=25&eps=10&compare=1\
        &line=m,marketing,1200,Brazil&line=m,utility,8000,Brazil&line=c,authentication,5000,IN\
        &line=m,service,3000,Brazil";
    c.goto(&format!("http://{addr}/{shared}")).await?;
    // The calculator's first line, once the service's markets and currencies are in.
    c.wait()
        .at_most(Duration::from_secs(30))
        .for_element(Css("#f-currency option[value='USD']"))
        .await?;
    let first = text_when_shown(c, "#total-amount").await;
    let messages = c.find(Css("#lines tr:first-child .l-messages")).await?;
    messages.clear().await?;
    // Typed, then Enter: the form is submitted from the keyboard.
    messages.send_keys("25000\u{E007}").await?;
    let deadline = Instant::now() + Duration::from_secs(60);
    let shown = loop {
        let now = text_when_shown(c, "#total-amount").await;
        if now != first {
            break now;
        }
        assert!(
            Instant::now() < deadline,
            "the total did not change from {first}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let shown_before = text_when_shown(c, "#compare-amount").await;

    let request = serde_json::json!({"traffic": [
        {"market": "Brazil", "category": "marketing", "messages": 25000},
        {"market": "Brazil", "category": "utility", "messages": 8000},
        {"country": "IN", "category": "authentication", "messages": 5000},
        {"market": "Brazil", "category": "service", "messages": 3000}]});
    let flags = [
        "--month",
        "2026-11",
        "--phones",
        "2",
        "--utility-in-window",
        "25%",
        "--entry-point-share",
        "10%",
        "--compare",
    ];
    let printed = cli_estimate(dir, &request, &flags);
    let printed: Value = serde_json::from_str(&printed).unwrap();
    assert_eq!(
        shown,
        printed["estimate"]["totals"][0]["amount"].as_str().unwrap(),
        "the page's total is not wabill estimate's"
    );
    assert_eq!(
        shown_before,
        printed["compare"]["totals"][0]["amount"].as_str().unwrap(),
        "the page's previous-era total is not wabill estimate's"
    );
    let bars = c.find_all(Css("#chart svg rect.bar")).await?;
    assert!(
        bars.len() >= 8,
        "the era chart has its bars: {}",
        bars.len()
    );

    // The state is in the URL: opened afresh, the same estimate comes back.
    let url = c.current_url().await?;
    assert!(
        url.fragment().unwrap_or("").contains("messages") || url.as_str().contains("25000"),
        "the URL carries the state: {url}"
    );
    c.goto("about:blank").await?;
    c.goto(url.as_str()).await?;
    let again = text_when_shown(c, "#total-amount").await;
    assert_eq!(again, shown, "the shared URL does not give the same total");

    // The sign-in: a wrong key is refused and kept nowhere; a real one is kept for this
    // browser session only, and opens the keyed part of the bar.
    let stored = "return [sessionStorage.getItem('wabill.key'), localStorage.length];";
    let field = c.find(Css("#signin-key")).await?;
    field.send_keys("not-a-key\u{E007}").await?;
    let refused = text_when_shown(c, "#signin-status").await;
    assert!(refused.contains("refused"), "{refused}");
    assert_eq!(
        c.execute(stored, vec![]).await?,
        serde_json::json!([null, 0])
    );
    field.clear().await?;
    field.send_keys(&format!("{key}\u{E007}")).await?;
    c.wait()
        .at_most(Duration::from_secs(10))
        .for_element(Css("#nav-keyed:not([hidden])"))
        .await?;
    assert_eq!(
        c.execute(stored, vec![]).await?,
        serde_json::json!([key, 0]),
        "the key is in sessionStorage, nothing in localStorage"
    );
    let who = text_when_shown(c, "#signedin-who").await;
    assert!(who.ends_with(&key[key.len() - 4..]), "{who}");
    c.find(Css("#signout")).await?.click().await?;
    assert_eq!(
        c.execute(stored, vec![]).await?,
        serde_json::json!([null, 0])
    );

    let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    // Tall enough for the whole result, its chart included.
    c.set_window_size(1280, 2000).await?;
    let png = c.screenshot().await?;
    assert!(png.starts_with(b"\x89PNG"), "a PNG");
    std::fs::write(shots.join("calculator.png"), png).unwrap();
    // At a phone's width the page still fits: nothing scrolls sideways but the tables.
    c.set_window_size(390, 1400).await?;
    let overflow = c
        .execute(
            "const w = document.documentElement.clientWidth; \
             const wide = [...document.querySelectorAll('body *')] \
               .filter((e) => e.getBoundingClientRect().right > w + 1 && !(e.parentElement && e.parentElement.closest('.scroll'))) \
               .map((e) => e.tagName + '#' + e.id + '.' + e.className + ':' + Math.round(e.getBoundingClientRect().right)); \
             return {width: w, inner: window.innerWidth, \
                     over: document.documentElement.scrollWidth - w, wide: wide.slice(0, 12)};",
            vec![],
        )
        .await?;
    assert_eq!(
        overflow["over"].as_i64(),
        Some(0),
        "the page overflows a phone's width: {overflow}"
    );
    std::fs::write(shots.join("calculator-phone.png"), c.screenshot().await?).unwrap();
    Ok(())
}
